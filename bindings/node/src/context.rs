//! `StepContext` and `StepLogger`: the core context type, read-only. The TypeScript `StepContext`
//! wraps this class (camelCase names, the test double for `createTask`, error mapping).

use napi::bindgen_prelude::{Either, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use serde_json::Value;
use tasker_step::{CreateTaskError, LogLevel, StepContext, StepContextData, TaskRequest};
use tasker_worker::host::create_task_async;
use tokio::runtime::Handle;

use crate::errors::{self, NativeFailure};

/// The context of one attempt (spec §0.5).
#[napi(js_name = "StepContext")]
pub struct JsStepContext {
    ctx: StepContext,
    /// The worker's runtime, for `createTask` through the engine; `None` for `fromJson` contexts.
    runtime: Option<Handle>,
}

impl JsStepContext {
    pub fn for_worker(ctx: StepContext, runtime: Handle) -> Self {
        JsStepContext {
            ctx,
            runtime: Some(runtime),
        }
    }
}

/// `{task_uuid, status, created, namespace, name, version, correlation_id}`, the §0.3 answer.
#[napi(object)]
pub struct CreatedTask {
    #[napi(js_name = "task_uuid")]
    pub task_uuid: String,
    pub status: String,
    pub created: bool,
    pub namespace: String,
    pub name: String,
    pub version: String,
    #[napi(js_name = "correlation_id")]
    pub correlation_id: String,
}

/// What `createTask` resolves with: the created task, or why it was not created.
#[napi(object)]
pub struct CreateTaskOutcome {
    pub task: Option<CreatedTask>,
    pub failure: Option<NativeFailure>,
}

fn parse_request(json: &str) -> Result<TaskRequest, CreateTaskError> {
    serde_json::from_str(json).map_err(|e| CreateTaskError {
        code: "INVALID_REQUEST".into(),
        message: format!("task request: {e}"),
        field: None,
        details: vec![],
        transient: false,
    })
}

#[napi]
impl JsStepContext {
    /// A context from its JSON text (`step_name`, `input`, `dependency_results`, `config`,
    /// `attempt`, `max_attempts`, the uuids and names; every field optional). Throws an error of
    /// kind `invalid_context` for anything else.
    #[napi(factory)]
    pub fn from_json(text: String) -> errors::Result<Self> {
        let data = StepContextData::from_json_text(&text).map_err(|e| errors::error("invalid_context", e))?;
        Ok(JsStepContext {
            ctx: StepContext::new(data, None),
            runtime: None,
        })
    }

    #[napi(getter)]
    pub fn task_uuid(&self) -> String {
        self.ctx.task_uuid().to_string()
    }
    #[napi(getter)]
    pub fn step_uuid(&self) -> String {
        self.ctx.step_uuid().to_string()
    }
    #[napi(getter)]
    pub fn step_name(&self) -> String {
        self.ctx.step_name().to_string()
    }
    #[napi(getter)]
    pub fn namespace(&self) -> String {
        self.ctx.namespace().to_string()
    }
    #[napi(getter)]
    pub fn workflow_name(&self) -> String {
        self.ctx.workflow_name().to_string()
    }
    #[napi(getter)]
    pub fn workflow_version(&self) -> String {
        self.ctx.workflow_version().to_string()
    }
    #[napi(getter)]
    pub fn correlation_id(&self) -> String {
        self.ctx.correlation_id().to_string()
    }
    /// The W3C `traceparent` continuing this attempt's trace, if the task has one.
    #[napi(getter)]
    pub fn traceparent(&self) -> Option<String> {
        self.ctx.traceparent().map(str::to_string)
    }
    /// The W3C `tracestate` that goes with `traceparent`.
    #[napi(getter)]
    pub fn tracestate(&self) -> Option<String> {
        self.ctx.tracestate().map(str::to_string)
    }
    #[napi(getter)]
    pub fn attempt(&self) -> u32 {
        self.ctx.attempt()
    }
    #[napi(getter)]
    pub fn max_attempts(&self) -> u32 {
        self.ctx.max_attempts()
    }

    /// The task input (a fresh copy).
    #[napi(getter)]
    pub fn input(&self) -> Value {
        self.ctx.input().clone()
    }

    /// `result` objects of completed upstream steps, by step name (a fresh copy).
    #[napi(getter, ts_return_type = "Record<string, any>")]
    pub fn dependency_results(&self) -> Value {
        self.ctx.data().dependency_results_object()
    }

    /// The step's `handler.initialization` (a fresh copy).
    #[napi(getter)]
    pub fn config(&self) -> Value {
        self.ctx.data().config.clone()
    }

    #[napi(getter)]
    pub fn logger(&self) -> JsStepLogger {
        JsStepLogger { ctx: self.ctx.clone() }
    }

    /// A top-level input key; null when absent or null.
    #[napi]
    pub fn get_input(&self, key: String) -> Option<Value> {
        self.ctx.get_input(&key).cloned()
    }

    #[napi]
    pub fn get_dependency_result(&self, step_name: String) -> Option<Value> {
        self.ctx.get_dependency_result(&step_name).cloned()
    }

    /// A nested field of a dependency's result; strings index objects, numbers index arrays.
    #[napi]
    pub fn get_dependency_field(&self, step_name: String, path: Vec<Either<String, f64>>) -> Option<Value> {
        let mut segments = Vec::with_capacity(path.len());
        for seg in path {
            match seg {
                Either::A(key) => segments.push(key),
                Either::B(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => {
                    segments.push((n as u64).to_string())
                }
                Either::B(_) => return None,
            }
        }
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
        self.ctx.get_dependency_field(&step_name, &refs).cloned()
    }

    #[napi]
    pub fn get_config(&self, key: String) -> Option<Value> {
        self.ctx.get_config(&key).cloned()
    }

    #[napi]
    pub fn is_retry(&self) -> bool {
        self.ctx.is_retry()
    }

    #[napi]
    pub fn is_last_retry(&self) -> bool {
        self.ctx.is_last_retry()
    }

    /// Creates a task through the engine, on the worker's runtime (never on the JS thread).
    /// `requestJson` is the §0.3 request body. A context without an engine (built by `fromJson`)
    /// answers `ENGINE_UNAVAILABLE`.
    #[napi(ts_return_type = "Promise<CreateTaskOutcome>")]
    pub fn create_task<'env>(
        &self,
        env: &'env Env,
        request_json: String,
    ) -> napi::Result<PromiseRaw<'env, CreateTaskOutcome>> {
        let ctx = self.ctx.clone();
        let runtime = self.runtime.clone();
        env.spawn_future(async move {
            let result = match parse_request(&request_json) {
                Err(e) => Err(e),
                Ok(request) => create_task_async(runtime, ctx, request).await,
            };
            Ok(match result {
                Ok(t) => CreateTaskOutcome {
                    task: Some(CreatedTask {
                        task_uuid: t.task_uuid.to_string(),
                        status: t.status,
                        created: t.created,
                        namespace: t.namespace,
                        name: t.name,
                        version: t.version,
                        correlation_id: t.correlation_id,
                    }),
                    failure: None,
                },
                Err(e) => CreateTaskOutcome {
                    task: None,
                    failure: Some(NativeFailure::task_creation(&e)),
                },
            })
        })
    }

    /// The context's plain data, as `fromJson` reads it.
    #[napi]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.ctx.data()).expect("context data serializes")
    }
}

/// `context.logger`: lines stamped with the step's correlation fields, through the core's
/// `tracing` subscriber (see `initLogging`).
#[napi(js_name = "StepLogger")]
pub struct JsStepLogger {
    ctx: StepContext,
}

#[napi]
impl JsStepLogger {
    /// A line at `level` (`debug`, `info`, `warn`, `error`) with the step's correlation fields,
    /// and `fields_json` (the JSON text of an object, written with every digit by the package)
    /// beside them.
    #[napi]
    pub fn log(&self, level: String, message: String, fields_json: Option<String>) -> errors::Result<()> {
        let level: LogLevel = level.parse().map_err(|e: String| errors::error("invalid_context", e))?;
        let fields = fields_json
            .map(|text| serde_json::from_str::<serde_json::Value>(&text))
            .transpose()
            .map_err(|e| errors::error("invalid_context", format!("log fields: {e}")))?;
        let fields = match fields {
            None | Some(serde_json::Value::Null) => serde_json::Map::new(),
            Some(serde_json::Value::Object(map)) => map,
            Some(other) => {
                return Err(errors::error(
                    "invalid_context",
                    format!("log fields must be an object, got {other}"),
                ))
            }
        };
        self.ctx.logger().log(level, &message, &fields);
        Ok(())
    }
}
