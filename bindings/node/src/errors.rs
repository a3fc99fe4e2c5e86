//! Error kinds. Every error the addon throws carries its kind as the JS `err.code`
//! (`napi::Error<Kind>`); the TypeScript layer (`src/errors.ts`, `NATIVE_ERROR_KINDS`) turns each
//! kind into one class of the package's exception tree, and a test checks that the kinds listed
//! here are exactly the kinds mapped there. Asynchronous calls cannot reject with a custom code,
//! so they resolve with a [`NativeFailure`] instead and the TypeScript layer throws.

use napi_derive::napi;
use tasker_step::CreateTaskError;
use tasker_worker::{WorkerError, WorkerErrorKind};

/// Every kind this addon reports. `NATIVE_ERROR_KINDS` in `src/errors.ts` must have exactly these.
pub use tasker_worker::host::ERROR_KINDS as KINDS;

/// The kind of a thrown error, as its JS `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind(pub &'static str);

impl AsRef<str> for Kind {
    fn as_ref(&self) -> &str {
        self.0
    }
}

pub type Result<T> = napi::Result<T, Kind>;

pub fn error(kind: &'static str, message: impl Into<String>) -> napi::Error<Kind> {
    debug_assert!(KINDS.contains(&kind), "unlisted error kind {kind}");
    napi::Error::new(Kind(kind), message.into())
}

pub fn kind_name(kind: WorkerErrorKind) -> &'static str {
    tasker_worker::host::error_kind_name(kind)
}

pub fn worker_error(e: &WorkerError) -> napi::Error<Kind> {
    error(kind_name(e.kind()), e.to_string())
}

/// A failure reported by an asynchronous call: the kind, the message and, for `task_creation`,
/// the §0.3 error body.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeFailure {
    pub kind: String,
    pub message: String,
    /// For `task_creation`: `INVALID_REQUEST`, `TEMPLATE_NOT_FOUND`, `IDEMPOTENCY_CONFLICT`,
    /// `INVALID_TASK_INPUT`, `ENGINE_UNAVAILABLE`, `INTERNAL_ERROR`.
    pub code: Option<String>,
    pub field: Option<String>,
    pub details: Option<Vec<serde_json::Value>>,
    pub transient: Option<bool>,
}

impl NativeFailure {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(KINDS.contains(&kind), "unlisted error kind {kind}");
        NativeFailure {
            kind: kind.into(),
            message: message.into(),
            code: None,
            field: None,
            details: None,
            transient: None,
        }
    }

    pub fn worker(kind: WorkerErrorKind, message: impl Into<String>) -> Self {
        NativeFailure::new(kind_name(kind), message)
    }

    pub fn task_creation(e: &CreateTaskError) -> Self {
        NativeFailure {
            kind: "task_creation".into(),
            message: e.message.clone(),
            code: Some(e.code.clone()),
            field: e.field.clone(),
            details: Some(e.details.clone()),
            transient: Some(e.transient),
        }
    }
}
