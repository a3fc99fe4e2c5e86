//! Handlers of spec §2 data pipeline analytics (`data_pipeline_<sfx>/analytics_pipeline@1.0.0`).
//!
//! Three parallel branches (sales, inventory, customers) extract mock rows and transform them;
//! `aggregate_metrics` joins the three transforms and `generate_insights` reads the aggregate.
//! The handlers read no task input, so every valid input gives the same results. Money is exact
//! (`Decimal`) and rounded half away from zero (§0.7).
//!
//! Rules the spec leaves open, applied the same way everywhere in this module (none is reachable
//! from task input, since the extract steps always return the mock rows):
//! - a numeric field that is missing or not a number counts as 0;
//! - a grouping key (`date`, `product_id`, `warehouse`, `tier`) that is a string is used as is,
//!   any other JSON value by its JSON text, a missing or null one as `""`;
//! - a `records` value that is not blank and not an array has no rows;
//! - a division by zero gives 0.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Map, Value};
use tasker_step::{PermanentError, StepContext, StepError, StepResult, StepSuccess};
use tasker_worker::HandlerRegistry;

use super::support::{decimal, is_blank, money_json, money_text, round_cents, Now};

/// The base namespace of this workflow (§0.2).
pub const NAMESPACE: &str = "data_pipeline";

/// Registers this workflow's handlers.
pub fn register(registry: &mut HandlerRegistry) {
    registry.register_fn("data_pipeline::extract_sales_data", extract_sales_data);
    registry.register_fn("data_pipeline::extract_inventory_data", extract_inventory_data);
    registry.register_fn("data_pipeline::extract_customer_data", extract_customer_data);
    registry.register_fn("data_pipeline::transform_sales", transform_sales);
    registry.register_fn("data_pipeline::transform_inventory", transform_inventory);
    registry.register_fn("data_pipeline::transform_customers", transform_customers);
    registry.register_fn("data_pipeline::aggregate_metrics", aggregate_metrics);
    registry.register_fn("data_pipeline::generate_insights", generate_insights);
}

// ---------------------------------------------------------------------------------------------
// Mock data (§2), in the spec's row order.

/// `(order_id, date, product_id, quantity, amount)`.
const SALES: [(&str, &str, &str, i64, &str); 5] = [
    ("ORD-001", "2025-11-01", "PROD-A", 5, "499.95"),
    ("ORD-002", "2025-11-05", "PROD-B", 3, "299.97"),
    ("ORD-003", "2025-11-10", "PROD-A", 2, "199.98"),
    ("ORD-004", "2025-11-15", "PROD-C", 10, "1499.90"),
    ("ORD-005", "2025-11-18", "PROD-B", 7, "699.93"),
];

/// `(product_id, sku, warehouse, quantity_on_hand, reorder_point)`.
const INVENTORY: [(&str, &str, &str, i64, i64); 5] = [
    ("PROD-A", "SKU-A-001", "WH-01", 150, 50),
    ("PROD-B", "SKU-B-002", "WH-01", 75, 25),
    ("PROD-C", "SKU-C-003", "WH-02", 200, 100),
    ("PROD-A", "SKU-A-001", "WH-02", 100, 50),
    ("PROD-B", "SKU-B-002", "WH-03", 50, 25),
];

/// `(customer_id, name, tier, lifetime_value, join_date)`.
const CUSTOMERS: [(&str, &str, &str, &str, &str); 5] = [
    ("CUST-001", "Alice Johnson", "gold", "5000.00", "2024-01-15"),
    ("CUST-002", "Bob Smith", "silver", "2500.00", "2024-03-20"),
    ("CUST-003", "Carol White", "premium", "15000.00", "2023-11-10"),
    ("CUST-004", "David Brown", "standard", "500.00", "2025-01-05"),
    ("CUST-005", "Eve Davis", "gold", "7500.00", "2024-06-12"),
];

// ---------------------------------------------------------------------------------------------
// Value helpers of this module.

/// A mock amount written in the table above.
fn mock_money(text: &str) -> Decimal {
    Decimal::from_str(text).expect("mock amounts are decimals")
}

/// A numeric field of a row or result; missing or non-numeric counts as 0.
fn num(v: Option<&Value>) -> Decimal {
    decimal(v).unwrap_or(Decimal::ZERO)
}

/// A grouping key of a row.
fn key_of(row: &Value, field: &str) -> String {
    match row.get(field) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// An exact number as JSON: integral values are written with no fraction (`575`, not `575.0`).
fn number_json(d: Decimal) -> Value {
    serde_json::from_str(&d.normalize().to_string()).expect("a decimal prints as a JSON number")
}

/// An exact number as text, e.g. `5`.
fn number_text(d: Decimal) -> String {
    d.normalize().to_string()
}

/// `num / den`, or 0 when `den` is 0.
fn ratio(num: Decimal, den: Decimal) -> Decimal {
    num.checked_div(den).unwrap_or(Decimal::ZERO)
}

/// round(total / count) to cents.
fn avg_money(total: Decimal, count: usize) -> Value {
    money_json(round_cents(ratio(total, Decimal::from(count))))
}

/// The extract's `records`, failing with `MISSING_EXTRACT_RESULTS` when blank (§2.2).
fn extract_records<'a>(ctx: &'a StepContext, extract_step: &str, label: &str) -> Result<&'a [Value], StepError> {
    let records = ctx.get_dependency_field(extract_step, &["records"]);
    if is_blank(records) {
        return Err(PermanentError::new(format!("{label} extraction results not found"))
            .code("MISSING_EXTRACT_RESULTS")
            .into());
    }
    Ok(records.and_then(Value::as_array).map_or(&[][..], Vec::as_slice))
}

// ---------------------------------------------------------------------------------------------
// §2.1 Extract steps. They cannot fail.

/// §2.1 `extract_sales_data`.
pub async fn extract_sales_data(_ctx: StepContext) -> StepResult {
    let now = Now::read();
    let mut total_amount = Decimal::ZERO;
    let mut records = Vec::with_capacity(SALES.len());
    for (order_id, date, product_id, quantity, amount) in SALES {
        let amount = mock_money(amount);
        total_amount += amount;
        records.push(json!({
            "order_id": order_id, "date": date, "product_id": product_id,
            "quantity": quantity, "amount": money_json(amount),
        }));
    }
    let start_date = SALES.iter().map(|r| r.1).min();
    let end_date = SALES.iter().map(|r| r.1).max();
    Ok(StepSuccess::new(json!({
        "records": records,
        "extracted_at": now.iso(),
        "source": "SalesDatabase",
        "total_amount": money_json(total_amount),
        "date_range": {"start_date": start_date, "end_date": end_date},
    })))
}

/// §2.1 `extract_inventory_data`.
pub async fn extract_inventory_data(_ctx: StepContext) -> StepResult {
    let now = Now::read();
    let mut total_quantity = 0_i64;
    let mut warehouses: Vec<&str> = vec![];
    let mut products = BTreeSet::new();
    let mut records = Vec::with_capacity(INVENTORY.len());
    for (product_id, sku, warehouse, on_hand, reorder_point) in INVENTORY {
        total_quantity += on_hand;
        if !warehouses.contains(&warehouse) {
            warehouses.push(warehouse);
        }
        products.insert(product_id);
        records.push(json!({
            "product_id": product_id, "sku": sku, "warehouse": warehouse,
            "quantity_on_hand": on_hand, "reorder_point": reorder_point,
        }));
    }
    Ok(StepSuccess::new(json!({
        "records": records,
        "extracted_at": now.iso(),
        "source": "InventorySystem",
        "total_quantity": total_quantity,
        "warehouses": warehouses,
        "products_tracked": products.len(),
    })))
}

/// §2.1 `extract_customer_data`.
pub async fn extract_customer_data(_ctx: StepContext) -> StepResult {
    let now = Now::read();
    let mut total = Decimal::ZERO;
    let mut tiers: BTreeMap<&str, u64> = BTreeMap::new();
    let mut records = Vec::with_capacity(CUSTOMERS.len());
    for (customer_id, name, tier, lifetime_value, join_date) in CUSTOMERS {
        let value = mock_money(lifetime_value);
        total += value;
        *tiers.entry(tier).or_default() += 1;
        records.push(json!({
            "customer_id": customer_id, "name": name, "tier": tier,
            "lifetime_value": money_json(value), "join_date": join_date,
        }));
    }
    Ok(StepSuccess::new(json!({
        "records": records,
        "extracted_at": now.iso(),
        "source": "CRMSystem",
        "total_customers": CUSTOMERS.len(),
        "total_lifetime_value": money_json(total),
        "tier_breakdown": tiers,
        "avg_lifetime_value": avg_money(total, CUSTOMERS.len()),
    })))
}

// ---------------------------------------------------------------------------------------------
// §2.2 Transform steps.

/// §2.2 `transform_sales`.
pub async fn transform_sales(ctx: StepContext) -> StepResult {
    let records = extract_records(&ctx, "extract_sales_data", "Sales")?;
    // date -> (total, orders); product -> (quantity, revenue, orders)
    let mut daily: BTreeMap<String, (Decimal, usize)> = BTreeMap::new();
    let mut products: BTreeMap<String, (Decimal, Decimal, usize)> = BTreeMap::new();
    let mut total_revenue = Decimal::ZERO;
    for row in records {
        let amount = num(row.get("amount"));
        total_revenue += amount;
        let day = daily.entry(key_of(row, "date")).or_default();
        day.0 += amount;
        day.1 += 1;
        let product = products.entry(key_of(row, "product_id")).or_default();
        product.0 += num(row.get("quantity"));
        product.1 += amount;
        product.2 += 1;
    }
    let daily_sales: Map<String, Value> = daily
        .into_iter()
        .map(|(date, (total, count))| {
            let v = json!({"total_amount": money_json(total), "order_count": count, "avg_order_value": avg_money(total, count)});
            (date, v)
        })
        .collect();
    let product_sales: Map<String, Value> = products
        .into_iter()
        .map(|(id, (quantity, revenue, count))| {
            let v = json!({"total_quantity": number_json(quantity), "total_revenue": money_json(revenue), "order_count": count});
            (id, v)
        })
        .collect();
    Ok(StepSuccess::new(json!({
        "record_count": records.len(),
        "transformation_type": "sales_analytics",
        "source": "extract_sales_data",
        "daily_sales": daily_sales,
        "product_sales": product_sales,
        "total_revenue": money_json(total_revenue),
    })))
}

/// §2.2 `transform_inventory`.
pub async fn transform_inventory(ctx: StepContext) -> StepResult {
    #[derive(Default)]
    struct Warehouse {
        quantity: Decimal,
        products: BTreeSet<String>,
        reorder_alerts: usize,
    }
    #[derive(Default)]
    struct Product {
        quantity: Decimal,
        reorder_points: Decimal,
        warehouses: BTreeSet<String>,
    }
    let records = extract_records(&ctx, "extract_inventory_data", "Inventory")?;
    let mut warehouses: BTreeMap<String, Warehouse> = BTreeMap::new();
    let mut products: BTreeMap<String, Product> = BTreeMap::new();
    let mut total_on_hand = Decimal::ZERO;
    for row in records {
        let (product_id, warehouse_id) = (key_of(row, "product_id"), key_of(row, "warehouse"));
        let on_hand = num(row.get("quantity_on_hand"));
        let reorder_point = num(row.get("reorder_point"));
        total_on_hand += on_hand;
        let w = warehouses.entry(warehouse_id.clone()).or_default();
        w.quantity += on_hand;
        w.products.insert(product_id.clone());
        if on_hand <= reorder_point {
            w.reorder_alerts += 1;
        }
        let p = products.entry(product_id).or_default();
        p.quantity += on_hand;
        p.reorder_points += reorder_point;
        p.warehouses.insert(warehouse_id);
    }
    let warehouse_summary: Map<String, Value> = warehouses
        .into_iter()
        .map(|(id, w)| {
            let v = json!({"total_quantity": number_json(w.quantity), "product_count": w.products.len(), "reorder_alerts": w.reorder_alerts});
            (id, v)
        })
        .collect();
    let mut reorder_alerts = 0_usize;
    let product_inventory: Map<String, Value> = products
        .into_iter()
        .map(|(id, p)| {
            let needs_reorder = p.quantity < p.reorder_points;
            reorder_alerts += usize::from(needs_reorder);
            let v = json!({"total_quantity": number_json(p.quantity), "warehouse_count": p.warehouses.len(), "needs_reorder": needs_reorder});
            (id, v)
        })
        .collect();
    Ok(StepSuccess::new(json!({
        "record_count": records.len(),
        "transformation_type": "inventory_analytics",
        "source": "extract_inventory_data",
        "warehouse_summary": warehouse_summary,
        "product_inventory": product_inventory,
        "total_quantity_on_hand": number_json(total_on_hand),
        "reorder_alerts": reorder_alerts,
    })))
}

/// §2.2 `transform_customers`.
pub async fn transform_customers(ctx: StepContext) -> StepResult {
    let records = extract_records(&ctx, "extract_customer_data", "Customer")?;
    let high = Decimal::from(10_000);
    let medium = Decimal::from(1_000);
    let mut tiers: BTreeMap<String, (usize, Decimal)> = BTreeMap::new();
    let (mut high_value, mut medium_value, mut low_value) = (0_usize, 0_usize, 0_usize);
    let mut total = Decimal::ZERO;
    for row in records {
        let value = num(row.get("lifetime_value"));
        total += value;
        let tier = tiers.entry(key_of(row, "tier")).or_default();
        tier.0 += 1;
        tier.1 += value;
        if value >= high {
            high_value += 1;
        } else if value >= medium {
            medium_value += 1;
        } else {
            low_value += 1;
        }
    }
    let tier_analysis: Map<String, Value> = tiers
        .into_iter()
        .map(|(tier, (count, sum))| {
            let v = json!({"customer_count": count, "total_lifetime_value": money_json(sum), "avg_lifetime_value": avg_money(sum, count)});
            (tier, v)
        })
        .collect();
    Ok(StepSuccess::new(json!({
        "record_count": records.len(),
        "transformation_type": "customer_analytics",
        "source": "extract_customer_data",
        "tier_analysis": tier_analysis,
        "value_segments": {"high_value": high_value, "medium_value": medium_value, "low_value": low_value},
        "total_lifetime_value": money_json(total),
        "avg_customer_value": avg_money(total, records.len()),
    })))
}

// ---------------------------------------------------------------------------------------------
// §2.3 aggregate_metrics.

const TRANSFORMS: [&str; 3] = ["transform_sales", "transform_inventory", "transform_customers"];

/// §2.3 `aggregate_metrics`.
pub async fn aggregate_metrics(ctx: StepContext) -> StepResult {
    let missing: Vec<&str> = TRANSFORMS
        .into_iter()
        .filter(|step| is_blank(ctx.get_dependency_result(step)))
        .collect();
    if !missing.is_empty() {
        return Err(
            PermanentError::new(format!("Missing transform results: {}", missing.join(", ")))
                .code("MISSING_TRANSFORM_RESULTS")
                .into(),
        );
    }
    let field = |step: &str, key: &str| num(ctx.get_dependency_field(step, &[key]));
    let total_revenue = round_cents(field("transform_sales", "total_revenue"));
    let total_inventory_quantity = field("transform_inventory", "total_quantity_on_hand");
    let total_customers = field("transform_customers", "record_count");
    let total_customer_lifetime_value = round_cents(field("transform_customers", "total_lifetime_value"));
    let sales_transactions = field("transform_sales", "record_count");
    let inventory_reorder_alerts = field("transform_inventory", "reorder_alerts");
    let revenue_per_customer = round_cents(ratio(total_revenue, total_customers));
    let inventory_turnover_indicator = ratio(total_revenue, total_inventory_quantity)
        .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
    Ok(StepSuccess::new(json!({
        "total_revenue": money_json(total_revenue),
        "total_inventory_quantity": number_json(total_inventory_quantity),
        "total_customers": number_json(total_customers),
        "total_customer_lifetime_value": money_json(total_customer_lifetime_value),
        "sales_transactions": number_json(sales_transactions),
        "inventory_reorder_alerts": number_json(inventory_reorder_alerts),
        "revenue_per_customer": money_json(revenue_per_customer),
        "inventory_turnover_indicator": number_json(inventory_turnover_indicator),
        "aggregation_complete": true,
        "sources_included": 3,
    })))
}

// ---------------------------------------------------------------------------------------------
// §2.4 generate_insights.

/// §2.4 `generate_insights`.
pub async fn generate_insights(ctx: StepContext) -> StepResult {
    let now = Now::read();
    let aggregate = ctx.get_dependency_result("aggregate_metrics");
    if is_blank(aggregate) {
        return Err(PermanentError::new("Aggregated metrics not found")
            .code("MISSING_AGGREGATE_RESULTS")
            .into());
    }
    let aggregate = aggregate.expect("not blank");
    let metric = |key: &str| num(aggregate.get(key));
    let total_revenue = metric("total_revenue");
    let total_customers = metric("total_customers");
    let revenue_per_customer = metric("revenue_per_customer");
    let alerts = metric("inventory_reorder_alerts");
    let avg_ltv = round_cents(ratio(metric("total_customer_lifetime_value"), total_customers));

    let (five_hundred, three_thousand) = (Decimal::from(500), Decimal::from(3000));
    let insights = json!([
        {
            "category": "Revenue",
            "finding": format!("Total revenue of {} with {} customers", money_text(total_revenue), number_text(total_customers)),
            "metric": money_json(revenue_per_customer),
            "recommendation": if revenue_per_customer < five_hundred { "Consider upselling strategies" } else { "Customer spend is healthy" },
        },
        {
            "category": "Inventory",
            "finding": if alerts.is_zero() { "All products above reorder points".to_string() } else { format!("{} products need reordering", number_text(alerts)) },
            "metric": number_json(alerts),
            "recommendation": if alerts.is_zero() { "Inventory levels are healthy" } else { "Review reorder points and place purchase orders" },
        },
        {
            "category": "Customer Value",
            "finding": format!("Average customer lifetime value: {}", money_text(avg_ltv)),
            "metric": money_json(avg_ltv),
            "recommendation": if avg_ltv > three_thousand { "Focus on retention programs" } else { "Increase customer engagement" },
        },
    ]);

    let points = [
        (revenue_per_customer > five_hundred, 40),
        (alerts.is_zero(), 30),
        (avg_ltv > three_thousand, 30),
    ];
    let score: u32 = points.iter().filter(|(earned, _)| *earned).map(|(_, p)| p).sum();
    let rating = match score {
        80.. => "Excellent",
        60.. => "Good",
        40.. => "Fair",
        _ => "Needs Improvement",
    };
    Ok(StepSuccess::new(json!({
        "insights": insights,
        "health_score": {"score": score, "max_score": 100, "rating": rating},
        "total_metrics_analyzed": aggregate.as_object().map_or(0, Map::len),
        "pipeline_complete": true,
        "generated_at": now.iso(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::blog::support::full_match;

    const TIMESTAMP: &str = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z";

    fn ctx(v: Value) -> StepContext {
        StepContext::from_json(v).expect("context")
    }

    fn deps(results: Value) -> StepContext {
        ctx(json!({"attempt": 1, "max_attempts": 2, "input": {}, "dependency_results": results}))
    }

    fn reference_input() -> Value {
        json!({"pipeline_id": "pipeline_ref", "date_range": {"start_date": "2025-11-01", "end_date": "2025-11-30"}})
    }

    /// Removes `key` after checking it is a §0.7 timestamp.
    fn take_timestamp(mut result: Value, key: &str) -> Value {
        let ts = result
            .as_object_mut()
            .and_then(|m| m.remove(key))
            .unwrap_or_else(|| panic!("{key} missing"));
        let ts = ts.as_str().expect("timestamp is a string");
        assert!(full_match(TIMESTAMP, ts), "{key} = {ts}");
        result
    }

    fn ok(r: StepResult) -> Value {
        r.expect("step succeeds").result
    }

    fn permanent(code: &str, message: &str) -> StepError {
        PermanentError::new(message).code(code).into()
    }

    fn assert_failure(r: StepResult, want: StepError) {
        let err = r.expect_err("step fails");
        assert_eq!(err, want);
        assert_eq!(err.to_json()["context"], json!({}));
        assert_eq!(err.to_json()["retry_after"], Value::Null);
        assert_eq!(err.to_json()["retryable"], false);
    }

    struct Chain {
        sales: Value,
        inventory: Value,
        customers: Value,
        t_sales: Value,
        t_inventory: Value,
        t_customers: Value,
        aggregate: Value,
        insights: Value,
    }

    async fn run_reference_chain() -> Chain {
        let root = || ctx(json!({"attempt": 1, "max_attempts": 3, "input": reference_input()}));
        let sales = ok(extract_sales_data(root()).await);
        let inventory = ok(extract_inventory_data(root()).await);
        let customers = ok(extract_customer_data(root()).await);
        let t_sales = ok(transform_sales(deps(json!({"extract_sales_data": sales}))).await);
        let t_inventory = ok(transform_inventory(deps(json!({"extract_inventory_data": inventory}))).await);
        let t_customers = ok(transform_customers(deps(json!({"extract_customer_data": customers}))).await);
        let aggregate = ok(aggregate_metrics(deps(json!({
            "transform_sales": t_sales, "transform_inventory": t_inventory, "transform_customers": t_customers,
        })))
        .await);
        let insights = ok(generate_insights(deps(json!({"aggregate_metrics": aggregate}))).await);
        Chain {
            sales,
            inventory,
            customers,
            t_sales,
            t_inventory,
            t_customers,
            aggregate,
            insights,
        }
    }

    // ----- reference input, step by step (§2.5)

    #[tokio::test]
    async fn extract_sales_data_returns_the_mock_rows_total_and_date_range() {
        let c = run_reference_chain().await;
        assert_eq!(
            take_timestamp(c.sales, "extracted_at"),
            json!({
                "records": [
                    {"order_id": "ORD-001", "date": "2025-11-01", "product_id": "PROD-A", "quantity": 5, "amount": 499.95},
                    {"order_id": "ORD-002", "date": "2025-11-05", "product_id": "PROD-B", "quantity": 3, "amount": 299.97},
                    {"order_id": "ORD-003", "date": "2025-11-10", "product_id": "PROD-A", "quantity": 2, "amount": 199.98},
                    {"order_id": "ORD-004", "date": "2025-11-15", "product_id": "PROD-C", "quantity": 10, "amount": 1499.90},
                    {"order_id": "ORD-005", "date": "2025-11-18", "product_id": "PROD-B", "quantity": 7, "amount": 699.93},
                ],
                "source": "SalesDatabase",
                "total_amount": 3199.73,
                "date_range": {"start_date": "2025-11-01", "end_date": "2025-11-18"},
            })
        );
    }

    #[tokio::test]
    async fn extract_inventory_data_returns_rows_total_warehouses_in_order_and_product_count() {
        let c = run_reference_chain().await;
        assert_eq!(
            take_timestamp(c.inventory, "extracted_at"),
            json!({
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
            })
        );
    }

    #[tokio::test]
    async fn extract_customer_data_returns_rows_totals_tiers_and_average() {
        let c = run_reference_chain().await;
        assert_eq!(
            take_timestamp(c.customers, "extracted_at"),
            json!({
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
            })
        );
    }

    #[tokio::test]
    async fn transform_sales_groups_by_day_and_product() {
        let c = run_reference_chain().await;
        assert_eq!(
            c.t_sales,
            json!({
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
            })
        );
    }

    #[tokio::test]
    async fn transform_inventory_summarises_warehouses_and_products() {
        let c = run_reference_chain().await;
        assert_eq!(
            c.t_inventory,
            json!({
                "record_count": 5,
                "transformation_type": "inventory_analytics",
                "source": "extract_inventory_data",
                "warehouse_summary": {
                    "WH-01": {"total_quantity": 225, "product_count": 2, "reorder_alerts": 0},
                    "WH-02": {"total_quantity": 300, "product_count": 2, "reorder_alerts": 0},
                    "WH-03": {"total_quantity": 50, "product_count": 1, "reorder_alerts": 0},
                },
                "product_inventory": {
                    "PROD-A": {"total_quantity": 250, "warehouse_count": 2, "needs_reorder": false},
                    "PROD-B": {"total_quantity": 125, "warehouse_count": 2, "needs_reorder": false},
                    "PROD-C": {"total_quantity": 200, "warehouse_count": 1, "needs_reorder": false},
                },
                "total_quantity_on_hand": 575,
                "reorder_alerts": 0,
            })
        );
    }

    #[tokio::test]
    async fn transform_customers_analyses_tiers_and_value_segments() {
        let c = run_reference_chain().await;
        assert_eq!(
            c.t_customers,
            json!({
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
            })
        );
    }

    #[tokio::test]
    async fn aggregate_metrics_has_exactly_the_ten_reference_values() {
        let c = run_reference_chain().await;
        assert_eq!(
            c.aggregate,
            json!({
                "total_revenue": 3199.73,
                "total_inventory_quantity": 575,
                "total_customers": 5,
                "total_customer_lifetime_value": 30500,
                "sales_transactions": 5,
                "inventory_reorder_alerts": 0,
                "revenue_per_customer": 639.95,
                "inventory_turnover_indicator": 5.5647,
                "aggregation_complete": true,
                "sources_included": 3,
            })
        );
        for key in [
            "total_inventory_quantity",
            "total_customers",
            "sales_transactions",
            "inventory_reorder_alerts",
        ] {
            assert!(c.aggregate[key].is_u64(), "{key} is written as an integer");
        }
    }

    #[tokio::test]
    async fn generate_insights_gives_the_reference_findings_and_an_excellent_score() {
        let c = run_reference_chain().await;
        assert_eq!(
            take_timestamp(c.insights, "generated_at"),
            json!({
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
                "pipeline_complete": true,
            })
        );
    }

    #[tokio::test]
    async fn handlers_ignore_the_task_input() {
        let strange = ctx(json!({"input": {"pipeline_id": "other", "date_range": {"start_date": "1999-01-01"}}}));
        let empty = ctx(json!({}));
        for (a, b) in [
            (
                extract_sales_data(strange.clone()).await,
                extract_sales_data(empty.clone()).await,
            ),
            (
                extract_inventory_data(strange.clone()).await,
                extract_inventory_data(empty.clone()).await,
            ),
            (
                extract_customer_data(strange.clone()).await,
                extract_customer_data(empty.clone()).await,
            ),
        ] {
            assert_eq!(
                take_timestamp(ok(a), "extracted_at"),
                take_timestamp(ok(b), "extracted_at")
            );
        }
    }

    #[tokio::test]
    async fn every_step_is_registered_under_its_rust_callable() {
        let mut registry = HandlerRegistry::new();
        register(&mut registry);
        let chain = run_reference_chain().await;
        let cases = [
            ("extract_sales_data", json!({}), Some("extracted_at")),
            ("extract_inventory_data", json!({}), Some("extracted_at")),
            ("extract_customer_data", json!({}), Some("extracted_at")),
            ("transform_sales", json!({"extract_sales_data": chain.sales}), None),
            (
                "transform_inventory",
                json!({"extract_inventory_data": chain.inventory}),
                None,
            ),
            (
                "transform_customers",
                json!({"extract_customer_data": chain.customers}),
                None,
            ),
            (
                "aggregate_metrics",
                json!({"transform_sales": chain.t_sales, "transform_inventory": chain.t_inventory, "transform_customers": chain.t_customers}),
                None,
            ),
            (
                "generate_insights",
                json!({"aggregate_metrics": chain.aggregate}),
                Some("generated_at"),
            ),
        ];
        for (step, dependency_results, timestamp) in cases {
            let handler = registry
                .get(&format!("{NAMESPACE}::{step}"))
                .unwrap_or_else(|| panic!("{step} registered"));
            let result = ok(handler.call(&deps(dependency_results)).await);
            assert!(result.is_object() && !result.as_object().unwrap().is_empty(), "{step}");
            if let Some(key) = timestamp {
                take_timestamp(result, key);
            }
        }
    }

    // ----- failures (§2.2–§2.4)

    #[tokio::test]
    async fn transform_sales_fails_when_sales_records_are_blank() {
        for results in [
            json!({}),
            json!({"extract_sales_data": {}}),
            json!({"extract_sales_data": {"records": []}}),
            json!({"extract_sales_data": {"records": null, "total_amount": 1}}),
        ] {
            assert_failure(
                transform_sales(deps(results)).await,
                permanent("MISSING_EXTRACT_RESULTS", "Sales extraction results not found"),
            );
        }
    }

    #[tokio::test]
    async fn transform_inventory_fails_when_inventory_records_are_blank() {
        for results in [
            json!({}),
            json!({"extract_inventory_data": {"records": []}}),
            json!({"extract_inventory_data": {"records": "  "}}),
        ] {
            assert_failure(
                transform_inventory(deps(results)).await,
                permanent("MISSING_EXTRACT_RESULTS", "Inventory extraction results not found"),
            );
        }
    }

    #[tokio::test]
    async fn transform_customers_fails_when_customer_records_are_blank() {
        for results in [
            json!({}),
            json!({"extract_customer_data": {"records": {}}}),
            json!({"extract_customer_data": null}),
        ] {
            assert_failure(
                transform_customers(deps(results)).await,
                permanent("MISSING_EXTRACT_RESULTS", "Customer extraction results not found"),
            );
        }
    }

    #[tokio::test]
    async fn transforms_read_their_own_extract_only() {
        // The sales rows under the inventory step's name are not the sales extract.
        let sales = ok(extract_sales_data(ctx(json!({}))).await);
        assert_failure(
            transform_sales(deps(json!({"extract_inventory_data": sales}))).await,
            permanent("MISSING_EXTRACT_RESULTS", "Sales extraction results not found"),
        );
    }

    #[tokio::test]
    async fn aggregate_metrics_names_every_blank_transform_in_branch_order() {
        let c = run_reference_chain().await;
        let cases = [
            (json!({}), "transform_sales, transform_inventory, transform_customers"),
            (
                json!({"transform_inventory": c.t_inventory, "transform_customers": c.t_customers}),
                "transform_sales",
            ),
            (
                json!({"transform_sales": c.t_sales, "transform_customers": c.t_customers}),
                "transform_inventory",
            ),
            (
                json!({"transform_sales": c.t_sales, "transform_inventory": c.t_inventory}),
                "transform_customers",
            ),
            (
                json!({"transform_sales": {}, "transform_inventory": c.t_inventory, "transform_customers": null}),
                "transform_sales, transform_customers",
            ),
        ];
        for (results, names) in cases {
            assert_failure(
                aggregate_metrics(deps(results)).await,
                permanent(
                    "MISSING_TRANSFORM_RESULTS",
                    &format!("Missing transform results: {names}"),
                ),
            );
        }
    }

    #[tokio::test]
    async fn generate_insights_fails_when_the_aggregate_is_blank() {
        for results in [
            json!({}),
            json!({"aggregate_metrics": {}}),
            json!({"aggregate_metrics": null}),
        ] {
            assert_failure(
                generate_insights(deps(results)).await,
                permanent("MISSING_AGGREGATE_RESULTS", "Aggregated metrics not found"),
            );
        }
    }

    // ----- edge cases, boundaries, rounding

    #[tokio::test]
    async fn transform_sales_rounds_averages_half_away_from_zero_and_sums_exactly() {
        let records = json!([
            {"date": "2025-12-01", "product_id": "P", "quantity": 1, "amount": 0.1},
            {"date": "2025-12-01", "product_id": "P", "quantity": 2, "amount": 0.2},
            {"date": "2025-12-02", "product_id": "Q", "quantity": 1, "amount": 0.01},
            {"date": "2025-12-02", "product_id": "Q", "quantity": 1, "amount": 0.04},
        ]);
        let r = ok(transform_sales(deps(json!({"extract_sales_data": {"records": records}}))).await);
        // 0.1 + 0.2 is exactly 0.3; 0.3 / 2 = 0.15; 0.05 / 2 = 0.025 rounds up to 0.03.
        assert_eq!(
            r["daily_sales"]["2025-12-01"],
            json!({"total_amount": 0.3, "order_count": 2, "avg_order_value": 0.15})
        );
        assert_eq!(
            r["daily_sales"]["2025-12-02"],
            json!({"total_amount": 0.05, "order_count": 2, "avg_order_value": 0.03})
        );
        assert_eq!(
            r["product_sales"]["P"],
            json!({"total_quantity": 3, "total_revenue": 0.3, "order_count": 2})
        );
        assert_eq!(r["total_revenue"], json!(0.35));
        assert_eq!(r["record_count"], 4);
    }

    #[tokio::test]
    async fn transform_inventory_counts_warehouse_alerts_at_the_reorder_point_but_product_reorder_only_below() {
        let records = json!([
            {"product_id": "P", "warehouse": "W1", "quantity_on_hand": 50, "reorder_point": 50},
            {"product_id": "P", "warehouse": "W2", "quantity_on_hand": 10, "reorder_point": 10},
            {"product_id": "Q", "warehouse": "W1", "quantity_on_hand": 5, "reorder_point": 20},
            {"product_id": "Q", "warehouse": "W1", "quantity_on_hand": 30, "reorder_point": 20},
        ]);
        let r = ok(transform_inventory(deps(json!({"extract_inventory_data": {"records": records}}))).await);
        assert_eq!(
            r["warehouse_summary"],
            json!({
                "W1": {"total_quantity": 85, "product_count": 2, "reorder_alerts": 2},
                "W2": {"total_quantity": 10, "product_count": 1, "reorder_alerts": 1},
            })
        );
        // P: 60 on hand vs 60 reorder points -> not below; Q: 35 vs 40 -> below.
        assert_eq!(
            r["product_inventory"],
            json!({
                "P": {"total_quantity": 60, "warehouse_count": 2, "needs_reorder": false},
                "Q": {"total_quantity": 35, "warehouse_count": 1, "needs_reorder": true},
            })
        );
        assert_eq!(r["reorder_alerts"], 1);
        assert_eq!(r["total_quantity_on_hand"], 95);
    }

    #[tokio::test]
    async fn transform_customers_segments_at_the_exact_thresholds() {
        let records = json!([
            {"tier": "a", "lifetime_value": 10000},
            {"tier": "a", "lifetime_value": 9999.99},
            {"tier": "b", "lifetime_value": 1000},
            {"tier": "b", "lifetime_value": 999.99},
            {"tier": "c", "lifetime_value": 0.01},
            {"tier": "c", "lifetime_value": 0.02},
        ]);
        let r = ok(transform_customers(deps(json!({"extract_customer_data": {"records": records}}))).await);
        assert_eq!(
            r["value_segments"],
            json!({"high_value": 1, "medium_value": 2, "low_value": 3})
        );
        assert_eq!(
            r["tier_analysis"]["a"],
            json!({"customer_count": 2, "total_lifetime_value": 19999.99, "avg_lifetime_value": 10000})
        );
        // 0.03 / 2 = 0.015 rounds half away from zero to 0.02.
        assert_eq!(r["tier_analysis"]["c"]["avg_lifetime_value"], json!(0.02));
        assert_eq!(r["total_lifetime_value"], json!(22000.01));
        // 22000.01 / 6 = 3666.668333... -> 3666.67
        assert_eq!(r["avg_customer_value"], json!(3666.67));
    }

    fn transforms(revenue: Value, customers: Value, quantity: Value, ltv: Value, alerts: Value) -> Value {
        json!({
            "transform_sales": {"total_revenue": revenue, "record_count": 7},
            "transform_inventory": {"total_quantity_on_hand": quantity, "reorder_alerts": alerts},
            "transform_customers": {"record_count": customers, "total_lifetime_value": ltv},
        })
    }

    #[tokio::test]
    async fn aggregate_metrics_rounds_turnover_to_four_decimals_half_away_from_zero() {
        // 0.01 / 8 = 0.00125 -> 0.0013 (banker's rounding would give 0.0012); 0.01 / 2 = 0.005 -> 0.01.
        let r = ok(aggregate_metrics(deps(transforms(json!(0.01), json!(2), json!(8), json!(1), json!(2)))).await);
        assert_eq!(r["inventory_turnover_indicator"], json!(0.0013));
        assert_eq!(r["revenue_per_customer"], json!(0.01));
        assert_eq!(r["sales_transactions"], 7);
        assert_eq!(r["inventory_reorder_alerts"], 2);
        assert_eq!(r.as_object().unwrap().len(), 10);
    }

    #[tokio::test]
    async fn aggregate_metrics_writes_integer_fields_without_a_fraction() {
        let r = ok(aggregate_metrics(deps(transforms(
            json!(10.0),
            json!(4.0),
            json!(5.0),
            json!(8.0),
            json!(0.0),
        )))
        .await);
        for key in [
            "total_inventory_quantity",
            "total_customers",
            "inventory_reorder_alerts",
        ] {
            assert!(r[key].is_u64(), "{key} = {}", r[key]);
        }
        assert_eq!(r["inventory_turnover_indicator"], json!(2));
        assert_eq!(r["revenue_per_customer"], json!(2.5));
    }

    #[tokio::test]
    async fn aggregate_metrics_divides_by_zero_as_zero() {
        let r = ok(aggregate_metrics(deps(transforms(json!(100), json!(0), json!(0), json!(0), json!(0)))).await);
        assert_eq!(r["revenue_per_customer"], json!(0));
        assert_eq!(r["inventory_turnover_indicator"], json!(0));
    }

    fn aggregate(rpc: Value, alerts: Value, ltv: Value, customers: Value) -> Value {
        json!({"aggregate_metrics": {
            "total_revenue": 1234.5, "total_customers": customers, "revenue_per_customer": rpc,
            "inventory_reorder_alerts": alerts, "total_customer_lifetime_value": ltv,
        }})
    }

    async fn insights_of(results: Value) -> Value {
        ok(generate_insights(deps(results)).await)
    }

    #[tokio::test]
    async fn generate_insights_at_the_thresholds_gives_no_points_and_the_other_recommendations() {
        // revenue_per_customer exactly 500 and avg_ltv exactly 3000: not above, not below.
        let r = insights_of(aggregate(json!(500), json!(3), json!(6000), json!(2))).await;
        assert_eq!(
            r["insights"],
            json!([
                {"category": "Revenue", "finding": "Total revenue of $1234.50 with 2 customers",
                 "metric": 500, "recommendation": "Customer spend is healthy"},
                {"category": "Inventory", "finding": "3 products need reordering",
                 "metric": 3, "recommendation": "Review reorder points and place purchase orders"},
                {"category": "Customer Value", "finding": "Average customer lifetime value: $3000.00",
                 "metric": 3000, "recommendation": "Increase customer engagement"},
            ])
        );
        assert_eq!(
            r["health_score"],
            json!({"score": 0, "max_score": 100, "rating": "Needs Improvement"})
        );
        assert_eq!(r["total_metrics_analyzed"], 5);
        assert_eq!(r["pipeline_complete"], true);
    }

    #[tokio::test]
    async fn generate_insights_recommends_upselling_below_500() {
        let r = insights_of(aggregate(json!(499.99), json!(0), json!(1), json!(1))).await;
        assert_eq!(r["insights"][0]["recommendation"], "Consider upselling strategies");
        assert_eq!(r["insights"][0]["metric"], json!(499.99));
    }

    #[tokio::test]
    async fn generate_insights_rating_follows_the_score_ladder() {
        // (revenue_per_customer, alerts, total ltv over 1 customer) -> (score, rating)
        let cases = [
            (json!(100), json!(1), json!(100), 0, "Needs Improvement"),
            (json!(100), json!(0), json!(100), 30, "Needs Improvement"),
            (json!(500.01), json!(1), json!(100), 40, "Fair"),
            (json!(100), json!(0), json!(3000.01), 60, "Good"),
            (json!(500.01), json!(0), json!(100), 70, "Good"),
            (json!(500.01), json!(0), json!(3000.01), 100, "Excellent"),
        ];
        for (rpc, alerts, ltv, score, rating) in cases {
            let r = insights_of(aggregate(rpc, alerts, ltv, json!(1))).await;
            assert_eq!(
                r["health_score"],
                json!({"score": score, "max_score": 100, "rating": rating})
            );
        }
    }

    #[tokio::test]
    async fn generate_insights_rounds_average_ltv_to_cents_half_away_from_zero() {
        // 0.05 / 2 = 0.025 -> 0.03
        let r = insights_of(aggregate(json!(1), json!(0), json!(0.05), json!(2))).await;
        assert_eq!(r["insights"][2]["metric"], json!(0.03));
        assert_eq!(r["insights"][2]["finding"], "Average customer lifetime value: $0.03");
    }

    #[tokio::test]
    async fn generate_insights_counts_every_key_of_the_aggregate() {
        let mut results = aggregate(json!(1), json!(0), json!(1), json!(1));
        results["aggregate_metrics"]["extra"] = json!(false);
        results["aggregate_metrics"]["more"] = json!(null);
        let r = insights_of(results).await;
        assert_eq!(r["total_metrics_analyzed"], 7);
    }

    #[test]
    fn number_json_writes_integral_values_as_integers() {
        assert_eq!(number_json(Decimal::from_str("575.000").unwrap()).to_string(), "575");
        assert_eq!(number_json(Decimal::from_str("5.56470").unwrap()).to_string(), "5.5647");
        assert_eq!(number_text(Decimal::from_str("5.0").unwrap()), "5");
    }
}
