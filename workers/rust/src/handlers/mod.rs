//! Handlers shipped with the Rust worker.

pub mod blog;
pub mod test_workflows;

use tasker_worker::HandlerRegistry;

/// Registers every handler of this crate.
pub fn register_all(registry: &mut HandlerRegistry) {
    test_workflows::register(registry);
    blog::register(registry);
}
