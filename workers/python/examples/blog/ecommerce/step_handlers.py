"""Handlers of spec §1 e-commerce order processing
(``ecommerce_<sfx>/ecommerce_order_processing@1.0.0``): a linear chain
``validate_cart -> process_payment -> update_inventory -> create_order -> send_confirmation``
against the spec's mock catalogue.

A port of ``workers/rust/src/handlers/blog/ecommerce.rs``, with the same readings where the spec is
open:

- a JSON whole-number float (``2.0``) counts as an integer and is written back as ``2``; an
  integer must fit 64 bits, and a number counts only within the range of the Rust decimal type
  (at most 28 decimals, magnitude below 2**96), exactly as the Rust handlers read it;
- stock is checked per item (two lines of one product do not pool their quantities);
- a value written into a message is the string itself, an integral number without a fraction,
  and anything else as the compact JSON text serde_json writes.

Each handler reads the clock once per attempt and applies its rules in the spec's order; the first
failing rule ends the attempt. Money is exact (``decimal.Decimal``), rounded half away from zero.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Dict, List, NamedTuple, Optional

from blog_support import (
    ExactHandler,
    Now,
    decimal as _decimal,
    integer as _integer,
    json_text as _json_text,
    is_blank,
    money_json,
    money_text,
    random_hex,
    random_hex_upper,
    random_int,
    round_cents,
    text_date,
)
from tasker_core import StepContext, StepHandlerResult
from tasker_core.errors import PermanentError, RetryableError


class Product(NamedTuple):
    """One row of the §1 catalogue. Prices are integer cents."""

    id: int
    name: str
    price_cents: int
    stock: int
    active: bool

    @property
    def price(self) -> Decimal:
        return Decimal(self.price_cents) / 100


#: The §1 catalogue, shared by validate_cart and update_inventory. Stock is never persisted.
CATALOGUE = (
    Product(1, "Widget A", 2999, 100, True),
    Product(2, "Widget B", 4999, 50, True),
    Product(3, "Widget C", 1999, 25, True),
    Product(4, "Widget D", 3999, 0, True),
    Product(5, "Widget E", 5999, 10, False),
)

_TAX_RATE = Decimal("0.08")
_FEE_RATE = Decimal("0.029")
_FIXED_FEE = Decimal("0.30")
_ONE_CENT = Decimal("0.01")
_LB_PER_UNIT = Decimal("0.5")

# ---------------------------------------------------------------------------------------------
# Private value helpers: the Rust module's readings of JSON values.

_SPACE_CLASS = " \\t\\n\\x0b\\x0c\\r"
_EMAIL = re.compile(f"[^@{_SPACE_CLASS}]+@[^@{_SPACE_CLASS}]+")






def _placeholder(value: Any) -> str:
    """A value as written into a message: strings as they are, integral numbers without a
    fraction, anything else as JSON."""
    if isinstance(value, str):
        return value
    i = _integer(value)
    if i is not None:
        return str(i)
    return _json_text(value)


def _field(obj: Any, key: str) -> Any:
    """``obj[key]`` of a JSON object; None for a missing key or a value that is not an object."""
    return obj.get(key) if isinstance(obj, dict) else None


def _non_blank_array(value: Any) -> Optional[List[Any]]:
    return value if isinstance(value, list) and value else None


def _find_product(product_id: Any) -> Optional[Product]:
    """The catalogue row whose id equals ``product_id`` by value (``1`` and ``1.0`` alike)."""
    pid = _integer(product_id)
    if pid is None:
        return None
    return next((p for p in CATALOGUE if p.id == pid), None)


def _stock_context(p: Product, quantity: int) -> Dict[str, Any]:
    return {
        "product_id": p.id,
        "product_name": p.name,
        "available_stock": p.stock,
        "requested_quantity": quantity,
    }


def _shipping_for(total_quantity: int) -> Decimal:
    """Shipping by weight (0.5 lb per unit): <= 2 lb 5.99, <= 10 lb 9.99, else 14.99."""
    weight = _LB_PER_UNIT * total_quantity
    if weight <= 2:
        return Decimal("5.99")
    if weight <= 10:
        return Decimal("9.99")
    return Decimal("14.99")


# ---------------------------------------------------------------------------------------------
# Handlers.


class ValidateCartHandler(ExactHandler):
    """§1.1: checks every cart item against the catalogue and prices the cart."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        # Rule 1. A non-array value is not a list of cart items either.
        items = _non_blank_array(context.get_input("cart_items"))
        if items is None:
            raise PermanentError("Cart items are required but were not provided", error_code="MISSING_CART_ITEMS")

        # Pass A: rules 2-3, item by item.
        quantities: List[int] = []
        for n, item in enumerate(items, start=1):
            if is_blank(_field(item, "product_id")):
                raise PermanentError(f"Product ID is required for cart item {n}", error_code="MISSING_PRODUCT_ID")
            q = _integer(_field(item, "quantity"))
            if q is None or q < 1:
                raise PermanentError(f"Valid quantity is required for cart item {n}", error_code="INVALID_QUANTITY")
            quantities.append(q)

        # Pass B: rules 4-6, item by item in cart order.
        validated: List[Dict[str, Any]] = []
        subtotal = Decimal(0)
        total_quantity = 0
        for item, q in zip(items, quantities):
            product_id = _field(item, "product_id")
            p = _find_product(product_id)
            if p is None:
                raise PermanentError(f"Product {_placeholder(product_id)} not found", error_code="PRODUCT_NOT_FOUND")
            if not p.active:
                raise PermanentError(f"Product {p.name} is no longer available", error_code="PRODUCT_INACTIVE")
            if p.stock < q:
                raise RetryableError(
                    f"Insufficient stock for {p.name}. Available: {p.stock}, Requested: {q}",
                    error_code="INSUFFICIENT_STOCK",
                    retry_after=30,
                    context=_stock_context(p, q),
                )
            line_total = p.price * q
            subtotal += line_total
            total_quantity += q
            validated.append(
                {
                    "product_id": p.id,
                    "name": p.name,
                    "price": money_json(p.price),
                    "quantity": q,
                    "line_total": money_json(line_total),
                }
            )

        tax = round_cents(subtotal * _TAX_RATE)
        shipping = _shipping_for(total_quantity)
        total = subtotal + tax + shipping
        return self.success(
            {
                "validated_items": validated,
                "subtotal": money_json(subtotal),
                "tax": money_json(tax),
                "shipping": money_json(shipping),
                "total": money_json(total),
                "item_count": len(items),
                "validated_at": now.iso(),
            }
        )


_TOKEN_FAILURES = {
    "tok_test_declined": ("Payment declined: Card was declined by issuer", "card_declined"),
    "tok_test_insufficient_funds": ("Payment declined: Insufficient funds", "insufficient_funds"),
}


class ProcessPaymentHandler(ExactHandler):
    """§1.2: charges the cart total through the simulated gateway."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        info = context.get_input("payment_info")
        if is_blank(info):
            raise PermanentError(
                "Payment information is required but was not provided", error_code="MISSING_PAYMENT_INFO"
            )
        method = _field(info, "method")
        if is_blank(method):
            raise PermanentError("Payment method is required but was not provided", error_code="MISSING_PAYMENT_METHOD")
        token = _field(info, "token")
        if is_blank(token):
            raise PermanentError("Payment token is required but was not provided", error_code="MISSING_PAYMENT_TOKEN")
        amount_value = _field(info, "amount")
        amount = _decimal(amount_value)
        if amount is None:
            raise PermanentError("Payment amount is required but was not provided", error_code="MISSING_PAYMENT_AMOUNT")
        total_value = context.get_dependency_field("validate_cart", "total")
        total = _decimal(total_value)
        if total is None:
            raise PermanentError(
                "Cart total is required but was not found from validate_cart step", error_code="MISSING_CART_TOTAL"
            )
        if abs(round_cents(amount) - total) > _ONE_CENT:
            raise PermanentError(
                f"Payment amount mismatch. Expected: {money_text(total)}, Provided: {money_text(amount)}",
                error_code="PAYMENT_AMOUNT_MISMATCH",
                context={
                    "expected_amount": total_value,
                    "provided_amount": amount_value,
                    "difference": money_json(amount - total),
                },
            )
        if isinstance(token, str):
            if token in _TOKEN_FAILURES:
                message, status = _TOKEN_FAILURES[token]
                raise PermanentError(message, error_code="PAYMENT_DECLINED", context={"payment_status": status})
            if token == "tok_test_network_error":
                raise RetryableError(
                    "Payment service temporarily unavailable",
                    error_code="NETWORK_ERROR",
                    retry_after=15,
                    context={"payment_status": "timeout"},
                )

        amount_charged = round_cents(total)
        processing_fee = round_cents(amount_charged * _FEE_RATE)
        return self.success(
            {
                "payment_id": f"pay_{random_hex(24)}",
                "amount_charged": money_json(amount_charged),
                "currency": "USD",
                "payment_method_type": method,
                "transaction_id": f"txn_{random_hex(24)}",
                "processed_at": now.iso(),
                "status": "completed",
            },
            metadata={
                "fees": {
                    "processing_fee": money_json(processing_fee),
                    "fixed_fee": money_json(_FIXED_FEE),
                    "total_fees": money_json(processing_fee + _FIXED_FEE),
                }
            },
        )


class UpdateInventoryHandler(ExactHandler):
    """§1.3: reserves the stock of every validated item."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        # Rule 1. validate_cart writes an integer quantity into every item; items without one are
        # not validated items.
        items = _non_blank_array(context.get_dependency_field("validate_cart", "validated_items"))
        quantities = [_integer(_field(item, "quantity")) for item in items or []]
        if items is None or any(q is None for q in quantities):
            raise PermanentError(
                "Validated cart items are required but were not found from validate_cart step",
                error_code="MISSING_VALIDATED_ITEMS",
            )
        if is_blank(context.get_input("customer_info")):
            raise PermanentError(
                "Customer information is required but was not provided", error_code="MISSING_CUSTOMER_INFO"
            )

        iso = now.iso()
        updated: List[Dict[str, Any]] = []
        changes: List[Dict[str, Any]] = []
        total_reserved = 0
        for item, q in zip(items, quantities):
            assert q is not None
            product_id = _field(item, "product_id")
            p = _find_product(product_id)
            if p is None:
                raise PermanentError(f"Product {_placeholder(product_id)} not found", error_code="PRODUCT_NOT_FOUND")
            if p.stock < q:
                raise RetryableError(
                    f"Stock not available for {p.name}. Available: {p.stock}, Needed: {q}",
                    error_code="STOCK_UNAVAILABLE",
                    retry_after=30,
                    context=_stock_context(p, q),
                )
            reservation_id = f"rsv_{random_hex(16)}"
            updated.append(
                {
                    "product_id": p.id,
                    "name": p.name,
                    "previous_stock": p.stock,
                    "new_stock": p.stock - q,
                    "quantity_reserved": q,
                    "reservation_id": reservation_id,
                }
            )
            changes.append(
                {
                    "product_id": p.id,
                    "change_type": "reservation",
                    "quantity": -q,
                    "reason": "order_checkout",
                    "timestamp": iso,
                    "reservation_id": reservation_id,
                    "inventory_log_id": f"log_{random_hex(12)}",
                }
            )
            total_reserved += q
        return self.success(
            {
                "updated_products": updated,
                "total_items_reserved": total_reserved,
                "inventory_changes": changes,
                "inventory_log_id": f"log_{random_hex(16)}",
                "updated_at": iso,
            }
        )


class CreateOrderHandler(ExactHandler):
    """§1.4: records the order."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        customer = context.get_input("customer_info")
        if is_blank(customer):
            raise PermanentError(
                "Customer information is required but was not provided", error_code="MISSING_CUSTOMER_INFO"
            )
        if is_blank(context.get_dependency_field("validate_cart", "validated_items")):
            raise PermanentError(
                "Cart validation results are required but were not found from validate_cart step",
                error_code="MISSING_CART_VALIDATION",
            )
        if is_blank(context.get_dependency_field("process_payment", "payment_id")):
            raise PermanentError(
                "Payment results are required but were not found from process_payment step",
                error_code="MISSING_PAYMENT_RESULT",
            )
        if is_blank(context.get_dependency_field("update_inventory", "updated_products")):
            raise PermanentError(
                "Inventory results are required but were not found from update_inventory step",
                error_code="MISSING_INVENTORY_RESULT",
            )
        total_value = context.get_dependency_field("validate_cart", "total")
        total = _decimal(total_value)
        return self.success(
            {
                "order_id": random_int(1000, 9999),
                "order_number": f"ORD-{now.compact_date()}-{random_hex_upper(8)}",
                "status": "confirmed",
                "total_amount": money_json(total) if total is not None else total_value,
                "customer_email": _field(customer, "email"),
                "created_at": now.iso(),
                "estimated_delivery": text_date(now.plus_days(7)),
            }
        )


class SendConfirmationHandler(ExactHandler):
    """§1.5: sends the (simulated) confirmation mail."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        customer = context.get_input("customer_info")
        email = _field(customer, "email")
        if is_blank(email):
            raise PermanentError("Customer email is required but was not provided", error_code="MISSING_CUSTOMER_EMAIL")
        order_id = context.get_dependency_field("create_order", "order_id")
        if is_blank(order_id):
            raise PermanentError(
                "Order results are required but were not found from create_order step",
                error_code="MISSING_ORDER_RESULT",
            )
        if is_blank(context.get_dependency_field("validate_cart", "validated_items")):
            raise PermanentError(
                "Cart validation results are required but were not found from validate_cart step",
                error_code="MISSING_CART_VALIDATION",
            )
        if not (isinstance(email, str) and _EMAIL.fullmatch(email)):
            raise PermanentError("Invalid email address provided", error_code="INVALID_EMAIL", context={"email": email})

        name = _field(customer, "name")
        name_text = _placeholder(name) if isinstance(customer, dict) and "name" in customer else ""

        def order(key: str) -> str:
            return _placeholder(context.get_dependency_field("create_order", key))

        context.logger.info(
            f"Simulated order confirmation to {name_text} <{email}>: order {order('order_number')} "
            f"({order('order_id')}), total ${order('total_amount')}, estimated delivery "
            f"{order('estimated_delivery')}, details at https://example.com/orders/{_placeholder(order_id)}"
        )
        return self.success(
            {
                "email_sent": True,
                "recipient": email,
                "email_type": "order_confirmation",
                "sent_at": now.iso(),
                "message_id": f"msg_{random_hex(24)}",
            }
        )


__all__ = [
    "CATALOGUE",
    "Product",
    "ValidateCartHandler",
    "ProcessPaymentHandler",
    "UpdateInventoryHandler",
    "CreateOrderHandler",
    "SendConfirmationHandler",
]
