//! The task-creation contract (spec §0.3), shared by the REST API, the CLI and
//! `StepContext::create_task`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A request to create a task (spec §0.3). Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "namespace": "ecommerce_rs", "name": "ecommerce_order_processing",
    "context": {
        "cart_items": [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 1}],
        "customer_info": {"email": "customer@example.com", "name": "John Doe", "phone": "+1-555-0123"},
        "payment_info": {"method": "credit_card", "token": "tok_test_valid", "amount": 124.76}
    },
    "correlation_id": "order-7731"
}))]
pub struct TaskRequest {
    /// The template's namespace, e.g. `ecommerce_py`.
    #[schema(min_length = 1)]
    pub namespace: String,
    /// The template's name.
    #[schema(min_length = 1)]
    pub name: String,
    /// `MAJOR.MINOR.PATCH`; the highest registered version when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The workflow's input, validated against the template's input schema.
    #[schema(value_type = Object)]
    pub context: Value,
    /// Generated (a UUID v7) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 128)]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 128)]
    pub parent_correlation_id: Option<String>,
    /// A second request with the same key and request returns the first task (200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
}

impl TaskRequest {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, context: Value) -> Self {
        TaskRequest {
            namespace: namespace.into(),
            name: name.into(),
            context,
            ..Default::default()
        }
    }
}

/// The answer to a successful creation (201) or an idempotent replay (200, `created: false`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedTask {
    pub task_uuid: Uuid,
    pub status: String,
    pub created: bool,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub correlation_id: String,
}

/// A failed creation: the §0.3 error body plus whether trying again may help.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CreateTaskError {
    /// `INVALID_REQUEST`, `TEMPLATE_NOT_FOUND`, `IDEMPOTENCY_CONFLICT`, `INVALID_TASK_INPUT`, or
    /// `ENGINE_UNAVAILABLE` / `INTERNAL_ERROR` for transient failures.
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    #[serde(default)]
    pub details: Vec<Value>,
    /// True when the engine was unreachable, failed internally or timed out; false for every 4xx.
    pub transient: bool,
}
