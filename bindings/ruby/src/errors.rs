//! Error mapping: every error this extension raises has a kind, and
//! `TaskerCore::Errors::NATIVE_ERROR_KINDS` (Ruby) maps each kind to one exception class. The
//! classes are defined in Ruby and looked up here, so there is one exception tree.

use magnus::prelude::*;
use magnus::{Error, Exception, ExceptionClass, RHash, RModule, Ruby};
use tasker_step::CreateTaskError;
use tasker_worker::WorkerError;

/// Every kind this extension raises. `NATIVE_ERROR_KINDS` must have exactly these keys.
pub use tasker_worker::host::ERROR_KINDS as KINDS;

fn errors_module(ruby: &Ruby) -> Result<RModule, Error> {
    ruby.class_object()
        .const_get::<_, RModule>("TaskerCore")?
        .const_get::<_, RModule>("Errors")
}

fn class_for(ruby: &Ruby, kind: &str) -> Result<ExceptionClass, Error> {
    let kinds: RHash = errors_module(ruby)?.const_get("NATIVE_ERROR_KINDS")?;
    match kinds.get(kind) {
        Some(class) => ExceptionClass::try_convert(class),
        None => Err(Error::new(
            ruby.exception_runtime_error(),
            format!("TaskerCore::Errors::NATIVE_ERROR_KINDS has no class for native error kind {kind:?}"),
        )),
    }
}

/// The exception of `kind` with a message.
pub fn error(ruby: &Ruby, kind: &str, message: impl Into<String>) -> Error {
    match class_for(ruby, kind) {
        Ok(class) => Error::new(class, message.into()),
        Err(e) => e,
    }
}

pub fn worker_error(ruby: &Ruby, e: &WorkerError) -> Error {
    error(ruby, tasker_worker::host::error_kind_name(e.kind()), e.to_string())
}

/// `TaskCreationError` carrying `code`, `field`, `details` and `transient`.
pub fn task_creation_error(ruby: &Ruby, e: &CreateTaskError) -> Error {
    let build = || -> Result<Error, Error> {
        let class = class_for(ruby, "task_creation")?;
        let details = crate::convert::to_ruby(ruby, &serde_json::Value::Array(e.details.clone()))?;
        let exc: Exception = class.funcall(
            "from_native",
            (e.code.clone(), e.message.clone(), e.field.clone(), details, e.transient),
        )?;
        Ok(exc.into())
    };
    build().unwrap_or_else(|err| err)
}

/// An `ArgumentError` (a caller passed a value of the right type but a wrong value).
pub fn argument_error(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(ruby.exception_arg_error(), message.into())
}
