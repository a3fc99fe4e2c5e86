//! Handlers of spec §3 microservices user registration.

use tasker_worker::HandlerRegistry;

/// Registers this workflow's handlers.
pub fn register(_registry: &mut HandlerRegistry) {}
