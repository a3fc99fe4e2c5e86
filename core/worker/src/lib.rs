//! The worker runtime, shared by every language.
//!
//! A [`Worker`] registers the templates of its `TASKER_TEMPLATE_PATH`, serves their namespaces,
//! claims step messages with a visibility timeout (extended while a handler runs), builds the
//! [`StepContext`], runs the handler under a concurrency limit and the step's `timeout_seconds`,
//! and submits the outcome through [`tasker_engine::Engine::complete_attempt`].
//!
//! Handlers run in one of two ways ([`Executor`]):
//! * **native**: Rust handlers from a [`HandlerRegistry`];
//! * **foreign**: every claimed step is handed to host-language threads through a
//!   [`Dispatcher`]: a host thread blocks in [`Dispatcher::next_step`] (no polling loop) and
//!   answers with [`DispatchedStep::complete`]. This is what the Ruby, Python and TypeScript
//!   bindings wrap.
//!
//! [`host::HostWorker`] runs a foreign-executor worker on its own threads for a binding.
//!
//! Lifecycle events (spec §5.1) reach the worker's subscribers ([`EventSubscriber`], registered
//! on its [`EventBus`] or by name with `--subscribe`) through the pump of `events`;
//! `observability` holds the two subscribers of §5.3 and §5.4.
//!
//! Wake-ups come from LISTEN/NOTIFY on each namespace's channel and from the earliest delayed
//! message (retries, expired claims), which each claim's read reports; a slow fallback poll only
//! covers lost notifications.

pub mod args;
mod config;
mod dispatch;
pub mod events;
mod handler;
mod health;
mod held;
pub mod host;
pub mod observability;
mod runtime;
mod stats;
mod submit;

pub use config::{HandlerLanguage, WorkerConfig, WorkerError, WorkerErrorKind};
pub use dispatch::{DispatchedStep, Dispatcher};
pub use events::{EventBus, EventSubscriber};
pub use handler::{FnHandler, HandlerRegistry, StepHandler};
pub use runtime::{Executor, Worker};
pub use stats::WorkerStats;
pub use tasker_step::{PermanentError, RetryableError, StepContext, StepError, StepOutcome, StepResult, StepSuccess};
