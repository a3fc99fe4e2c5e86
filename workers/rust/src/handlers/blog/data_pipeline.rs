//! Handlers of spec §2 data pipeline analytics.

use tasker_worker::HandlerRegistry;

/// Registers this workflow's handlers.
pub fn register(_registry: &mut HandlerRegistry) {}
