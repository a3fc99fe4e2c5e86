"""Spec §1 e-commerce handlers (``examples/blog/ecommerce/step_handlers.py``): every rule, every
failure and the worked reference numbers of §1.6. A port of the unit tests of
``workers/rust/src/handlers/blog/ecommerce.rs``; results and failures must be identical."""

from __future__ import annotations

import copy
import datetime as dt
import importlib
import json
import re
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Optional

_PYTHON_WORKER = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_PYTHON_WORKER / "examples" / "blog"))

import pytest  # noqa: E402

from blog_support import text_date  # noqa: E402
from ecommerce.step_handlers import (  # noqa: E402
    CATALOGUE,
    CreateOrderHandler,
    ProcessPaymentHandler,
    SendConfirmationHandler,
    UpdateInventoryHandler,
    ValidateCartHandler,
)
from tasker_core import StepHandler, StepHandlerResult  # noqa: E402
from tasker_core.testing import build_context, run_handler  # noqa: E402

from blog_assertions import assert_json_equal

TS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
REPO = _PYTHON_WORKER.parents[1]

# ------------------------------------------------------------------------------------------------
# Reference data (§1.6) and helpers


def reference_input() -> Dict[str, Any]:
    return {
        "cart_items": [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 1}],
        "customer_info": {"email": "customer@example.com", "name": "John Doe", "phone": "+1-555-0123"},
        "payment_info": {"method": "credit_card", "token": "tok_test_valid", "amount": 124.76},
    }


def reference_cart() -> Dict[str, Any]:
    return {
        "validated_items": [
            {"product_id": 1, "name": "Widget A", "price": 29.99, "quantity": 2, "line_total": 59.98},
            {"product_id": 2, "name": "Widget B", "price": 49.99, "quantity": 1, "line_total": 49.99},
        ],
        "subtotal": 109.97,
        "tax": 8.8,
        "shipping": 5.99,
        "total": 124.76,
        "item_count": 2,
        "validated_at": "2026-01-02T03:04:05.678Z",
    }


def reference_payment() -> Dict[str, Any]:
    return {
        "payment_id": "pay_0123456789abcdef01234567",
        "amount_charged": 124.76,
        "currency": "USD",
        "payment_method_type": "credit_card",
        "transaction_id": "txn_0123456789abcdef01234567",
        "processed_at": "2026-01-02T03:04:05.678Z",
        "status": "completed",
    }


def reference_inventory() -> Dict[str, Any]:
    return {
        "updated_products": [
            {
                "product_id": 1,
                "name": "Widget A",
                "previous_stock": 100,
                "new_stock": 98,
                "quantity_reserved": 2,
                "reservation_id": "rsv_0123456789abcdef",
            }
        ],
        "total_items_reserved": 2,
        "inventory_changes": [],
        "inventory_log_id": "log_0123456789abcdef",
        "updated_at": "2026-01-02T03:04:05.678Z",
    }


def reference_order() -> Dict[str, Any]:
    return {
        "order_id": 4321,
        "order_number": "ORD-20260102-0A1B2C3D",
        "status": "confirmed",
        "total_amount": 124.76,
        "customer_email": "customer@example.com",
        "created_at": "2026-01-02T03:04:05.678Z",
        "estimated_delivery": "January 09, 2026",
    }


STEPS = ["validate_cart", "process_payment", "update_inventory", "create_order", "send_confirmation"]


def reference_deps(step: str) -> Dict[str, Any]:
    """Every completed dependency of the reference run, for the step named."""
    everything = {
        "validate_cart": reference_cart(),
        "process_payment": reference_payment(),
        "update_inventory": reference_inventory(),
        "create_order": reference_order(),
    }
    return {name: everything[name] for name in STEPS[: STEPS.index(step)]}


def run(handler: StepHandler, step: str, input: Any, deps: Any) -> StepHandlerResult:
    ctx = build_context(
        step_name=step,
        namespace="ecommerce_py",
        attempt=1,
        max_attempts=2,
        input=input,
        dependency_results=deps,
        config={"scenario": "ecommerce_checkout"},
    )
    return run_handler(handler, ctx)


def ok(r: StepHandlerResult) -> StepHandlerResult:
    assert r.success, f"expected success, got {r.error}"
    assert r.result is not None
    json.dumps(r.result, allow_nan=False)  # a plain JSON value
    return r


def err(r: StepHandlerResult) -> Dict[str, Any]:
    assert not r.success, f"expected a failure, got {r.result}"
    assert r.error is not None
    return r.error


def permanent_json(code: str, message: str) -> Dict[str, Any]:
    return {"message": message, "error_code": code, "retryable": False, "retry_after": None, "context": {}}


def full_match(pattern: str, value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(pattern, value, re.ASCII) is not None


def assert_ts(value: Any) -> dt.datetime:
    assert full_match(TS, value), f"{value!r} is not an RFC 3339 ms timestamp"
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def assert_recent(value: Any, before: dt.datetime) -> dt.datetime:
    t = assert_ts(value)
    assert before - dt.timedelta(milliseconds=1) <= t <= dt.datetime.now(dt.timezone.utc), (
        f"{t} is not this attempt's clock reading"
    )
    return t


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def cart(items: Any) -> Dict[str, Any]:
    data = reference_input()
    data["cart_items"] = items
    return data


def validate(items: Any) -> StepHandlerResult:
    return run(ValidateCartHandler(), "validate_cart", cart(items), {})


# ------------------------------------------------------------------------------------------------
# validate_cart (§1.1)


def test_validate_cart_prices_the_reference_cart() -> None:
    before = utc_now()
    r = ok(run(ValidateCartHandler(), "validate_cart", reference_input(), {})).result
    assert_recent(r["validated_at"], before)
    masked = dict(r, validated_at="T")
    assert_json_equal(
        masked,
        {
            "validated_items": [
                {"product_id": 1, "name": "Widget A", "price": 29.99, "quantity": 2, "line_total": 59.98},
                {"product_id": 2, "name": "Widget B", "price": 49.99, "quantity": 1, "line_total": 49.99},
            ],
            "subtotal": 109.97,
            "tax": 8.8,
            "shipping": 5.99,
            "total": 124.76,
            "item_count": 2,
            "validated_at": "T",
        },
    )


@pytest.mark.parametrize("items", [None, [], {}, "  ", "items"])
def test_validate_cart_requires_cart_items(items: Any) -> None:
    want = permanent_json("MISSING_CART_ITEMS", "Cart items are required but were not provided")
    assert err(validate(items)) == want


def test_validate_cart_requires_cart_items_when_the_key_is_absent() -> None:
    data = reference_input()
    del data["cart_items"]
    assert err(run(ValidateCartHandler(), "validate_cart", data, {})) == permanent_json(
        "MISSING_CART_ITEMS", "Cart items are required but were not provided"
    )


@pytest.mark.parametrize("pid", [None, "", " \t", [], {}])
def test_validate_cart_requires_a_product_id_per_item_numbered_from_one(pid: Any) -> None:
    items = [{"product_id": 1, "quantity": 1}, {"product_id": pid, "quantity": 1}]
    assert err(validate(items)) == permanent_json("MISSING_PRODUCT_ID", "Product ID is required for cart item 2")


def test_validate_cart_reports_an_absent_product_id_or_a_non_object_item_as_missing() -> None:
    want = permanent_json("MISSING_PRODUCT_ID", "Product ID is required for cart item 1")
    assert err(validate([{"quantity": 1}])) == want
    assert err(validate([7])) == want


@pytest.mark.parametrize("q", [None, "", 0, -1, 1.5, "2", True, []])
def test_validate_cart_requires_a_positive_integer_quantity(q: Any) -> None:
    items = [{"product_id": 1, "quantity": 1}, {"product_id": 2, "quantity": q}]
    assert err(validate(items)) == permanent_json("INVALID_QUANTITY", "Valid quantity is required for cart item 2")


def test_validate_cart_requires_a_quantity_when_the_key_is_absent() -> None:
    assert err(validate([{"product_id": 3}])) == permanent_json(
        "INVALID_QUANTITY", "Valid quantity is required for cart item 1"
    )


def test_validate_cart_rejects_a_quantity_beyond_64_bits_as_invalid() -> None:
    assert err(validate([{"product_id": 1, "quantity": 1e20}]))["error_code"] == "INVALID_QUANTITY"


def test_validate_cart_accepts_an_integral_float_quantity_and_writes_an_integer() -> None:
    r = ok(validate([{"product_id": 1.0, "quantity": 2.0}])).result
    item = r["validated_items"][0]
    assert item["quantity"] == 2 and type(item["quantity"]) is int
    assert item["product_id"] == 1 and type(item["product_id"]) is int
    assert r["subtotal"] == 59.98


def test_validate_cart_applies_rules_2_and_3_to_each_item_before_moving_on() -> None:
    # Item 1 has a bad quantity, item 2 no product id: item 1 is reported.
    items = [{"product_id": 1, "quantity": 0}, {"quantity": 1}]
    assert err(validate(items)) == permanent_json("INVALID_QUANTITY", "Valid quantity is required for cart item 1")


def test_validate_cart_finishes_pass_a_before_looking_up_products() -> None:
    # Item 1 is an unknown product, item 2 has a bad quantity: pass A reports item 2 first.
    items = [{"product_id": 99, "quantity": 1}, {"product_id": 1, "quantity": -3}]
    assert err(validate(items)) == permanent_json("INVALID_QUANTITY", "Valid quantity is required for cart item 2")


@pytest.mark.parametrize(
    "pid, text",
    [
        (99, "99"),
        ("abc", "abc"),
        (0, "0"),
        ("1", "1"),
        (1.5, "1.5"),
        (True, "true"),
        ([1, 2], "[1,2]"),
        ({"b": 1, "a": "x"}, '{"a":"x","b":1}'),
        (1e16, "10000000000000000"),
        (1e20, "1e+20"),
        (1e-7, "1e-7"),
        (0.00001, "0.00001"),
    ],
)
def test_validate_cart_rejects_unknown_products_naming_the_id_as_serde_json_writes_it(pid: Any, text: str) -> None:
    items = [{"product_id": 1, "quantity": 1}, {"product_id": pid, "quantity": 1}]
    assert err(validate(items)) == permanent_json("PRODUCT_NOT_FOUND", f"Product {text} not found")


def test_validate_cart_rejects_inactive_products_before_checking_stock() -> None:
    assert err(validate([{"product_id": 5, "quantity": 11}])) == permanent_json(
        "PRODUCT_INACTIVE", "Product Widget E is no longer available"
    )


def test_validate_cart_insufficient_stock_is_retryable_after_30_seconds() -> None:
    e = err(validate([{"product_id": 3, "quantity": 26}]))
    assert_json_equal(
        e,
        {
            "message": "Insufficient stock for Widget C. Available: 25, Requested: 26",
            "error_code": "INSUFFICIENT_STOCK",
            "retryable": True,
            "retry_after": 30,
            "context": {"product_id": 3, "product_name": "Widget C", "available_stock": 25, "requested_quantity": 26},
        },
    )
    e = err(validate([{"product_id": 4, "quantity": 1}]))
    assert e["message"] == "Insufficient stock for Widget D. Available: 0, Requested: 1"


def test_validate_cart_insufficient_stock_writes_an_integral_float_quantity_as_an_integer() -> None:
    e = err(validate([{"product_id": 3, "quantity": 26.0}]))
    assert e["message"] == "Insufficient stock for Widget C. Available: 25, Requested: 26"
    assert type(e["context"]["requested_quantity"]) is int


def test_validate_cart_accepts_a_quantity_equal_to_the_stock() -> None:
    r = ok(validate([{"product_id": 3, "quantity": 25}])).result
    assert r["validated_items"][0]["line_total"] == 499.75


def test_validate_cart_checks_products_in_cart_order() -> None:
    items = [{"product_id": 4, "quantity": 1}, {"product_id": 99, "quantity": 1}]
    assert err(validate(items))["error_code"] == "INSUFFICIENT_STOCK"
    items = [{"product_id": 99, "quantity": 1}, {"product_id": 4, "quantity": 1}]
    assert err(validate(items))["error_code"] == "PRODUCT_NOT_FOUND"


@pytest.mark.parametrize("units, shipping", [(1, 5.99), (4, 5.99), (5, 9.99), (20, 9.99), (21, 14.99)])
def test_validate_cart_shipping_follows_the_weight_boundaries(units: int, shipping: float) -> None:
    # 0.5 lb per unit: 4 units = 2 lb, 5 = 2.5 lb, 20 = 10 lb, 21 = 10.5 lb.
    assert ok(validate([{"product_id": 1, "quantity": units}])).result["shipping"] == shipping


def test_validate_cart_weight_counts_units_not_line_items() -> None:
    r = ok(validate([{"product_id": 1, "quantity": 3}, {"product_id": 3, "quantity": 2}])).result
    assert r["shipping"] == 9.99
    assert r["item_count"] == 2 and type(r["item_count"]) is int


def test_validate_cart_rounds_tax_to_cents_and_sums_exactly() -> None:
    # 3 x 19.99 = 59.97; tax 4.7976 -> 4.80; shipping 5.99; total 70.76.
    r = ok(validate([{"product_id": 3, "quantity": 3}])).result
    assert (r["subtotal"], r["tax"], r["total"]) == (59.97, 4.8, 70.76)
    # 10 x 29.99 + 7 x 49.99 = 299.90 + 349.93 = 649.83; tax 51.9864 -> 51.99; 8.5 lb -> 9.99.
    r = ok(validate([{"product_id": 1, "quantity": 10}, {"product_id": 2, "quantity": 7}])).result
    assert r["validated_items"][0]["line_total"] == 299.9
    assert (r["subtotal"], r["tax"], r["total"]) == (649.83, 51.99, 711.81)


def test_validate_cart_does_not_pool_stock_across_repeated_products() -> None:
    r = ok(validate([{"product_id": 3, "quantity": 20}, {"product_id": 3, "quantity": 20}])).result
    assert r["item_count"] == 2
    assert len(r["validated_items"]) == 2


# ------------------------------------------------------------------------------------------------
# process_payment (§1.2)


def payment_input(info: Any) -> Dict[str, Any]:
    data = reference_input()
    data["payment_info"] = info
    return data


def pay(info: Any) -> StepHandlerResult:
    return run(ProcessPaymentHandler(), "process_payment", payment_input(info), reference_deps("process_payment"))


def info_with(key: str, value: Any) -> Dict[str, Any]:
    info = copy.deepcopy(reference_input()["payment_info"])
    info[key] = value
    return info


def test_process_payment_charges_the_reference_total_with_fees() -> None:
    before = utc_now()
    s = ok(run(ProcessPaymentHandler(), "process_payment", reference_input(), reference_deps("process_payment")))
    r = s.result
    assert full_match("pay_[0-9a-f]{24}", r["payment_id"]), r["payment_id"]
    assert full_match("txn_[0-9a-f]{24}", r["transaction_id"]), r["transaction_id"]
    assert_recent(r["processed_at"], before)
    masked = dict(r, payment_id="*", transaction_id="*", processed_at="*")
    assert_json_equal(
        masked,
        {
            "payment_id": "*",
            "amount_charged": 124.76,
            "currency": "USD",
            "payment_method_type": "credit_card",
            "transaction_id": "*",
            "processed_at": "*",
            "status": "completed",
        },
    )
    assert_json_equal(s.metadata["fees"], {"processing_fee": 3.62, "fixed_fee": 0.3, "total_fees": 3.92})


def test_process_payment_ids_are_fresh_per_attempt() -> None:
    a = ok(pay(reference_input()["payment_info"])).result
    b = ok(pay(reference_input()["payment_info"])).result
    assert a["payment_id"] != b["payment_id"]
    assert a["transaction_id"] != b["transaction_id"]


@pytest.mark.parametrize("info", [None, {}, "", []])
def test_process_payment_requires_payment_info(info: Any) -> None:
    assert err(pay(info)) == permanent_json(
        "MISSING_PAYMENT_INFO", "Payment information is required but was not provided"
    )


@pytest.mark.parametrize("method", [None, "", "   "])
def test_process_payment_requires_a_method(method: Any) -> None:
    want = permanent_json("MISSING_PAYMENT_METHOD", "Payment method is required but was not provided")
    assert err(pay(info_with("method", method))) == want


def test_process_payment_checks_the_method_before_the_token() -> None:
    want = permanent_json("MISSING_PAYMENT_METHOD", "Payment method is required but was not provided")
    info = info_with("method", "")
    info["token"] = ""
    assert err(pay(info)) == want
    # A string payment_info has no method.
    assert err(pay("card")) == want


@pytest.mark.parametrize("token", [None, "", "\n"])
def test_process_payment_requires_a_token(token: Any) -> None:
    assert err(pay(info_with("token", token))) == permanent_json(
        "MISSING_PAYMENT_TOKEN", "Payment token is required but was not provided"
    )


@pytest.mark.parametrize("amount", [None, "", "124.76", True, [124.76]])
def test_process_payment_requires_a_numeric_amount(amount: Any) -> None:
    assert err(pay(info_with("amount", amount))) == permanent_json(
        "MISSING_PAYMENT_AMOUNT", "Payment amount is required but was not provided"
    )


def test_process_payment_requires_an_amount_when_the_key_is_absent() -> None:
    info = copy.deepcopy(reference_input()["payment_info"])
    del info["amount"]
    assert err(pay(info)) == permanent_json("MISSING_PAYMENT_AMOUNT", "Payment amount is required but was not provided")


def test_process_payment_requires_the_cart_total() -> None:
    want = permanent_json("MISSING_CART_TOTAL", "Cart total is required but was not found from validate_cart step")
    assert err(run(ProcessPaymentHandler(), "process_payment", reference_input(), {})) == want
    for total in [None, "", "124.76"]:
        c = reference_cart()
        c["total"] = total
        r = run(ProcessPaymentHandler(), "process_payment", reference_input(), {"validate_cart": c})
        assert err(r) == want, total


def test_process_payment_rejects_an_amount_off_by_more_than_a_cent() -> None:
    assert_json_equal(
        err(pay(info_with("amount", 100))),
        {
            "message": "Payment amount mismatch. Expected: $124.76, Provided: $100.00",
            "error_code": "PAYMENT_AMOUNT_MISMATCH",
            "retryable": False,
            "retry_after": None,
            "context": {"expected_amount": 124.76, "provided_amount": 100, "difference": -24.76},
        },
    )
    # A present 0 is an amount, and it mismatches.
    assert_json_equal(
        err(pay(info_with("amount", 0)))["context"],
        {"expected_amount": 124.76, "provided_amount": 0, "difference": -124.76},
    )
    e = err(pay(info_with("amount", 124.78)))
    assert e["message"] == "Payment amount mismatch. Expected: $124.76, Provided: $124.78"
    assert e["context"]["difference"] == 0.02


@pytest.mark.parametrize("amount", [124.77, 124.75, 124.765, 124.7549, 124.76, 124.745])
def test_process_payment_tolerates_one_cent_after_rounding_half_away_from_zero(amount: float) -> None:
    ok(pay(info_with("amount", amount)))


def test_process_payment_rejects_two_cents_after_rounding_half_away_from_zero() -> None:
    # 124.775 rounds to 124.78: two cents off. The difference 0.015 rounds to 0.02.
    e = err(pay(info_with("amount", 124.775)))
    assert e["message"] == "Payment amount mismatch. Expected: $124.76, Provided: $124.78"
    assert_json_equal(e["context"], {"expected_amount": 124.76, "provided_amount": 124.775, "difference": 0.02})
    # 124.744 rounds to 124.74 (rejected, difference -0.016 -> -0.02).
    e = err(pay(info_with("amount", 124.744)))
    assert e["context"]["difference"] == -0.02
    assert e["message"] == "Payment amount mismatch. Expected: $124.76, Provided: $124.74"


def test_process_payment_echoes_an_integral_total_and_writes_a_whole_difference_as_an_integer() -> None:
    e = err(run(ProcessPaymentHandler(), "process_payment", payment_input(info_with("amount", 12)),
                {"validate_cart": {"total": 10.0}}))
    assert e["message"] == "Payment amount mismatch. Expected: $10.00, Provided: $12.00"
    assert e["context"] == {"expected_amount": 10.0, "provided_amount": 12, "difference": 2}
    assert type(e["context"]["difference"]) is int


def test_process_payment_charges_the_cart_total_not_the_provided_amount() -> None:
    assert ok(pay(info_with("amount", 124.77))).result["amount_charged"] == 124.76


def test_process_payment_declined_card_is_permanent() -> None:
    assert err(pay(info_with("token", "tok_test_declined"))) == {
        "message": "Payment declined: Card was declined by issuer",
        "error_code": "PAYMENT_DECLINED",
        "retryable": False,
        "retry_after": None,
        "context": {"payment_status": "card_declined"},
    }


def test_process_payment_insufficient_funds_is_permanent() -> None:
    assert err(pay(info_with("token", "tok_test_insufficient_funds"))) == {
        "message": "Payment declined: Insufficient funds",
        "error_code": "PAYMENT_DECLINED",
        "retryable": False,
        "retry_after": None,
        "context": {"payment_status": "insufficient_funds"},
    }


def test_process_payment_network_error_is_retryable_after_15_seconds() -> None:
    e = err(pay(info_with("token", "tok_test_network_error")))
    assert e == {
        "message": "Payment service temporarily unavailable",
        "error_code": "NETWORK_ERROR",
        "retryable": True,
        "retry_after": 15,
        "context": {"payment_status": "timeout"},
    }
    assert type(e["retry_after"]) is int


def test_process_payment_checks_the_amount_before_the_token() -> None:
    info = info_with("token", "tok_test_declined")
    info["amount"] = 1
    assert err(pay(info))["error_code"] == "PAYMENT_AMOUNT_MISMATCH"


@pytest.mark.parametrize(
    "token", ["tok_test_declined_x", " tok_test_declined", "TOK_TEST_DECLINED", "tok_test_network_error\n", 42]
)
def test_process_payment_compares_the_whole_token(token: Any) -> None:
    ok(pay(info_with("token", token)))


def test_process_payment_echoes_the_method_as_given() -> None:
    assert ok(pay(info_with("method", "paypal"))).result["payment_method_type"] == "paypal"


def test_process_payment_fee_rounds_half_away_from_zero() -> None:
    # 15.00 x 0.029 = 0.435 exactly, a midpoint: 0.44.
    s = ok(run(ProcessPaymentHandler(), "process_payment", payment_input(info_with("amount", 15)),
               {"validate_cart": {"total": 15}}))
    assert s.result["amount_charged"] == 15 and type(s.result["amount_charged"]) is int
    assert_json_equal(s.metadata["fees"], {"processing_fee": 0.44, "fixed_fee": 0.3, "total_fees": 0.74})


# ------------------------------------------------------------------------------------------------
# update_inventory (§1.3)


def reserve(cart_result: Any, input: Any) -> StepHandlerResult:
    deps = reference_deps("update_inventory")
    deps["validate_cart"] = cart_result
    return run(UpdateInventoryHandler(), "update_inventory", input, deps)


def cart_of(items: Any) -> Dict[str, Any]:
    c = reference_cart()
    c["validated_items"] = items
    return c


def test_update_inventory_reserves_the_reference_items() -> None:
    before = utc_now()
    r = ok(reserve(reference_cart(), reference_input())).result
    updated_at = r["updated_at"]
    assert_recent(updated_at, before)
    assert full_match("log_[0-9a-f]{16}", r["inventory_log_id"])
    assert r["total_items_reserved"] == 3 and type(r["total_items_reserved"]) is int
    updated, changes = r["updated_products"], r["inventory_changes"]
    assert (len(updated), len(changes)) == (2, 2)
    want = [(1, "Widget A", 100, 98, 2), (2, "Widget B", 50, 49, 1)]
    for i, (pid, name, prev, new, q) in enumerate(want):
        rsv = updated[i]["reservation_id"]
        assert full_match("rsv_[0-9a-f]{16}", rsv), rsv
        assert_json_equal(
            updated[i],
            {"product_id": pid, "name": name, "previous_stock": prev, "new_stock": new,
             "quantity_reserved": q, "reservation_id": rsv},
        )
        log = changes[i]["inventory_log_id"]
        assert full_match("log_[0-9a-f]{12}", log), log
        assert_json_equal(
            changes[i],
            {"product_id": pid, "change_type": "reservation", "quantity": -q, "reason": "order_checkout",
             "timestamp": updated_at, "reservation_id": rsv, "inventory_log_id": log},
        )
    assert updated[0]["reservation_id"] != updated[1]["reservation_id"]
    assert len(r) == 5, f"exactly the specified keys: {r}"


def test_update_inventory_requires_validated_items() -> None:
    want = permanent_json(
        "MISSING_VALIDATED_ITEMS", "Validated cart items are required but were not found from validate_cart step"
    )
    for items in [None, [], "x"]:
        assert err(reserve(cart_of(items), reference_input())) == want, items
    assert err(run(UpdateInventoryHandler(), "update_inventory", reference_input(), {})) == want
    no_quantity = cart_of([{"product_id": 1, "name": "Widget A"}])
    assert err(reserve(no_quantity, reference_input())) == want


@pytest.mark.parametrize("info", [None, {}, " ", "absent"])
def test_update_inventory_requires_customer_info(info: Any) -> None:
    data = reference_input()
    if info == "absent":
        del data["customer_info"]
    else:
        data["customer_info"] = info
    assert err(reserve(reference_cart(), data)) == permanent_json(
        "MISSING_CUSTOMER_INFO", "Customer information is required but was not provided"
    )


def test_update_inventory_rejects_products_missing_from_the_catalogue() -> None:
    items = [{"product_id": 1, "quantity": 1}, {"product_id": 42, "quantity": 1}]
    assert err(reserve(cart_of(items), reference_input())) == permanent_json("PRODUCT_NOT_FOUND", "Product 42 not found")


def test_update_inventory_stock_unavailable_is_retryable_after_30_seconds() -> None:
    items = [{"product_id": 1, "quantity": 1}, {"product_id": 4, "quantity": 3}]
    assert_json_equal(
        err(reserve(cart_of(items), reference_input())),
        {
            "message": "Stock not available for Widget D. Available: 0, Needed: 3",
            "error_code": "STOCK_UNAVAILABLE",
            "retryable": True,
            "retry_after": 30,
            "context": {"product_id": 4, "product_name": "Widget D", "available_stock": 0, "requested_quantity": 3},
        },
    )


def test_update_inventory_checks_items_in_order() -> None:
    items = [{"product_id": 2, "quantity": 51}, {"product_id": 42, "quantity": 1}]
    assert err(reserve(cart_of(items), reference_input()))["error_code"] == "STOCK_UNAVAILABLE"
    items = [{"product_id": 42, "quantity": 1}, {"product_id": 2, "quantity": 51}]
    assert err(reserve(cart_of(items), reference_input()))["error_code"] == "PRODUCT_NOT_FOUND"


def test_update_inventory_reads_names_and_stock_from_the_catalogue() -> None:
    items = [{"product_id": 3, "name": "renamed", "quantity": 25}, {"product_id": 3, "quantity": 5}]
    r = ok(reserve(cart_of(items), reference_input())).result
    u = r["updated_products"]
    assert u[0]["name"] == "Widget C"
    assert (u[0]["previous_stock"], u[0]["new_stock"]) == (25, 0)
    assert (u[1]["previous_stock"], u[1]["new_stock"]) == (25, 20)
    assert r["total_items_reserved"] == 30


def test_update_inventory_writes_integral_float_quantities_as_integers() -> None:
    r = ok(reserve(cart_of([{"product_id": 2.0, "quantity": 3.0}]), reference_input())).result
    assert_json_equal(
        {k: r["updated_products"][0][k] for k in ("product_id", "previous_stock", "new_stock", "quantity_reserved")},
        {"product_id": 2, "previous_stock": 50, "new_stock": 47, "quantity_reserved": 3},
    )
    assert r["inventory_changes"][0]["quantity"] == -3 and type(r["inventory_changes"][0]["quantity"]) is int
    assert type(r["total_items_reserved"]) is int


# ------------------------------------------------------------------------------------------------
# create_order (§1.4)


def order_with(input: Any, deps: Any) -> StepHandlerResult:
    return run(CreateOrderHandler(), "create_order", input, deps)


def test_create_order_confirms_the_reference_order() -> None:
    before = utc_now()
    r = ok(order_with(reference_input(), reference_deps("create_order"))).result
    created = assert_recent(r["created_at"], before)
    assert type(r["order_id"]) is int and 1000 <= r["order_id"] <= 9999, r["order_id"]
    number = r["order_number"]
    assert full_match(r"ORD-\d{8}-[0-9A-F]{8}", number), number
    assert number[4:12] == created.strftime("%Y%m%d"), "today's UTC date"
    assert r["estimated_delivery"] == text_date(created + dt.timedelta(seconds=7 * 86_400))
    assert full_match(r"[A-Z][a-z]+ \d{2}, \d{4}", r["estimated_delivery"])
    masked = dict(r, order_id="*", order_number="*", created_at="*", estimated_delivery="*")
    assert_json_equal(
        masked,
        {"order_id": "*", "order_number": "*", "status": "confirmed", "total_amount": 124.76,
         "customer_email": "customer@example.com", "created_at": "*", "estimated_delivery": "*"},
    )


def test_create_order_requires_customer_info_first() -> None:
    data = reference_input()
    data["customer_info"] = {}
    assert err(order_with(data, {})) == permanent_json(
        "MISSING_CUSTOMER_INFO", "Customer information is required but was not provided"
    )


def test_create_order_requires_the_cart_validation() -> None:
    want = permanent_json(
        "MISSING_CART_VALIDATION", "Cart validation results are required but were not found from validate_cart step"
    )
    assert err(order_with(reference_input(), {})) == want
    deps = reference_deps("create_order")
    deps["validate_cart"]["validated_items"] = []
    assert err(order_with(reference_input(), deps)) == want


def test_create_order_requires_the_payment_result() -> None:
    want = permanent_json(
        "MISSING_PAYMENT_RESULT", "Payment results are required but were not found from process_payment step"
    )
    deps = reference_deps("create_order")
    deps["process_payment"]["payment_id"] = ""
    assert err(order_with(reference_input(), deps)) == want
    del deps["process_payment"]
    assert err(order_with(reference_input(), deps)) == want


def test_create_order_requires_the_inventory_result() -> None:
    want = permanent_json(
        "MISSING_INVENTORY_RESULT", "Inventory results are required but were not found from update_inventory step"
    )
    deps = reference_deps("create_order")
    deps["update_inventory"]["updated_products"] = []
    assert err(order_with(reference_input(), deps)) == want
    del deps["update_inventory"]
    assert err(order_with(reference_input(), deps)) == want


def test_create_order_writes_a_whole_total_as_an_integer() -> None:
    deps = reference_deps("create_order")
    deps["validate_cart"]["total"] = 130.0
    r = ok(order_with(reference_input(), deps)).result
    assert r["total_amount"] == 130 and type(r["total_amount"]) is int


# ------------------------------------------------------------------------------------------------
# send_confirmation (§1.5)


def confirm(input: Any, deps: Any) -> StepHandlerResult:
    return run(SendConfirmationHandler(), "send_confirmation", input, deps)


def with_email(email: Any) -> Dict[str, Any]:
    data = reference_input()
    data["customer_info"]["email"] = email
    return data


def test_send_confirmation_mails_the_reference_customer() -> None:
    before = utc_now()
    r = ok(confirm(reference_input(), reference_deps("send_confirmation"))).result
    assert_recent(r["sent_at"], before)
    assert full_match("msg_[0-9a-f]{24}", r["message_id"])
    assert dict(r, sent_at="*", message_id="*") == {
        "email_sent": True,
        "recipient": "customer@example.com",
        "email_type": "order_confirmation",
        "sent_at": "*",
        "message_id": "*",
    }


@pytest.mark.parametrize("email", [None, "", "  "])
def test_send_confirmation_requires_an_email_first(email: Any) -> None:
    assert err(confirm(with_email(email), {})) == permanent_json(
        "MISSING_CUSTOMER_EMAIL", "Customer email is required but was not provided"
    )


def test_send_confirmation_requires_an_email_when_customer_info_is_absent() -> None:
    data = reference_input()
    del data["customer_info"]
    assert err(confirm(data, {})) == permanent_json(
        "MISSING_CUSTOMER_EMAIL", "Customer email is required but was not provided"
    )


def test_send_confirmation_requires_the_order_result() -> None:
    want = permanent_json("MISSING_ORDER_RESULT", "Order results are required but were not found from create_order step")
    assert err(confirm(reference_input(), {})) == want
    deps = reference_deps("send_confirmation")
    deps["create_order"]["order_id"] = None
    assert err(confirm(reference_input(), deps)) == want


def test_send_confirmation_requires_the_cart_validation() -> None:
    want = permanent_json(
        "MISSING_CART_VALIDATION", "Cart validation results are required but were not found from validate_cart step"
    )
    deps = reference_deps("send_confirmation")
    deps["validate_cart"]["validated_items"] = []
    assert err(confirm(reference_input(), deps)) == want
    del deps["validate_cart"]
    assert err(confirm(reference_input(), deps)) == want


@pytest.mark.parametrize(
    "email", ["customer.example.com", "a@b@c", "@b", "a@", " a@b.c", "a@b.c\n", "a b@c", "a@b\tc", "a@b\x0bc"]
)
def test_send_confirmation_rejects_malformed_emails(email: str) -> None:
    assert err(confirm(with_email(email), reference_deps("send_confirmation"))) == {
        "message": "Invalid email address provided",
        "error_code": "INVALID_EMAIL",
        "retryable": False,
        "retry_after": None,
        "context": {"email": email},
    }


def test_send_confirmation_rejects_a_non_string_email_echoing_it() -> None:
    e = err(confirm(with_email(42), reference_deps("send_confirmation")))
    assert e["error_code"] == "INVALID_EMAIL"
    assert e["context"] == {"email": 42} and type(e["context"]["email"]) is int


@pytest.mark.parametrize("email", ["a@b", "first.last+tag@example.co.uk", "ü@例え.jp", "a@b\u00a0c"])
def test_send_confirmation_accepts_any_single_at_address(email: str) -> None:
    # \s is ASCII-only (§0.7): a no-break space is not whitespace.
    r = ok(confirm(with_email(email), reference_deps("send_confirmation"))).result
    assert r["recipient"] == email


# ------------------------------------------------------------------------------------------------
# Wiring


def test_the_reference_input_runs_through_all_five_steps() -> None:
    data = reference_input()
    deps: Dict[str, Any] = {}
    deps["validate_cart"] = ok(run(ValidateCartHandler(), "validate_cart", data, {})).result
    payment = ok(run(ProcessPaymentHandler(), "process_payment", data, deps))
    assert payment.metadata["fees"]["total_fees"] == 3.92
    deps["process_payment"] = payment.result
    inventory = ok(run(UpdateInventoryHandler(), "update_inventory", data, deps))
    assert inventory.result["total_items_reserved"] == 3
    assert [u["new_stock"] for u in inventory.result["updated_products"]] == [98, 49]
    assert [c["quantity"] for c in inventory.result["inventory_changes"]] == [-2, -1]
    deps["update_inventory"] = inventory.result
    order = ok(run(CreateOrderHandler(), "create_order", data, deps))
    assert order.result["total_amount"] == 124.76
    assert order.result["status"] == "confirmed"
    assert order.result["customer_email"] == "customer@example.com"
    deps["create_order"] = order.result
    sent = ok(run(SendConfirmationHandler(), "send_confirmation", data, deps))
    assert sent.result["email_sent"] is True
    assert sent.result["recipient"] == "customer@example.com"
    assert sent.result["email_type"] == "order_confirmation"


def _template_callables(name: str) -> list:
    text = (REPO / "fixtures" / "task_templates" / "python" / "blog" / name).read_text()
    return re.findall(r"callable:\s*(\S+)", text)


def test_every_step_callable_of_the_python_template_names_a_handler_class() -> None:
    callables = _template_callables("ecommerce_order_processing.yaml")
    assert callables == [
        "ecommerce.step_handlers.ValidateCartHandler",
        "ecommerce.step_handlers.ProcessPaymentHandler",
        "ecommerce.step_handlers.UpdateInventoryHandler",
        "ecommerce.step_handlers.CreateOrderHandler",
        "ecommerce.step_handlers.SendConfirmationHandler",
    ]
    for name in callables:
        module_name, _, class_name = name.rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        assert isinstance(cls, type) and issubclass(cls, StepHandler), name
        cls()


def test_catalogue_matches_the_spec_table() -> None:
    rows = [(p.id, p.name, f"${p.price:.2f}", p.stock, p.active) for p in CATALOGUE]
    assert rows == [
        (1, "Widget A", "$29.99", 100, True),
        (2, "Widget B", "$49.99", 50, True),
        (3, "Widget C", "$19.99", 25, True),
        (4, "Widget D", "$39.99", 0, True),
        (5, "Widget E", "$59.99", 10, False),
    ]


def test_one_handler_instance_serves_concurrent_attempts() -> None:
    handler = ValidateCartHandler()
    carts = [[{"product_id": 1, "quantity": n}] for n in range(1, 9)]
    results: Dict[int, Optional[StepHandlerResult]] = {}

    def attempt(i: int) -> None:
        results[i] = validate_with(handler, carts[i])

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(carts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(len(carts)):
        r = results[i]
        assert r is not None and r.success
        assert r.result["validated_items"][0]["quantity"] == i + 1


def validate_with(handler: StepHandler, items: Any) -> StepHandlerResult:
    return run(handler, "validate_cart", cart(items), {})
