"""Handlers of spec §2 data pipeline analytics (``data_pipeline_<sfx>/analytics_pipeline@1.0.0``).

Three parallel branches (sales, inventory, customers) extract mock rows and transform them;
``aggregate_metrics`` joins the three transforms and ``generate_insights`` reads the aggregate.
The handlers read no task input, so every valid input gives the same results. Money is exact
(``decimal.Decimal``) and rounded half away from zero (§0.7).

A port of ``workers/rust/src/handlers/blog/data_pipeline.rs``, with the same readings where the
spec is open (none is reachable from task input, since the extract steps always return the mock
rows):

- a numeric field that is missing or not a number counts as 0 (a number counts only within the
  range of the Rust decimal type: at most 28 decimals, magnitude below 2**96);
- a grouping key (``date``, ``product_id``, ``warehouse``, ``tier``) that is a string is used as
  is, any other JSON value by its compact JSON text as serde_json writes it, a missing or null one
  as ``""``;
- a ``records`` value that is not blank and not an array has no rows;
- a division by zero gives 0;
- the thresholds of §2.4 are literal: ``revenue_per_customer`` < 500 recommends upselling, > 500
  earns 40 points, so exactly 500 does neither; ``avg_ltv`` > 3000 (exactly 3000 is not above).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Dict, List, Set

from blog_support import ExactHandler, Now, json_text as _json_text, decimal as _decimal, is_blank, money_json, money_text, round_cents
from tasker_core import StepContext, StepHandlerResult
from tasker_core.errors import PermanentError

#: The base namespace of this workflow (§0.2).
NAMESPACE = "data_pipeline"

# ---------------------------------------------------------------------------------------------
# Mock data (§2), in the spec's row order.

#: ``(order_id, date, product_id, quantity, amount)``.
SALES = (
    ("ORD-001", "2025-11-01", "PROD-A", 5, "499.95"),
    ("ORD-002", "2025-11-05", "PROD-B", 3, "299.97"),
    ("ORD-003", "2025-11-10", "PROD-A", 2, "199.98"),
    ("ORD-004", "2025-11-15", "PROD-C", 10, "1499.90"),
    ("ORD-005", "2025-11-18", "PROD-B", 7, "699.93"),
)

#: ``(product_id, sku, warehouse, quantity_on_hand, reorder_point)``.
INVENTORY = (
    ("PROD-A", "SKU-A-001", "WH-01", 150, 50),
    ("PROD-B", "SKU-B-002", "WH-01", 75, 25),
    ("PROD-C", "SKU-C-003", "WH-02", 200, 100),
    ("PROD-A", "SKU-A-001", "WH-02", 100, 50),
    ("PROD-B", "SKU-B-002", "WH-03", 50, 25),
)

#: ``(customer_id, name, tier, lifetime_value, join_date)``.
CUSTOMERS = (
    ("CUST-001", "Alice Johnson", "gold", "5000.00", "2024-01-15"),
    ("CUST-002", "Bob Smith", "silver", "2500.00", "2024-03-20"),
    ("CUST-003", "Carol White", "premium", "15000.00", "2023-11-10"),
    ("CUST-004", "David Brown", "standard", "500.00", "2025-01-05"),
    ("CUST-005", "Eve Davis", "gold", "7500.00", "2024-06-12"),
)

EXTRACT_SALES_DATA = "extract_sales_data"
EXTRACT_INVENTORY_DATA = "extract_inventory_data"
EXTRACT_CUSTOMER_DATA = "extract_customer_data"
TRANSFORMS = ("transform_sales", "transform_inventory", "transform_customers")

_HIGH_VALUE = Decimal(10_000)
_MEDIUM_VALUE = Decimal(1_000)
_FIVE_HUNDRED = Decimal(500)
_THREE_THOUSAND = Decimal(3000)
_FOUR_DECIMALS = Decimal("0.0001")

# ---------------------------------------------------------------------------------------------
# Private value helpers: the Rust module's readings of JSON values.




def _num(value: Any) -> Decimal:
    """A numeric field of a row or result; missing or non-numeric counts as 0."""
    d = _decimal(value)
    return d if d is not None else Decimal(0)




def _field(obj: Any, key: str) -> Any:
    """``obj[key]`` of a JSON object; None for a missing key or a value that is not an object."""
    return obj.get(key) if isinstance(obj, dict) else None


def _key_of(row: Any, field: str) -> str:
    """A grouping key of a row."""
    value = _field(row, field)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _json_text(value)


def _number_json(d: Decimal) -> Any:
    """An exact number as JSON: integral values are written as integers (``575``, not ``575.0``)."""
    if d == d.to_integral_value():
        return int(d)
    return float(d.normalize())


def _number_text(d: Decimal) -> str:
    """An exact number as text, e.g. ``5`` or ``2.5`` (never an exponent)."""
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def _ratio(num: Decimal, den: Decimal) -> Decimal:
    """``num / den``, or 0 when ``den`` is 0."""
    if den == 0:
        return Decimal(0)
    return num / den


def _avg_money(total: Decimal, count: int) -> Any:
    """round(total / count) to cents."""
    return money_json(round_cents(_ratio(total, Decimal(count))))


def _extract_records(context: StepContext, extract_step: str, label: str) -> List[Any]:
    """The extract's ``records``, failing with ``MISSING_EXTRACT_RESULTS`` when blank (§2.2)."""
    records = context.get_dependency_field(extract_step, "records")
    if is_blank(records):
        raise PermanentError(f"{label} extraction results not found", error_code="MISSING_EXTRACT_RESULTS")
    return records if isinstance(records, list) else []


# ---------------------------------------------------------------------------------------------
# §2.1 Extract steps. They cannot fail.


class ExtractSalesDataHandler(ExactHandler):
    """§2.1 ``extract_sales_data``."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        total_amount = Decimal(0)
        records: List[Dict[str, Any]] = []
        for order_id, date, product_id, quantity, amount_text in SALES:
            amount = Decimal(amount_text)
            total_amount += amount
            records.append(
                {
                    "order_id": order_id,
                    "date": date,
                    "product_id": product_id,
                    "quantity": quantity,
                    "amount": money_json(amount),
                }
            )
        dates = [row[1] for row in SALES]
        return self.success(
            {
                "records": records,
                "extracted_at": now.iso(),
                "source": "SalesDatabase",
                "total_amount": money_json(total_amount),
                "date_range": {"start_date": min(dates), "end_date": max(dates)},
            }
        )


class ExtractInventoryDataHandler(ExactHandler):
    """§2.1 ``extract_inventory_data``."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        total_quantity = 0
        warehouses: List[str] = []
        products: Set[str] = set()
        records: List[Dict[str, Any]] = []
        for product_id, sku, warehouse, on_hand, reorder_point in INVENTORY:
            total_quantity += on_hand
            if warehouse not in warehouses:
                warehouses.append(warehouse)
            products.add(product_id)
            records.append(
                {
                    "product_id": product_id,
                    "sku": sku,
                    "warehouse": warehouse,
                    "quantity_on_hand": on_hand,
                    "reorder_point": reorder_point,
                }
            )
        return self.success(
            {
                "records": records,
                "extracted_at": now.iso(),
                "source": "InventorySystem",
                "total_quantity": total_quantity,
                "warehouses": warehouses,
                "products_tracked": len(products),
            }
        )


class ExtractCustomerDataHandler(ExactHandler):
    """§2.1 ``extract_customer_data``."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        total = Decimal(0)
        tiers: Dict[str, int] = {}
        records: List[Dict[str, Any]] = []
        for customer_id, name, tier, lifetime_value, join_date in CUSTOMERS:
            value = Decimal(lifetime_value)
            total += value
            tiers[tier] = tiers.get(tier, 0) + 1
            records.append(
                {
                    "customer_id": customer_id,
                    "name": name,
                    "tier": tier,
                    "lifetime_value": money_json(value),
                    "join_date": join_date,
                }
            )
        return self.success(
            {
                "records": records,
                "extracted_at": now.iso(),
                "source": "CRMSystem",
                "total_customers": len(CUSTOMERS),
                "total_lifetime_value": money_json(total),
                "tier_breakdown": dict(sorted(tiers.items())),
                "avg_lifetime_value": _avg_money(total, len(CUSTOMERS)),
            }
        )


# ---------------------------------------------------------------------------------------------
# §2.2 Transform steps.


class TransformSalesHandler(ExactHandler):
    """§2.2 ``transform_sales``."""

    def run(self, context: StepContext) -> StepHandlerResult:
        records = _extract_records(context, EXTRACT_SALES_DATA, "Sales")
        daily: Dict[str, List[Any]] = {}  # date -> [total, orders]
        products: Dict[str, List[Any]] = {}  # product -> [quantity, revenue, orders]
        total_revenue = Decimal(0)
        for row in records:
            amount = _num(_field(row, "amount"))
            total_revenue += amount
            day = daily.setdefault(_key_of(row, "date"), [Decimal(0), 0])
            day[0] += amount
            day[1] += 1
            product = products.setdefault(_key_of(row, "product_id"), [Decimal(0), Decimal(0), 0])
            product[0] += _num(_field(row, "quantity"))
            product[1] += amount
            product[2] += 1
        daily_sales = {
            date: {
                "total_amount": money_json(total),
                "order_count": count,
                "avg_order_value": _avg_money(total, count),
            }
            for date, (total, count) in sorted(daily.items())
        }
        product_sales = {
            product_id: {
                "total_quantity": _number_json(quantity),
                "total_revenue": money_json(revenue),
                "order_count": count,
            }
            for product_id, (quantity, revenue, count) in sorted(products.items())
        }
        return self.success(
            {
                "record_count": len(records),
                "transformation_type": "sales_analytics",
                "source": EXTRACT_SALES_DATA,
                "daily_sales": daily_sales,
                "product_sales": product_sales,
                "total_revenue": money_json(total_revenue),
            }
        )


class TransformInventoryHandler(ExactHandler):
    """§2.2 ``transform_inventory``."""

    def run(self, context: StepContext) -> StepHandlerResult:
        records = _extract_records(context, EXTRACT_INVENTORY_DATA, "Inventory")
        # warehouse -> {quantity, products, reorder_alerts}; product -> {quantity, reorder_points, warehouses}
        warehouses: Dict[str, Dict[str, Any]] = {}
        products: Dict[str, Dict[str, Any]] = {}
        total_on_hand = Decimal(0)
        for row in records:
            product_id, warehouse_id = _key_of(row, "product_id"), _key_of(row, "warehouse")
            on_hand = _num(_field(row, "quantity_on_hand"))
            reorder_point = _num(_field(row, "reorder_point"))
            total_on_hand += on_hand
            w = warehouses.setdefault(warehouse_id, {"quantity": Decimal(0), "products": set(), "reorder_alerts": 0})
            w["quantity"] += on_hand
            w["products"].add(product_id)
            if on_hand <= reorder_point:
                w["reorder_alerts"] += 1
            p = products.setdefault(
                product_id, {"quantity": Decimal(0), "reorder_points": Decimal(0), "warehouses": set()}
            )
            p["quantity"] += on_hand
            p["reorder_points"] += reorder_point
            p["warehouses"].add(warehouse_id)
        warehouse_summary = {
            warehouse_id: {
                "total_quantity": _number_json(w["quantity"]),
                "product_count": len(w["products"]),
                "reorder_alerts": w["reorder_alerts"],
            }
            for warehouse_id, w in sorted(warehouses.items())
        }
        reorder_alerts = 0
        product_inventory: Dict[str, Any] = {}
        for product_id, p in sorted(products.items()):
            needs_reorder = p["quantity"] < p["reorder_points"]
            reorder_alerts += int(needs_reorder)
            product_inventory[product_id] = {
                "total_quantity": _number_json(p["quantity"]),
                "warehouse_count": len(p["warehouses"]),
                "needs_reorder": needs_reorder,
            }
        return self.success(
            {
                "record_count": len(records),
                "transformation_type": "inventory_analytics",
                "source": EXTRACT_INVENTORY_DATA,
                "warehouse_summary": warehouse_summary,
                "product_inventory": product_inventory,
                "total_quantity_on_hand": _number_json(total_on_hand),
                "reorder_alerts": reorder_alerts,
            }
        )


class TransformCustomersHandler(ExactHandler):
    """§2.2 ``transform_customers``."""

    def run(self, context: StepContext) -> StepHandlerResult:
        records = _extract_records(context, EXTRACT_CUSTOMER_DATA, "Customer")
        tiers: Dict[str, List[Any]] = {}  # tier -> [count, sum]
        high_value = medium_value = low_value = 0
        total = Decimal(0)
        for row in records:
            value = _num(_field(row, "lifetime_value"))
            total += value
            tier = tiers.setdefault(_key_of(row, "tier"), [0, Decimal(0)])
            tier[0] += 1
            tier[1] += value
            if value >= _HIGH_VALUE:
                high_value += 1
            elif value >= _MEDIUM_VALUE:
                medium_value += 1
            else:
                low_value += 1
        tier_analysis = {
            tier: {
                "customer_count": count,
                "total_lifetime_value": money_json(value_sum),
                "avg_lifetime_value": _avg_money(value_sum, count),
            }
            for tier, (count, value_sum) in sorted(tiers.items())
        }
        return self.success(
            {
                "record_count": len(records),
                "transformation_type": "customer_analytics",
                "source": EXTRACT_CUSTOMER_DATA,
                "tier_analysis": tier_analysis,
                "value_segments": {"high_value": high_value, "medium_value": medium_value, "low_value": low_value},
                "total_lifetime_value": money_json(total),
                "avg_customer_value": _avg_money(total, len(records)),
            }
        )


# ---------------------------------------------------------------------------------------------
# §2.3 aggregate_metrics.


class AggregateMetricsHandler(ExactHandler):
    """§2.3 ``aggregate_metrics``."""

    def run(self, context: StepContext) -> StepHandlerResult:
        missing = [step for step in TRANSFORMS if is_blank(context.get_dependency_result(step))]
        if missing:
            raise PermanentError(
                f"Missing transform results: {', '.join(missing)}", error_code="MISSING_TRANSFORM_RESULTS"
            )

        def field(step: str, key: str) -> Decimal:
            return _num(context.get_dependency_field(step, key))

        total_revenue = round_cents(field("transform_sales", "total_revenue"))
        total_inventory_quantity = field("transform_inventory", "total_quantity_on_hand")
        total_customers = field("transform_customers", "record_count")
        total_customer_lifetime_value = round_cents(field("transform_customers", "total_lifetime_value"))
        sales_transactions = field("transform_sales", "record_count")
        inventory_reorder_alerts = field("transform_inventory", "reorder_alerts")
        revenue_per_customer = round_cents(_ratio(total_revenue, total_customers))
        inventory_turnover_indicator = _ratio(total_revenue, total_inventory_quantity).quantize(
            _FOUR_DECIMALS, rounding=ROUND_HALF_UP
        )
        return self.success(
            {
                "total_revenue": money_json(total_revenue),
                "total_inventory_quantity": _number_json(total_inventory_quantity),
                "total_customers": _number_json(total_customers),
                "total_customer_lifetime_value": money_json(total_customer_lifetime_value),
                "sales_transactions": _number_json(sales_transactions),
                "inventory_reorder_alerts": _number_json(inventory_reorder_alerts),
                "revenue_per_customer": money_json(revenue_per_customer),
                "inventory_turnover_indicator": _number_json(inventory_turnover_indicator),
                "aggregation_complete": True,
                "sources_included": 3,
            }
        )


# ---------------------------------------------------------------------------------------------
# §2.4 generate_insights.


def _rating(score: int) -> str:
    if score >= 80:
        return "Excellent"
    if score >= 60:
        return "Good"
    if score >= 40:
        return "Fair"
    return "Needs Improvement"


class GenerateInsightsHandler(ExactHandler):
    """§2.4 ``generate_insights``."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        aggregate = context.get_dependency_result("aggregate_metrics")
        if is_blank(aggregate):
            raise PermanentError("Aggregated metrics not found", error_code="MISSING_AGGREGATE_RESULTS")

        def metric(key: str) -> Decimal:
            return _num(_field(aggregate, key))

        total_revenue = metric("total_revenue")
        total_customers = metric("total_customers")
        revenue_per_customer = metric("revenue_per_customer")
        alerts = metric("inventory_reorder_alerts")
        avg_ltv = round_cents(_ratio(metric("total_customer_lifetime_value"), total_customers))

        no_alerts = alerts == 0
        insights = [
            {
                "category": "Revenue",
                "finding": f"Total revenue of {money_text(total_revenue)} with {_number_text(total_customers)} customers",
                "metric": money_json(revenue_per_customer),
                "recommendation": (
                    "Consider upselling strategies" if revenue_per_customer < _FIVE_HUNDRED else "Customer spend is healthy"
                ),
            },
            {
                "category": "Inventory",
                "finding": (
                    "All products above reorder points" if no_alerts else f"{_number_text(alerts)} products need reordering"
                ),
                "metric": _number_json(alerts),
                "recommendation": (
                    "Inventory levels are healthy" if no_alerts else "Review reorder points and place purchase orders"
                ),
            },
            {
                "category": "Customer Value",
                "finding": f"Average customer lifetime value: {money_text(avg_ltv)}",
                "metric": money_json(avg_ltv),
                "recommendation": (
                    "Focus on retention programs" if avg_ltv > _THREE_THOUSAND else "Increase customer engagement"
                ),
            },
        ]
        score = (
            (40 if revenue_per_customer > _FIVE_HUNDRED else 0)
            + (30 if no_alerts else 0)
            + (30 if avg_ltv > _THREE_THOUSAND else 0)
        )
        return self.success(
            {
                "insights": insights,
                "health_score": {"score": score, "max_score": 100, "rating": _rating(score)},
                "total_metrics_analyzed": len(aggregate) if isinstance(aggregate, dict) else 0,
                "pipeline_complete": True,
                "generated_at": now.iso(),
            }
        )


__all__ = [
    "NAMESPACE",
    "ExtractSalesDataHandler",
    "ExtractInventoryDataHandler",
    "ExtractCustomerDataHandler",
    "TransformSalesHandler",
    "TransformInventoryHandler",
    "TransformCustomersHandler",
    "AggregateMetricsHandler",
    "GenerateInsightsHandler",
]
