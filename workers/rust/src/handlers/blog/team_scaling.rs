//! Handlers of spec §4 team scaling: customer_success and payments process_refund.

use tasker_worker::HandlerRegistry;

/// Registers this workflow's handlers.
pub fn register(_registry: &mut HandlerRegistry) {}
