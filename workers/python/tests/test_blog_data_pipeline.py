"""Spec §2 data pipeline handlers (``examples/blog/data_pipeline/step_handlers.py``): the worked
reference numbers of §2.5, every failure, and the boundaries and rounding rules. A port of the unit
tests of ``workers/rust/src/handlers/blog/data_pipeline.rs``; results and failures must be
identical."""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict

_PYTHON_WORKER = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_PYTHON_WORKER / "examples" / "blog"))

import pytest  # noqa: E402

from data_pipeline.step_handlers import (  # noqa: E402
    AggregateMetricsHandler,
    ExtractCustomerDataHandler,
    ExtractInventoryDataHandler,
    ExtractSalesDataHandler,
    GenerateInsightsHandler,
    TransformCustomersHandler,
    TransformInventoryHandler,
    TransformSalesHandler,
)
from tasker_core import StepHandler, StepHandlerResult  # noqa: E402
from tasker_core.testing import build_context, run_handler  # noqa: E402

from blog_assertions import assert_json_equal

TIMESTAMP = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
REPO = _PYTHON_WORKER.parents[1]


def reference_input() -> Dict[str, Any]:
    return {"pipeline_id": "pipeline_ref", "date_range": {"start_date": "2025-11-01", "end_date": "2025-11-30"}}


def deps(results: Any) -> Any:
    return build_context(attempt=1, max_attempts=2, input={}, dependency_results=results)


def ok(r: StepHandlerResult) -> Dict[str, Any]:
    assert r.success, f"expected success, got {r.error}"
    assert r.result is not None
    json.dumps(r.result, allow_nan=False)  # a plain JSON value
    return r.result


def run(handler: StepHandler, results: Any) -> StepHandlerResult:
    return run_handler(handler, deps(results))


def take_timestamp(result: Dict[str, Any], key: str) -> Dict[str, Any]:
    """``result`` without ``key``, after checking it is a §0.7 timestamp."""
    result = dict(result)
    assert key in result, f"{key} missing"
    ts = result.pop(key)
    assert isinstance(ts, str) and re.fullmatch(TIMESTAMP, ts, re.ASCII), f"{key} = {ts!r}"
    return result


def assert_failure(r: StepHandlerResult, code: str, message: str) -> None:
    assert not r.success, f"expected a failure, got {r.result}"
    assert r.error == {"message": message, "error_code": code, "retryable": False, "retry_after": None, "context": {}}


@pytest.fixture(scope="module")
def chain() -> Dict[str, Dict[str, Any]]:
    """Every step of the reference run (§2.5), each fed its real dependencies."""

    def root(handler: StepHandler) -> Dict[str, Any]:
        return ok(run_handler(handler, build_context(attempt=1, max_attempts=3, input=reference_input())))

    c: Dict[str, Dict[str, Any]] = {}
    c["sales"] = root(ExtractSalesDataHandler())
    c["inventory"] = root(ExtractInventoryDataHandler())
    c["customers"] = root(ExtractCustomerDataHandler())
    c["t_sales"] = ok(run(TransformSalesHandler(), {"extract_sales_data": c["sales"]}))
    c["t_inventory"] = ok(run(TransformInventoryHandler(), {"extract_inventory_data": c["inventory"]}))
    c["t_customers"] = ok(run(TransformCustomersHandler(), {"extract_customer_data": c["customers"]}))
    c["aggregate"] = ok(
        run(
            AggregateMetricsHandler(),
            {"transform_sales": c["t_sales"], "transform_inventory": c["t_inventory"],
             "transform_customers": c["t_customers"]},
        )
    )
    c["insights"] = ok(run(GenerateInsightsHandler(), {"aggregate_metrics": c["aggregate"]}))
    return c


# ------------------------------------------------------------------------------------------------
# Reference input, step by step (§2.5)


def test_extract_sales_data_returns_the_mock_rows_total_and_date_range(chain: Dict[str, Any]) -> None:
    assert_json_equal(
        take_timestamp(chain["sales"], "extracted_at"),
        {
            "records": [
                {"order_id": "ORD-001", "date": "2025-11-01", "product_id": "PROD-A", "quantity": 5, "amount": 499.95},
                {"order_id": "ORD-002", "date": "2025-11-05", "product_id": "PROD-B", "quantity": 3, "amount": 299.97},
                {"order_id": "ORD-003", "date": "2025-11-10", "product_id": "PROD-A", "quantity": 2, "amount": 199.98},
                {"order_id": "ORD-004", "date": "2025-11-15", "product_id": "PROD-C", "quantity": 10, "amount": 1499.9},
                {"order_id": "ORD-005", "date": "2025-11-18", "product_id": "PROD-B", "quantity": 7, "amount": 699.93},
            ],
            "source": "SalesDatabase",
            "total_amount": 3199.73,
            "date_range": {"start_date": "2025-11-01", "end_date": "2025-11-18"},
        },
    )


def test_extract_inventory_data_returns_rows_total_warehouses_in_order_and_product_count(
    chain: Dict[str, Any],
) -> None:
    assert_json_equal(
        take_timestamp(chain["inventory"], "extracted_at"),
        {
            "records": [
                {"product_id": "PROD-A", "sku": "SKU-A-001", "warehouse": "WH-01", "quantity_on_hand": 150, "reorder_point": 50},
                {"product_id": "PROD-B", "sku": "SKU-B-002", "warehouse": "WH-01", "quantity_on_hand": 75, "reorder_point": 25},
                {"product_id": "PROD-C", "sku": "SKU-C-003", "warehouse": "WH-02", "quantity_on_hand": 200, "reorder_point": 100},
                {"product_id": "PROD-A", "sku": "SKU-A-001", "warehouse": "WH-02", "quantity_on_hand": 100, "reorder_point": 50},
                {"product_id": "PROD-B", "sku": "SKU-B-002", "warehouse": "WH-03", "quantity_on_hand": 50, "reorder_point": 25},
            ],
            "source": "InventorySystem",
            "total_quantity": 575,
            "warehouses": ["WH-01", "WH-02", "WH-03"],
            "products_tracked": 3,
        },
    )


def test_extract_customer_data_returns_rows_totals_tiers_and_average(chain: Dict[str, Any]) -> None:
    assert_json_equal(
        take_timestamp(chain["customers"], "extracted_at"),
        {
            "records": [
                {"customer_id": "CUST-001", "name": "Alice Johnson", "tier": "gold", "lifetime_value": 5000, "join_date": "2024-01-15"},
                {"customer_id": "CUST-002", "name": "Bob Smith", "tier": "silver", "lifetime_value": 2500, "join_date": "2024-03-20"},
                {"customer_id": "CUST-003", "name": "Carol White", "tier": "premium", "lifetime_value": 15000, "join_date": "2023-11-10"},
                {"customer_id": "CUST-004", "name": "David Brown", "tier": "standard", "lifetime_value": 500, "join_date": "2025-01-05"},
                {"customer_id": "CUST-005", "name": "Eve Davis", "tier": "gold", "lifetime_value": 7500, "join_date": "2024-06-12"},
            ],
            "source": "CRMSystem",
            "total_customers": 5,
            "total_lifetime_value": 30500,
            "tier_breakdown": {"gold": 2, "silver": 1, "premium": 1, "standard": 1},
            "avg_lifetime_value": 6100,
        },
    )


def test_transform_sales_groups_by_day_and_product(chain: Dict[str, Any]) -> None:
    assert_json_equal(
        chain["t_sales"],
        {
            "record_count": 5,
            "transformation_type": "sales_analytics",
            "source": "extract_sales_data",
            "daily_sales": {
                "2025-11-01": {"total_amount": 499.95, "order_count": 1, "avg_order_value": 499.95},
                "2025-11-05": {"total_amount": 299.97, "order_count": 1, "avg_order_value": 299.97},
                "2025-11-10": {"total_amount": 199.98, "order_count": 1, "avg_order_value": 199.98},
                "2025-11-15": {"total_amount": 1499.9, "order_count": 1, "avg_order_value": 1499.9},
                "2025-11-18": {"total_amount": 699.93, "order_count": 1, "avg_order_value": 699.93},
            },
            "product_sales": {
                "PROD-A": {"total_quantity": 7, "total_revenue": 699.93, "order_count": 2},
                "PROD-B": {"total_quantity": 10, "total_revenue": 999.9, "order_count": 2},
                "PROD-C": {"total_quantity": 10, "total_revenue": 1499.9, "order_count": 1},
            },
            "total_revenue": 3199.73,
        },
    )


def test_transform_inventory_summarises_warehouses_and_products(chain: Dict[str, Any]) -> None:
    assert_json_equal(
        chain["t_inventory"],
        {
            "record_count": 5,
            "transformation_type": "inventory_analytics",
            "source": "extract_inventory_data",
            "warehouse_summary": {
                "WH-01": {"total_quantity": 225, "product_count": 2, "reorder_alerts": 0},
                "WH-02": {"total_quantity": 300, "product_count": 2, "reorder_alerts": 0},
                "WH-03": {"total_quantity": 50, "product_count": 1, "reorder_alerts": 0},
            },
            "product_inventory": {
                "PROD-A": {"total_quantity": 250, "warehouse_count": 2, "needs_reorder": False},
                "PROD-B": {"total_quantity": 125, "warehouse_count": 2, "needs_reorder": False},
                "PROD-C": {"total_quantity": 200, "warehouse_count": 1, "needs_reorder": False},
            },
            "total_quantity_on_hand": 575,
            "reorder_alerts": 0,
        },
    )


def test_transform_customers_analyses_tiers_and_value_segments(chain: Dict[str, Any]) -> None:
    assert_json_equal(
        chain["t_customers"],
        {
            "record_count": 5,
            "transformation_type": "customer_analytics",
            "source": "extract_customer_data",
            "tier_analysis": {
                "gold": {"customer_count": 2, "total_lifetime_value": 12500, "avg_lifetime_value": 6250},
                "silver": {"customer_count": 1, "total_lifetime_value": 2500, "avg_lifetime_value": 2500},
                "premium": {"customer_count": 1, "total_lifetime_value": 15000, "avg_lifetime_value": 15000},
                "standard": {"customer_count": 1, "total_lifetime_value": 500, "avg_lifetime_value": 500},
            },
            "value_segments": {"high_value": 1, "medium_value": 3, "low_value": 1},
            "total_lifetime_value": 30500,
            "avg_customer_value": 6100,
        },
    )


def test_aggregate_metrics_has_exactly_the_ten_reference_values(chain: Dict[str, Any]) -> None:
    assert_json_equal(
        chain["aggregate"],
        {
            "total_revenue": 3199.73,
            "total_inventory_quantity": 575,
            "total_customers": 5,
            "total_customer_lifetime_value": 30500,
            "sales_transactions": 5,
            "inventory_reorder_alerts": 0,
            "revenue_per_customer": 639.95,
            "inventory_turnover_indicator": 5.5647,
            "aggregation_complete": True,
            "sources_included": 3,
        },
    )
    assert list(chain["aggregate"]) == [
        "total_revenue", "total_inventory_quantity", "total_customers", "total_customer_lifetime_value",
        "sales_transactions", "inventory_reorder_alerts", "revenue_per_customer", "inventory_turnover_indicator",
        "aggregation_complete", "sources_included",
    ]


def test_generate_insights_gives_the_reference_findings_and_an_excellent_score(chain: Dict[str, Any]) -> None:
    assert_json_equal(
        take_timestamp(chain["insights"], "generated_at"),
        {
            "insights": [
                {"category": "Revenue", "finding": "Total revenue of $3199.73 with 5 customers",
                 "metric": 639.95, "recommendation": "Customer spend is healthy"},
                {"category": "Inventory", "finding": "All products above reorder points",
                 "metric": 0, "recommendation": "Inventory levels are healthy"},
                {"category": "Customer Value", "finding": "Average customer lifetime value: $6100.00",
                 "metric": 6100, "recommendation": "Focus on retention programs"},
            ],
            "health_score": {"score": 100, "max_score": 100, "rating": "Excellent"},
            "total_metrics_analyzed": 10,
            "pipeline_complete": True,
        },
    )


@pytest.mark.parametrize(
    "handler", [ExtractSalesDataHandler, ExtractInventoryDataHandler, ExtractCustomerDataHandler]
)
def test_handlers_ignore_the_task_input(handler: type) -> None:
    strange = build_context(input={"pipeline_id": "other", "date_range": {"start_date": "1999-01-01"}})
    empty = build_context()
    a = ok(run_handler(handler(), strange))
    b = ok(run_handler(handler(), empty))
    assert take_timestamp(a, "extracted_at") == take_timestamp(b, "extracted_at")


def _template_callables(name: str) -> list:
    text = (REPO / "fixtures" / "task_templates" / "python" / "blog" / name).read_text()
    return re.findall(r"callable:\s*(\S+)", text)


def test_every_step_is_served_by_the_callable_its_python_template_names(chain: Dict[str, Any]) -> None:
    cases = {
        "ExtractSalesDataHandler": ({}, "extracted_at"),
        "ExtractInventoryDataHandler": ({}, "extracted_at"),
        "ExtractCustomerDataHandler": ({}, "extracted_at"),
        "TransformSalesHandler": ({"extract_sales_data": chain["sales"]}, None),
        "TransformInventoryHandler": ({"extract_inventory_data": chain["inventory"]}, None),
        "TransformCustomersHandler": ({"extract_customer_data": chain["customers"]}, None),
        "AggregateMetricsHandler": (
            {"transform_sales": chain["t_sales"], "transform_inventory": chain["t_inventory"],
             "transform_customers": chain["t_customers"]},
            None,
        ),
        "GenerateInsightsHandler": ({"aggregate_metrics": chain["aggregate"]}, "generated_at"),
    }
    callables = _template_callables("analytics_pipeline.yaml")
    assert sorted(callables) == sorted(f"data_pipeline.step_handlers.{c}" for c in cases)
    for name in callables:
        module_name, _, class_name = name.rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        assert isinstance(cls, type) and issubclass(cls, StepHandler), name
        results, timestamp = cases[class_name]
        result = ok(run(cls(), results))
        assert result, name
        if timestamp is not None:
            take_timestamp(result, timestamp)


# ------------------------------------------------------------------------------------------------
# Failures (§2.2-§2.4)


@pytest.mark.parametrize(
    "results",
    [
        {},
        {"extract_sales_data": {}},
        {"extract_sales_data": {"records": []}},
        {"extract_sales_data": {"records": None, "total_amount": 1}},
    ],
)
def test_transform_sales_fails_when_sales_records_are_blank(results: Any) -> None:
    assert_failure(run(TransformSalesHandler(), results), "MISSING_EXTRACT_RESULTS", "Sales extraction results not found")


@pytest.mark.parametrize(
    "results",
    [{}, {"extract_inventory_data": {"records": []}}, {"extract_inventory_data": {"records": "  "}}],
)
def test_transform_inventory_fails_when_inventory_records_are_blank(results: Any) -> None:
    assert_failure(
        run(TransformInventoryHandler(), results), "MISSING_EXTRACT_RESULTS", "Inventory extraction results not found"
    )


@pytest.mark.parametrize(
    "results", [{}, {"extract_customer_data": {"records": {}}}, {"extract_customer_data": None}]
)
def test_transform_customers_fails_when_customer_records_are_blank(results: Any) -> None:
    assert_failure(
        run(TransformCustomersHandler(), results), "MISSING_EXTRACT_RESULTS", "Customer extraction results not found"
    )


def test_transforms_read_their_own_extract_only(chain: Dict[str, Any]) -> None:
    # The sales rows under the inventory step's name are not the sales extract.
    assert_failure(
        run(TransformSalesHandler(), {"extract_inventory_data": chain["sales"]}),
        "MISSING_EXTRACT_RESULTS",
        "Sales extraction results not found",
    )


def test_transforms_read_records_that_are_not_an_array_as_no_rows() -> None:
    r = ok(run(TransformSalesHandler(), {"extract_sales_data": {"records": "x"}}))
    assert_json_equal(
        r,
        {"record_count": 0, "transformation_type": "sales_analytics", "source": "extract_sales_data",
         "daily_sales": {}, "product_sales": {}, "total_revenue": 0},
    )
    r = ok(run(TransformCustomersHandler(), {"extract_customer_data": {"records": 5}}))
    assert r["avg_customer_value"] == 0 and type(r["avg_customer_value"]) is int


def test_aggregate_metrics_names_every_blank_transform_in_branch_order(chain: Dict[str, Any]) -> None:
    cases = [
        ({}, "transform_sales, transform_inventory, transform_customers"),
        ({"transform_inventory": chain["t_inventory"], "transform_customers": chain["t_customers"]}, "transform_sales"),
        ({"transform_sales": chain["t_sales"], "transform_customers": chain["t_customers"]}, "transform_inventory"),
        ({"transform_sales": chain["t_sales"], "transform_inventory": chain["t_inventory"]}, "transform_customers"),
        (
            {"transform_sales": {}, "transform_inventory": chain["t_inventory"], "transform_customers": None},
            "transform_sales, transform_customers",
        ),
    ]
    for results, names in cases:
        assert_failure(
            run(AggregateMetricsHandler(), results), "MISSING_TRANSFORM_RESULTS", f"Missing transform results: {names}"
        )


@pytest.mark.parametrize("results", [{}, {"aggregate_metrics": {}}, {"aggregate_metrics": None}])
def test_generate_insights_fails_when_the_aggregate_is_blank(results: Any) -> None:
    assert_failure(run(GenerateInsightsHandler(), results), "MISSING_AGGREGATE_RESULTS", "Aggregated metrics not found")


# ------------------------------------------------------------------------------------------------
# Edge cases, boundaries, rounding


def test_transform_sales_rounds_averages_half_away_from_zero_and_sums_exactly() -> None:
    records = [
        {"date": "2025-12-01", "product_id": "P", "quantity": 1, "amount": 0.1},
        {"date": "2025-12-01", "product_id": "P", "quantity": 2, "amount": 0.2},
        {"date": "2025-12-02", "product_id": "Q", "quantity": 1, "amount": 0.01},
        {"date": "2025-12-02", "product_id": "Q", "quantity": 1, "amount": 0.04},
    ]
    r = ok(run(TransformSalesHandler(), {"extract_sales_data": {"records": records}}))
    # 0.1 + 0.2 is exactly 0.3; 0.3 / 2 = 0.15; 0.05 / 2 = 0.025 rounds up to 0.03.
    assert_json_equal(r["daily_sales"]["2025-12-01"], {"total_amount": 0.3, "order_count": 2, "avg_order_value": 0.15})
    assert_json_equal(r["daily_sales"]["2025-12-02"], {"total_amount": 0.05, "order_count": 2, "avg_order_value": 0.03})
    assert_json_equal(r["product_sales"]["P"], {"total_quantity": 3, "total_revenue": 0.3, "order_count": 2})
    assert r["total_revenue"] == 0.35
    assert r["record_count"] == 4 and type(r["record_count"]) is int


def test_transform_sales_keys_non_string_values_by_their_json_text() -> None:
    records = [
        {"date": None, "product_id": 7, "quantity": 1.5, "amount": 1},
        {"product_id": 7.0, "quantity": "x", "amount": "2"},
        {"date": {"b": 1, "a": [True, None]}, "product_id": 1e-7, "quantity": 2, "amount": 3},
    ]
    r = ok(run(TransformSalesHandler(), {"extract_sales_data": {"records": records}}))
    assert_json_equal(
        r["daily_sales"],
        {
            "": {"total_amount": 1, "order_count": 2, "avg_order_value": 0.5},
            '{"a":[true,null],"b":1}': {"total_amount": 3, "order_count": 1, "avg_order_value": 3},
        },
    )
    assert_json_equal(
        r["product_sales"],
        {
            "7": {"total_quantity": 1.5, "total_revenue": 1, "order_count": 1},
            "7.0": {"total_quantity": 0, "total_revenue": 0, "order_count": 1},
            "1e-7": {"total_quantity": 2, "total_revenue": 3, "order_count": 1},
        },
    )


def test_transform_inventory_counts_warehouse_alerts_at_the_reorder_point_but_product_reorder_only_below() -> None:
    records = [
        {"product_id": "P", "warehouse": "W1", "quantity_on_hand": 50, "reorder_point": 50},
        {"product_id": "P", "warehouse": "W2", "quantity_on_hand": 10, "reorder_point": 10},
        {"product_id": "Q", "warehouse": "W1", "quantity_on_hand": 5, "reorder_point": 20},
        {"product_id": "Q", "warehouse": "W1", "quantity_on_hand": 30, "reorder_point": 20},
    ]
    r = ok(run(TransformInventoryHandler(), {"extract_inventory_data": {"records": records}}))
    assert_json_equal(
        r["warehouse_summary"],
        {
            "W1": {"total_quantity": 85, "product_count": 2, "reorder_alerts": 2},
            "W2": {"total_quantity": 10, "product_count": 1, "reorder_alerts": 1},
        },
    )
    # P: 60 on hand vs 60 reorder points -> not below; Q: 35 vs 40 -> below.
    assert_json_equal(
        r["product_inventory"],
        {
            "P": {"total_quantity": 60, "warehouse_count": 2, "needs_reorder": False},
            "Q": {"total_quantity": 35, "warehouse_count": 1, "needs_reorder": True},
        },
    )
    assert r["reorder_alerts"] == 1 and type(r["reorder_alerts"]) is int
    assert r["total_quantity_on_hand"] == 95 and type(r["total_quantity_on_hand"]) is int


def test_transform_inventory_writes_whole_float_quantities_as_integers() -> None:
    records = [{"product_id": "P", "warehouse": "W", "quantity_on_hand": 2.5, "reorder_point": 1},
               {"product_id": "P", "warehouse": "W", "quantity_on_hand": 1.5, "reorder_point": 1}]
    r = ok(run(TransformInventoryHandler(), {"extract_inventory_data": {"records": records}}))
    assert_json_equal(r["total_quantity_on_hand"], 4)
    assert_json_equal(r["warehouse_summary"]["W"]["total_quantity"], 4)


def test_transform_customers_segments_at_the_exact_thresholds() -> None:
    records = [
        {"tier": "a", "lifetime_value": 10000},
        {"tier": "a", "lifetime_value": 9999.99},
        {"tier": "b", "lifetime_value": 1000},
        {"tier": "b", "lifetime_value": 999.99},
        {"tier": "c", "lifetime_value": 0.01},
        {"tier": "c", "lifetime_value": 0.02},
    ]
    r = ok(run(TransformCustomersHandler(), {"extract_customer_data": {"records": records}}))
    assert_json_equal(r["value_segments"], {"high_value": 1, "medium_value": 2, "low_value": 3})
    assert_json_equal(
        r["tier_analysis"]["a"], {"customer_count": 2, "total_lifetime_value": 19999.99, "avg_lifetime_value": 10000}
    )
    # 0.03 / 2 = 0.015 rounds half away from zero to 0.02.
    assert r["tier_analysis"]["c"]["avg_lifetime_value"] == 0.02
    assert r["total_lifetime_value"] == 22000.01
    # 22000.01 / 6 = 3666.668333... -> 3666.67
    assert r["avg_customer_value"] == 3666.67


def transforms(revenue: Any, customers: Any, quantity: Any, ltv: Any, alerts: Any) -> Dict[str, Any]:
    return {
        "transform_sales": {"total_revenue": revenue, "record_count": 7},
        "transform_inventory": {"total_quantity_on_hand": quantity, "reorder_alerts": alerts},
        "transform_customers": {"record_count": customers, "total_lifetime_value": ltv},
    }


def test_aggregate_metrics_rounds_turnover_to_four_decimals_half_away_from_zero() -> None:
    # 0.01 / 8 = 0.00125 -> 0.0013 (banker's rounding would give 0.0012); 0.01 / 2 = 0.005 -> 0.01.
    r = ok(run(AggregateMetricsHandler(), transforms(0.01, 2, 8, 1, 2)))
    assert r["inventory_turnover_indicator"] == 0.0013
    assert r["revenue_per_customer"] == 0.01
    assert r["sales_transactions"] == 7 and type(r["sales_transactions"]) is int
    assert r["inventory_reorder_alerts"] == 2 and type(r["inventory_reorder_alerts"]) is int
    assert len(r) == 10


def test_aggregate_metrics_writes_integer_fields_without_a_fraction() -> None:
    r = ok(run(AggregateMetricsHandler(), transforms(10.0, 4.0, 5.0, 8.0, 0.0)))
    for key in ["total_inventory_quantity", "total_customers", "inventory_reorder_alerts", "sales_transactions"]:
        assert type(r[key]) is int, f"{key} = {r[key]!r}"
    assert_json_equal(r["inventory_turnover_indicator"], 2)
    assert_json_equal(r["revenue_per_customer"], 2.5)
    assert_json_equal(r["total_revenue"], 10)
    assert_json_equal(r["total_customer_lifetime_value"], 8)


def test_aggregate_metrics_divides_by_zero_as_zero() -> None:
    r = ok(run(AggregateMetricsHandler(), transforms(100, 0, 0, 0, 0)))
    assert_json_equal(r["revenue_per_customer"], 0)
    assert_json_equal(r["inventory_turnover_indicator"], 0)


def test_aggregate_metrics_counts_missing_or_non_numeric_fields_as_zero() -> None:
    r = ok(run(AggregateMetricsHandler(), transforms("100", None, True, [1], {})))
    assert_json_equal(
        r,
        {
            "total_revenue": 0, "total_inventory_quantity": 0, "total_customers": 0,
            "total_customer_lifetime_value": 0, "sales_transactions": 7, "inventory_reorder_alerts": 0,
            "revenue_per_customer": 0, "inventory_turnover_indicator": 0,
            "aggregation_complete": True, "sources_included": 3,
        },
    )


def aggregate(rpc: Any, alerts: Any, ltv: Any, customers: Any) -> Dict[str, Any]:
    return {
        "aggregate_metrics": {
            "total_revenue": 1234.5,
            "total_customers": customers,
            "revenue_per_customer": rpc,
            "inventory_reorder_alerts": alerts,
            "total_customer_lifetime_value": ltv,
        }
    }


def insights_of(results: Any) -> Dict[str, Any]:
    return ok(run(GenerateInsightsHandler(), results))


def test_generate_insights_at_the_thresholds_gives_no_points_and_the_other_recommendations() -> None:
    # revenue_per_customer exactly 500 and avg_ltv exactly 3000: not above, not below.
    r = insights_of(aggregate(500, 3, 6000, 2))
    assert_json_equal(
        r["insights"],
        [
            {"category": "Revenue", "finding": "Total revenue of $1234.50 with 2 customers",
             "metric": 500, "recommendation": "Customer spend is healthy"},
            {"category": "Inventory", "finding": "3 products need reordering",
             "metric": 3, "recommendation": "Review reorder points and place purchase orders"},
            {"category": "Customer Value", "finding": "Average customer lifetime value: $3000.00",
             "metric": 3000, "recommendation": "Increase customer engagement"},
        ],
    )
    assert_json_equal(r["health_score"], {"score": 0, "max_score": 100, "rating": "Needs Improvement"})
    assert_json_equal(r["total_metrics_analyzed"], 5)
    assert r["pipeline_complete"] is True


def test_generate_insights_recommends_upselling_below_500() -> None:
    r = insights_of(aggregate(499.99, 0, 1, 1))
    assert r["insights"][0]["recommendation"] == "Consider upselling strategies"
    assert r["insights"][0]["metric"] == 499.99


def test_generate_insights_writes_whole_float_counts_without_a_fraction() -> None:
    r = insights_of(aggregate(10, 2.0, 6000, 2.0))
    assert r["insights"][0]["finding"] == "Total revenue of $1234.50 with 2 customers"
    assert r["insights"][1]["finding"] == "2 products need reordering"
    assert_json_equal(r["insights"][1]["metric"], 2)
    assert_json_equal(r["insights"][2]["metric"], 3000)


@pytest.mark.parametrize(
    "rpc, alerts, ltv, score, rating",
    [
        (100, 1, 100, 0, "Needs Improvement"),
        (100, 0, 100, 30, "Needs Improvement"),
        (500.01, 1, 100, 40, "Fair"),
        (100, 0, 3000.01, 60, "Good"),
        (500.01, 0, 100, 70, "Good"),
        (500.01, 0, 3000.01, 100, "Excellent"),
    ],
)
def test_generate_insights_rating_follows_the_score_ladder(rpc: Any, alerts: Any, ltv: Any, score: int, rating: str) -> None:
    r = insights_of(aggregate(rpc, alerts, ltv, 1))
    assert_json_equal(r["health_score"], {"score": score, "max_score": 100, "rating": rating})


def test_generate_insights_rounds_average_ltv_to_cents_half_away_from_zero() -> None:
    # 0.05 / 2 = 0.025 -> 0.03
    r = insights_of(aggregate(1, 0, 0.05, 2))
    assert r["insights"][2]["metric"] == 0.03
    assert r["insights"][2]["finding"] == "Average customer lifetime value: $0.03"


def test_generate_insights_counts_every_key_of_the_aggregate() -> None:
    results = aggregate(1, 0, 1, 1)
    results["aggregate_metrics"]["extra"] = False
    results["aggregate_metrics"]["more"] = None
    assert_json_equal(insights_of(results)["total_metrics_analyzed"], 7)


def test_generate_insights_reads_zero_customers_as_zero_average() -> None:
    r = insights_of(aggregate(0, 0, 100, 0))
    assert r["insights"][0]["finding"] == "Total revenue of $1234.50 with 0 customers"
    assert_json_equal(r["insights"][2]["metric"], 0)
    assert r["insights"][2]["finding"] == "Average customer lifetime value: $0.00"
