//! The types every Tasker language sees.
//!
//! * [`StepContext`]: what a handler receives — identity of the running step, the task input,
//!   the results of its dependencies, its `handler.initialization` config, the attempt counters,
//!   a logger stamped with the correlation fields, and [`StepContext::create_task`] for handlers
//!   that start other workflows.
//! * [`StepSuccess`] / [`StepError`]: what a handler returns. [`StepError`] is either permanent
//!   or retryable; [`PermanentError`] and [`RetryableError`] are the two constructors handlers use.
//! * [`TaskRequest`] / [`CreatedTask`] / [`CreateTaskError`]: the task-creation contract shared by
//!   the REST API and `create_task`.
//!
//! This crate is binding-neutral: no database, no runtime, no FFI. The Ruby, Python and
//! TypeScript bindings wrap these same types.

mod context;
pub mod logging;
mod outcome;
mod request;

pub use context::{LogLevel, StepContext, StepContextData, StepLogger, TaskCreator, TraceContext};
pub use outcome::{codes, PermanentError, RetryableError, StepError, StepOutcome, StepResult, StepSuccess};
pub use request::{CreateTaskError, CreatedTask, TaskRequest};
