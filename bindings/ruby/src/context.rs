//! `TaskerCore::StepContext`: the core context type, read-only. `lib/tasker_core/step_context.rb`
//! adds the Ruby-shaped parts (keyword arguments, `from_json`'s `task_creator`, `logger`).

use magnus::prelude::*;
use magnus::{Error, RArray, RHash, RString, Ruby, Value};
use tasker_step::{CreatedTask, LogLevel, StepContext, StepContextData, TaskRequest};
use tasker_worker::host::create_task_blocking;
use tokio::runtime::Handle;

use crate::convert::{from_ruby, opt_to_ruby, to_ruby};
use crate::errors;
use crate::gvl::without_gvl;

#[magnus::wrap(class = "TaskerCore::StepContext", free_immediately, size)]
pub struct RbStepContext {
    ctx: StepContext,
    /// The worker's runtime, for `create_task` through the engine.
    runtime: Option<Handle>,
}

impl RbStepContext {
    pub fn for_worker(ctx: StepContext, runtime: Option<Handle>) -> Self {
        RbStepContext { ctx, runtime }
    }

    /// `StepContext._from_json(data)`: a context from JSON text or a Hash (test helper).
    fn from_json(ruby: &Ruby, data: Value) -> Result<Self, Error> {
        let invalid = |msg: String| errors::error(ruby, "invalid_context", msg);
        let data = if let Some(text) = RString::from_value(data) {
            StepContextData::from_json_text(&text.to_string()?).map_err(invalid)?
        } else {
            let value = from_ruby(ruby, data).map_err(|e| invalid(format!("step context: {e}")))?;
            StepContextData::from_json_value(value).map_err(invalid)?
        };
        Ok(RbStepContext {
            ctx: StepContext::new(data, None),
            runtime: None,
        })
    }

    fn task_uuid(&self) -> String {
        self.ctx.task_uuid().to_string()
    }
    fn step_uuid(&self) -> String {
        self.ctx.step_uuid().to_string()
    }
    fn step_name(&self) -> String {
        self.ctx.step_name().to_string()
    }
    fn namespace(&self) -> String {
        self.ctx.namespace().to_string()
    }
    fn workflow_name(&self) -> String {
        self.ctx.workflow_name().to_string()
    }
    fn workflow_version(&self) -> String {
        self.ctx.workflow_version().to_string()
    }
    fn correlation_id(&self) -> String {
        self.ctx.correlation_id().to_string()
    }
    fn traceparent(&self) -> Option<String> {
        self.ctx.traceparent().map(str::to_string)
    }
    fn tracestate(&self) -> Option<String> {
        self.ctx.tracestate().map(str::to_string)
    }
    fn attempt(&self) -> u32 {
        self.ctx.attempt()
    }
    fn max_attempts(&self) -> u32 {
        self.ctx.max_attempts()
    }
    fn input(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        to_ruby(ruby, rb_self.ctx.input())
    }
    fn dependency_results(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        to_ruby(ruby, &rb_self.ctx.data().dependency_results_object())
    }
    fn config(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        to_ruby(ruby, &rb_self.ctx.data().config)
    }
    fn get_input(ruby: &Ruby, rb_self: &Self, key: String) -> Result<Value, Error> {
        opt_to_ruby(ruby, rb_self.ctx.get_input(&key))
    }
    fn get_input_or(ruby: &Ruby, rb_self: &Self, key: String, default: Value) -> Result<Value, Error> {
        match rb_self.ctx.get_input(&key) {
            Some(v) => to_ruby(ruby, v),
            None => Ok(default),
        }
    }
    fn get_dependency_result(ruby: &Ruby, rb_self: &Self, step_name: String) -> Result<Value, Error> {
        opt_to_ruby(ruby, rb_self.ctx.get_dependency_result(&step_name))
    }
    /// `_get_dependency_field(step_name, path_array)`; the Ruby method takes `*path`.
    fn get_dependency_field(ruby: &Ruby, rb_self: &Self, step_name: String, path: RArray) -> Result<Value, Error> {
        let mut segments = Vec::with_capacity(path.len());
        for seg in path.into_iter() {
            if let Some(s) = RString::from_value(seg) {
                segments.push(s.to_string()?);
            } else if let Some(s) = magnus::Symbol::from_value(seg) {
                segments.push(s.name()?.into_owned());
            } else if let Some(i) = magnus::Integer::from_value(seg) {
                segments.push(i.to_i64()?.to_string());
            } else {
                return Err(Error::new(
                    ruby.exception_type_error(),
                    format!(
                        "path segments must be String (keys) or Integer (indexes), got {}",
                        seg.inspect()
                    ),
                ));
            }
        }
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
        opt_to_ruby(ruby, rb_self.ctx.get_dependency_field(&step_name, &refs))
    }
    fn get_config(ruby: &Ruby, rb_self: &Self, key: String) -> Result<Value, Error> {
        opt_to_ruby(ruby, rb_self.ctx.get_config(&key))
    }
    fn is_retry(&self) -> bool {
        self.ctx.is_retry()
    }
    fn is_last_retry(&self) -> bool {
        self.ctx.is_last_retry()
    }

    /// `_create_task(request)`: the request Hash (`namespace`, `name`, `context`, optional
    /// `version`, `correlation_id`, ...) through the engine, with the GVL released.
    fn create_task(ruby: &Ruby, rb_self: &Self, request: RHash) -> Result<Value, Error> {
        let json = from_ruby(ruby, request.as_value())?;
        let request: TaskRequest =
            serde_json::from_value(json).map_err(|e| errors::argument_error(ruby, format!("create_task: {e}")))?;
        let ctx = rb_self.ctx.clone();
        let runtime = rb_self.runtime.clone();
        let created: CreatedTask = without_gvl(move || create_task_blocking(runtime.as_ref(), &ctx, request))
            .map_err(|e| errors::task_creation_error(ruby, &e))?;
        to_ruby(
            ruby,
            &serde_json::to_value(&created).expect("a created task serializes"),
        )
    }

    /// The context's plain data, as `from_json` reads it.
    fn to_h(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        to_ruby(
            ruby,
            &serde_json::to_value(rb_self.ctx.data()).expect("context data serializes"),
        )
    }

    /// `_log(level, message, fields)`: one line through the core's tracing, stamped with the
    /// step's correlation fields, with `fields` (a Hash, or nil) written beside them.
    fn log(ruby: &Ruby, rb_self: &Self, level: String, message: String, fields: Value) -> Result<(), Error> {
        let level: LogLevel = level.parse().map_err(|e: String| errors::argument_error(ruby, e))?;
        let fields = match from_ruby(ruby, fields)? {
            serde_json::Value::Null => serde_json::Map::new(),
            serde_json::Value::Object(map) => map,
            other => {
                return Err(errors::argument_error(
                    ruby,
                    format!("log fields must be a Hash, got {other}"),
                ))
            }
        };
        rb_self.ctx.logger().log(level, &message, &fields);
        Ok(())
    }

    fn inspect(&self) -> String {
        format!(
            "#<TaskerCore::StepContext step_name={:?} task_uuid={} attempt={}/{}>",
            self.ctx.step_name(),
            self.ctx.task_uuid(),
            self.ctx.attempt(),
            self.ctx.max_attempts()
        )
    }
}

pub fn define(ruby: &Ruby, module: magnus::RModule) -> Result<(), Error> {
    use magnus::{function, method};
    let class = module.define_class("StepContext", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("_from_json", function!(RbStepContext::from_json, 1))?;
    class.define_method("task_uuid", method!(RbStepContext::task_uuid, 0))?;
    class.define_method("step_uuid", method!(RbStepContext::step_uuid, 0))?;
    class.define_method("step_name", method!(RbStepContext::step_name, 0))?;
    class.define_method("namespace", method!(RbStepContext::namespace, 0))?;
    class.define_method("workflow_name", method!(RbStepContext::workflow_name, 0))?;
    class.define_method("workflow_version", method!(RbStepContext::workflow_version, 0))?;
    class.define_method("correlation_id", method!(RbStepContext::correlation_id, 0))?;
    class.define_method("traceparent", method!(RbStepContext::traceparent, 0))?;
    class.define_method("tracestate", method!(RbStepContext::tracestate, 0))?;
    class.define_method("attempt", method!(RbStepContext::attempt, 0))?;
    class.define_method("max_attempts", method!(RbStepContext::max_attempts, 0))?;
    class.define_method("input", method!(RbStepContext::input, 0))?;
    class.define_method("dependency_results", method!(RbStepContext::dependency_results, 0))?;
    class.define_method("config", method!(RbStepContext::config, 0))?;
    class.define_method("get_input", method!(RbStepContext::get_input, 1))?;
    class.define_method("get_input_or", method!(RbStepContext::get_input_or, 2))?;
    class.define_method(
        "get_dependency_result",
        method!(RbStepContext::get_dependency_result, 1),
    )?;
    class.define_method("_get_dependency_field", method!(RbStepContext::get_dependency_field, 2))?;
    class.define_method("get_config", method!(RbStepContext::get_config, 1))?;
    class.define_method("retry?", method!(RbStepContext::is_retry, 0))?;
    class.define_method("last_retry?", method!(RbStepContext::is_last_retry, 0))?;
    class.define_method("_create_task", method!(RbStepContext::create_task, 1))?;
    class.define_method("to_h", method!(RbStepContext::to_h, 0))?;
    class.define_method("_log", method!(RbStepContext::log, 3))?;
    class.define_method("inspect", method!(RbStepContext::inspect, 0))?;
    Ok(())
}
