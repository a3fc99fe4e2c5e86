//! [`StepContext`]: everything a handler may read about the running step.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::request::{CreateTaskError, CreatedTask, TaskRequest};

/// Something that can create tasks on behalf of a running step. The worker runtime provides one
/// backed by the engine; tests may provide their own.
#[async_trait]
pub trait TaskCreator: Send + Sync {
    async fn create_task(&self, request: TaskRequest) -> Result<CreatedTask, CreateTaskError>;
}

/// The plain data of a step context. This is what crosses language boundaries (as JSON) and what
/// the public test helper [`StepContext::from_json`] reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepContextData {
    #[serde(default = "Uuid::nil")]
    pub task_uuid: Uuid,
    #[serde(default = "Uuid::nil")]
    pub step_uuid: Uuid,
    #[serde(default)]
    pub step_name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub workflow_name: String,
    #[serde(default)]
    pub workflow_version: String,
    #[serde(default)]
    pub correlation_id: String,
    #[serde(default = "one")]
    pub attempt: u32,
    #[serde(default = "one")]
    pub max_attempts: u32,
    /// The task `context` (the workflow input).
    #[serde(default = "empty_object")]
    pub input: Value,
    /// `result` objects of completed dependencies, by step name.
    #[serde(default)]
    pub dependency_results: BTreeMap<String, Value>,
    /// The step's `handler.initialization`.
    #[serde(default = "empty_object")]
    pub config: Value,
    /// Where this attempt sits in its task's distributed trace (W3C Trace Context), when the
    /// task has one: the attempt's own span when the worker exports traces, else the context
    /// the task was created in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

/// A W3C Trace Context (`traceparent` and optional `tracestate` headers,
/// <https://www.w3.org/TR/trace-context/>): what a handler needs to continue the trace with
/// its own OpenTelemetry SDK. Built only from a `traceparent` that parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    /// `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`.
    pub traceparent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The trace id (32 lowercase hex digits).
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or_default()
    }

    /// The parent span id (16 lowercase hex digits).
    pub fn span_id(&self) -> &str {
        self.traceparent.get(36..52).unwrap_or_default()
    }
}

impl StepContextData {
    /// A context from a JSON value, as the bindings' test helpers receive it: a JSON object whose
    /// fields are all optional. The error names what is wrong.
    pub fn from_json_value(value: Value) -> Result<Self, String> {
        if !value.is_object() {
            return Err("a step context must be a JSON object".into());
        }
        serde_json::from_value(value).map_err(|e| format!("step context: {e}"))
    }

    /// [`StepContextData::from_json_value`] of JSON text.
    pub fn from_json_text(text: &str) -> Result<Self, String> {
        let value = serde_json::from_str(text).map_err(|e| format!("step context is not valid JSON: {e}"))?;
        Self::from_json_value(value)
    }

    /// `dependency_results` as one JSON object, keyed by step name (a copy).
    pub fn dependency_results_object(&self) -> Value {
        Value::Object(
            self.dependency_results
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

fn one() -> u32 {
    1
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// What a handler receives. Input and dependency results are read-only.
#[derive(Clone)]
pub struct StepContext {
    data: Arc<StepContextData>,
    creator: Option<Arc<dyn TaskCreator>>,
}

impl std::fmt::Debug for StepContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl StepContext {
    pub fn new(data: StepContextData, creator: Option<Arc<dyn TaskCreator>>) -> Self {
        StepContext {
            data: Arc::new(data),
            creator,
        }
    }

    /// Test helper: builds a context from JSON such as
    /// `{"step_name": "validate_cart", "input": {...}, "dependency_results": {"a": {...}}, "attempt": 2}`.
    /// Every field is optional. Users test their handlers with this, without a database.
    pub fn from_json(value: Value) -> Result<Self, serde_json::Error> {
        Ok(StepContext::new(serde_json::from_value(value)?, None))
    }

    /// Same as [`StepContext::from_json`] with a task creator for handlers that start workflows.
    pub fn from_json_with_creator(value: Value, creator: Arc<dyn TaskCreator>) -> Result<Self, serde_json::Error> {
        Ok(StepContext::new(serde_json::from_value(value)?, Some(creator)))
    }

    pub fn data(&self) -> &StepContextData {
        &self.data
    }
    pub fn task_uuid(&self) -> Uuid {
        self.data.task_uuid
    }
    pub fn step_uuid(&self) -> Uuid {
        self.data.step_uuid
    }
    pub fn step_name(&self) -> &str {
        &self.data.step_name
    }
    pub fn namespace(&self) -> &str {
        &self.data.namespace
    }
    pub fn workflow_name(&self) -> &str {
        &self.data.workflow_name
    }
    pub fn workflow_version(&self) -> &str {
        &self.data.workflow_version
    }
    pub fn correlation_id(&self) -> &str {
        &self.data.correlation_id
    }
    pub fn attempt(&self) -> u32 {
        self.data.attempt
    }
    /// The W3C trace context of this attempt, if its task has one (see
    /// [`StepContextData::trace`]).
    pub fn trace(&self) -> Option<&TraceContext> {
        self.data.trace.as_ref()
    }

    /// The `traceparent` header value that continues this attempt's trace, if any.
    pub fn traceparent(&self) -> Option<&str> {
        self.data.trace.as_ref().map(|t| t.traceparent.as_str())
    }

    /// The `tracestate` header value that goes with [`StepContext::traceparent`], if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.data.trace.as_ref().and_then(|t| t.tracestate.as_deref())
    }

    pub fn max_attempts(&self) -> u32 {
        self.data.max_attempts
    }

    /// The whole task input.
    pub fn input(&self) -> &Value {
        &self.data.input
    }

    /// A top-level key of the task input; `None` when absent or null.
    pub fn get_input(&self, key: &str) -> Option<&Value> {
        self.data.input.get(key).filter(|v| !v.is_null())
    }

    /// [`get_input`](Self::get_input), or `default` when that is absent or null.
    pub fn get_input_or<'a>(&'a self, key: &str, default: &'a Value) -> &'a Value {
        self.get_input(key).unwrap_or(default)
    }

    /// The `result` object of a completed dependency.
    pub fn get_dependency_result(&self, step_name: &str) -> Option<&Value> {
        self.data.dependency_results.get(step_name).filter(|v| !v.is_null())
    }

    /// A nested field of a dependency's result: `get_dependency_field("validate_cart", &["total"])`.
    /// Path segments index objects by key and arrays by decimal index.
    pub fn get_dependency_field(&self, step_name: &str, path: &[&str]) -> Option<&Value> {
        let mut cur = self.get_dependency_result(step_name)?;
        for seg in path {
            cur = match cur {
                Value::Object(m) => m.get(*seg)?,
                Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        (!cur.is_null()).then_some(cur)
    }

    /// A key of the step's `handler.initialization`.
    pub fn get_config(&self, key: &str) -> Option<&Value> {
        self.data.config.get(key).filter(|v| !v.is_null())
    }

    pub fn is_retry(&self) -> bool {
        self.data.attempt > 1
    }

    pub fn is_last_retry(&self) -> bool {
        self.data.attempt >= self.data.max_attempts
    }

    /// Creates a task through the engine (§0.3). Fails with `ENGINE_UNAVAILABLE` (transient) when
    /// this context has no engine behind it, as in unit tests built with `from_json`.
    pub async fn create_task(&self, request: TaskRequest) -> Result<CreatedTask, CreateTaskError> {
        match &self.creator {
            Some(c) => c.create_task(request).await,
            None => Err(CreateTaskError {
                code: "ENGINE_UNAVAILABLE".into(),
                message: "this step context has no engine to create tasks with".into(),
                field: None,
                details: vec![],
                transient: true,
            }),
        }
    }

    /// A logger whose every line carries `correlation_id, task_uuid, step_uuid, step_name, namespace`.
    pub fn logger(&self) -> StepLogger<'_> {
        StepLogger { ctx: self }
    }
}

/// Structured logging stamped with the step's correlation fields (through `tracing`).
pub struct StepLogger<'a> {
    ctx: &'a StepContext,
}

/// A log line's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl std::str::FromStr for LogLevel {
    type Err = String;

    /// `debug`, `info`, `warn` / `warning`, `error` / `critical` / `fatal` (any case).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "debug" | "trace" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "error" | "critical" | "fatal" => Ok(LogLevel::Error),
            other => Err(format!("unknown log level {other:?}")),
        }
    }
}

macro_rules! emit {
    ($level:expr, $d:expr, $message:expr, $($extra:tt)*) => {
        tracing::event!(
            $level,
            correlation_id = %$d.correlation_id,
            task_uuid = %$d.task_uuid,
            step_uuid = %$d.step_uuid,
            step_name = %$d.step_name,
            namespace = %$d.namespace,
            $($extra)*
            "{}", $message
        )
    };
}

impl StepLogger<'_> {
    /// One line at `level`, stamped with the step's correlation fields, plus the handler's own
    /// `fields` (written as one JSON object) when there are any.
    pub fn log(&self, level: LogLevel, message: &str, fields: &serde_json::Map<String, Value>) {
        let d = &self.ctx.data;
        let extra = (!fields.is_empty()).then(|| Value::Object(fields.clone()).to_string());
        match (level, extra) {
            (LogLevel::Debug, None) => emit!(tracing::Level::DEBUG, d, message,),
            (LogLevel::Info, None) => emit!(tracing::Level::INFO, d, message,),
            (LogLevel::Warn, None) => emit!(tracing::Level::WARN, d, message,),
            (LogLevel::Error, None) => emit!(tracing::Level::ERROR, d, message,),
            (LogLevel::Debug, Some(f)) => emit!(tracing::Level::DEBUG, d, message, fields = %f,),
            (LogLevel::Info, Some(f)) => emit!(tracing::Level::INFO, d, message, fields = %f,),
            (LogLevel::Warn, Some(f)) => emit!(tracing::Level::WARN, d, message, fields = %f,),
            (LogLevel::Error, Some(f)) => emit!(tracing::Level::ERROR, d, message, fields = %f,),
        }
    }

    pub fn debug(&self, message: &str) {
        self.log(LogLevel::Debug, message, &serde_json::Map::new());
    }
    pub fn info(&self, message: &str) {
        self.log(LogLevel::Info, message, &serde_json::Map::new());
    }
    pub fn warn(&self, message: &str) {
        self.log(LogLevel::Warn, message, &serde_json::Map::new());
    }
    pub fn error(&self, message: &str) {
        self.log(LogLevel::Error, message, &serde_json::Map::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> StepContext {
        StepContext::from_json(json!({
            "step_name": "create_order",
            "attempt": 2,
            "max_attempts": 2,
            "input": {"customer": {"email": "a@b.c"}, "nothing": null},
            "dependency_results": {"validate_cart": {"total": 12.5, "items": [{"sku": "A"}]}},
            "config": {"scenario": "x"}
        }))
        .unwrap()
    }

    #[test]
    fn get_input_treats_null_as_absent() {
        let c = ctx();
        assert_eq!(c.get_input("customer").unwrap()["email"], "a@b.c");
        assert!(c.get_input("nothing").is_none());
        let d = json!(5);
        assert_eq!(c.get_input_or("nothing", &d), &json!(5));
    }

    #[test]
    fn dependency_field_walks_objects_and_arrays() {
        let c = ctx();
        assert_eq!(c.get_dependency_field("validate_cart", &["total"]), Some(&json!(12.5)));
        assert_eq!(
            c.get_dependency_field("validate_cart", &["items", "0", "sku"]),
            Some(&json!("A"))
        );
        assert_eq!(c.get_dependency_field("validate_cart", &["items", "9"]), None);
        assert_eq!(c.get_dependency_field("missing", &["total"]), None);
    }

    #[test]
    fn retry_predicates_follow_attempt_counters() {
        let c = ctx();
        assert!(c.is_retry());
        assert!(c.is_last_retry());
        let first = StepContext::from_json(json!({"max_attempts": 3})).unwrap();
        assert!(!first.is_retry());
        assert!(!first.is_last_retry());
    }

    #[test]
    fn config_reads_initialization() {
        assert_eq!(ctx().get_config("scenario"), Some(&json!("x")));
    }

    #[tokio::test]
    async fn create_task_without_engine_is_a_transient_error() {
        let err = ctx()
            .create_task(TaskRequest::new("a", "b", json!({})))
            .await
            .unwrap_err();
        assert!(err.transient);
        assert_eq!(err.code, "ENGINE_UNAVAILABLE");
    }

    #[test]
    fn context_data_from_json_requires_an_object_and_names_the_problem() {
        let data = StepContextData::from_json_text(r#"{"step_name": "a", "dependency_results": {"x": {"v": 1}}}"#)
            .expect("valid");
        assert_eq!(data.step_name, "a");
        assert_eq!(data.dependency_results_object(), serde_json::json!({"x": {"v": 1}}));
        let err = |text: &str| StepContextData::from_json_text(text).expect_err(text);
        assert!(err("not json").starts_with("step context is not valid JSON: "));
        assert_eq!(err("[1]"), "a step context must be a JSON object");
        assert!(err(r#"{"attempt": "two"}"#).starts_with("step context: invalid type"));
    }

    /// Collects what the fmt subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_carry_the_correlation_fields_and_the_handlers_fields() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        let c = StepContext::from_json(
            json!({"step_name": "charge", "namespace": "billing_rs", "correlation_id": "corr-9"}),
        )
        .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let mut fields = serde_json::Map::new();
            fields.insert("amount".into(), json!(12.5));
            c.logger().log(LogLevel::Warn, "charged", &fields);
            c.logger().debug("plain");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["fields"]["message"], "charged");
        assert_eq!(lines[0]["fields"]["correlation_id"], "corr-9");
        assert_eq!(lines[0]["fields"]["step_name"], "charge");
        assert_eq!(lines[0]["fields"]["namespace"], "billing_rs");
        assert_eq!(lines[0]["fields"]["fields"], r#"{"amount":12.5}"#);
        assert_eq!(lines[1]["level"], "DEBUG");
        assert!(lines[1]["fields"].get("fields").is_none());
        assert_eq!("warning".parse::<LogLevel>(), Ok(LogLevel::Warn));
        assert!("loud".parse::<LogLevel>().is_err());
    }
}
