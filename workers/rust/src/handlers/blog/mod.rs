//! The blog workflows of `shared/spec/blog-workflows.md`, one module per workflow. Callables
//! are `<base namespace>::<step name>` (spec §0.2).

pub mod alerts;
pub mod data_pipeline;
pub mod ecommerce;
pub mod microservices;
pub mod support;
pub mod team_scaling;

use tasker_worker::HandlerRegistry;

/// Registers the handlers of every blog workflow.
pub fn register(registry: &mut HandlerRegistry) {
    ecommerce::register(registry);
    data_pipeline::register(registry);
    microservices::register(registry);
    team_scaling::register(registry);
    alerts::register(registry);
}
