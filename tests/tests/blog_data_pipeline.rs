//! Spec §2 data pipeline analytics (`data_pipeline_<sfx>/analytics_pipeline@1.0.0`) on real
//! processes, once per worker language.
//!
//! The handlers read no task input and the extract steps cannot fail, so no failure rule of §2
//! (`MISSING_EXTRACT_RESULTS`, `MISSING_TRANSFORM_RESULTS`, `MISSING_AGGREGATE_RESULTS`) and no
//! retryable rule is reachable from input: those are covered by the handler unit tests. Here:
//! the reference input (§2.5) and other valid inputs complete with the spec's exact values, and
//! schema-invalid input is rejected with 422 before any task exists.

use std::time::Duration;

use serde_json::{json, Value};
use tasker_e2e::{api_time, masking, step_map, Lang, Stack, StackOptions};

const WAIT: Duration = Duration::from_secs(60);
const IDENTITY: &str = "analytics_pipeline@1.0.0";

const EXTRACTS: [&str; 3] = ["extract_sales_data", "extract_inventory_data", "extract_customer_data"];
const TRANSFORMS: [&str; 3] = ["transform_sales", "transform_inventory", "transform_customers"];

fn task_body(lang: &Lang, context: Value) -> Value {
    json!({"namespace": lang.namespace("data_pipeline"), "name": "analytics_pipeline", "version": "1.0.0", "context": context})
}

fn reference_input() -> Value {
    json!({"pipeline_id": "pipeline_ref", "date_range": {"start_date": "2025-11-01", "end_date": "2025-11-30"}})
}

/// The step's result with its timestamp (if it has one) checked and removed.
fn masked(step: &str, result: &Value) -> Value {
    let key = match step {
        "extract_sales_data" | "extract_inventory_data" | "extract_customer_data" => "extracted_at",
        "generate_insights" => "generated_at",
        _ => return result.clone(),
    };
    let mut out = result.clone();
    let ts = out
        .as_object_mut()
        .and_then(|m| m.remove(key))
        .unwrap_or_else(|| panic!("{step}: {key} missing in {result:#}"));
    assert!(masking::is_timestamp(&ts), "{step}: {key} = {ts}");
    out
}

/// Every step's result for any valid input (§2.1–§2.5), timestamps removed.
fn expected_results() -> Vec<(&'static str, Value)> {
    vec![
        (
            "extract_sales_data",
            json!({
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
            }),
        ),
        (
            "extract_inventory_data",
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
            }),
        ),
        (
            "extract_customer_data",
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
            }),
        ),
        (
            "transform_sales",
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
            }),
        ),
        (
            "transform_inventory",
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
            }),
        ),
        (
            "transform_customers",
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
            }),
        ),
        (
            "aggregate_metrics",
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
            }),
        ),
        (
            "generate_insights",
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
            }),
        ),
    ]
}

/// Asserts the task completed with every step's exact §2 result on its first attempt.
fn assert_completed_with_spec_values(task: &Value) {
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(task);
    assert_eq!(steps.len(), 8, "{task:#}");
    for (name, want) in expected_results() {
        let step = &steps[name];
        assert_eq!(step["status"], "complete", "{name}: {step:#}");
        assert_eq!(step["attempts"], 1, "{name}");
        assert!(step["error"].is_null(), "{name}: {step:#}");
        assert_eq!(masked(name, &step["result"]), want, "{name}");
    }
}

async fn reference_input_completes_with_the_spec_values(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let uuid = stack.create_ok(&task_body(&lang, reference_input())).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_completed_with_spec_values(&task);
    assert_eq!(task["namespace"], lang.namespace("data_pipeline"));
    assert_eq!(task["version"], "1.0.0");

    // The DAG and retry policy of §2 as the engine runs them.
    let steps = step_map(&task);
    for (extract, transform) in EXTRACTS.iter().zip(TRANSFORMS) {
        assert_eq!(steps[*extract]["dependencies"], json!([]), "{extract}");
        assert_eq!(steps[*extract]["max_attempts"], 3, "{extract}");
        assert_eq!(steps[transform]["dependencies"], json!([extract]), "{transform}");
        assert_eq!(steps[transform]["max_attempts"], 2, "{transform}");
        assert!(api_time(&steps[*extract]["completed_at"]) <= api_time(&steps[transform]["started_at"]));
        assert!(api_time(&steps[transform]["completed_at"]) <= api_time(&steps["aggregate_metrics"]["started_at"]));
    }
    let mut aggregate_deps: Vec<String> =
        serde_json::from_value(steps["aggregate_metrics"]["dependencies"].clone()).unwrap();
    aggregate_deps.sort();
    assert_eq!(
        aggregate_deps,
        ["transform_customers", "transform_inventory", "transform_sales"]
    );
    assert_eq!(steps["generate_insights"]["dependencies"], json!(["aggregate_metrics"]));
    for name in ["aggregate_metrics", "generate_insights"] {
        assert_eq!(steps[name]["max_attempts"], 2, "{name}");
    }
    assert!(
        api_time(&steps["aggregate_metrics"]["completed_at"]) <= api_time(&steps["generate_insights"]["started_at"])
    );
}

async fn any_valid_input_gives_the_reference_values(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let inputs = [
        json!({}),
        json!({"pipeline_id": "other", "date_range": {"start_date": "2024-02-29"}, "extra": [1, 2]}),
        json!({"date_range": {"end_date": "1999-12-31", "note": "additional properties are allowed"}}),
    ];
    let mut uuids = vec![];
    for input in &inputs {
        uuids.push(stack.create_ok(&task_body(&lang, input.clone())).await);
    }
    for (uuid, input) in uuids.into_iter().zip(&inputs) {
        let task = stack.wait_for_task(uuid, WAIT).await;
        assert_eq!(task["status"], "complete", "input {input}: {task:#}");
        assert_completed_with_spec_values(&task);
    }
}

/// `(field, keyword, detail message)` of one schema violation.
type Violation = (&'static str, &'static str, &'static str);

async fn schema_invalid_input_is_rejected_with_422_and_creates_no_task(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let ident = format!("{}/{IDENTITY}", lang.namespace("data_pipeline"));
    // (context, every violation as (field, keyword, detail message), sorted by field)
    let cases: Vec<(Value, Vec<Violation>)> = vec![
        (
            json!({"date_range": {"start_date": "2025-11-31", "end_date": "2025-11-30"}}),
            vec![("/context/date_range/start_date", "format", "must be a valid date")],
        ),
        (
            json!({"date_range": {"start_date": "2025-11-01", "end_date": "11/30/2025"}}),
            vec![("/context/date_range/end_date", "format", "must be a valid date")],
        ),
        (
            json!({"date_range": {"start_date": "2025-11-01T00:00:00Z"}}),
            vec![("/context/date_range/start_date", "format", "must be a valid date")],
        ),
        (
            json!({"date_range": {"start_date": 20251101}}),
            vec![("/context/date_range/start_date", "type", "must be of type string")],
        ),
        (
            json!({"pipeline_id": 42}),
            vec![("/context/pipeline_id", "type", "must be of type string")],
        ),
        (
            json!({"date_range": "2025-11"}),
            vec![("/context/date_range", "type", "must be of type object")],
        ),
        (
            json!({"pipeline_id": ["p"], "date_range": {"end_date": "2025-13-01"}}),
            vec![
                ("/context/date_range/end_date", "format", "must be a valid date"),
                ("/context/pipeline_id", "type", "must be of type string"),
            ],
        ),
    ];
    for (context, violations) in cases {
        let (status, body) = stack.create_task(&task_body(&lang, context.clone())).await;
        assert_eq!(status, 422, "{context}: {body}");
        let (field, _, message) = violations[0];
        let details: Vec<Value> = violations
            .iter()
            .map(|(f, k, m)| json!({"field": f, "keyword": k, "message": m}))
            .collect();
        assert_eq!(
            body["error"],
            json!({
                "code": "INVALID_TASK_INPUT",
                "message": format!("Task input does not match {ident}: {field} {message}"),
                "field": field,
                "details": details,
            }),
            "{context}"
        );
    }
    stack.assert_no_task_created().await;
}

tasker_e2e::language_suite!(
    [rust, python, ruby, typescript],
    [
        reference_input_completes_with_the_spec_values,
        any_valid_input_gives_the_reference_values,
        schema_invalid_input_is_rejected_with_422_and_creates_no_task,
    ]
);
