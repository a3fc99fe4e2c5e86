//! Handlers of spec §1 e-commerce order processing.

use tasker_worker::HandlerRegistry;

/// Registers this workflow's handlers.
pub fn register(_registry: &mut HandlerRegistry) {}
