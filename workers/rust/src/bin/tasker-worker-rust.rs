//! The Rust worker binary: serves the handlers shipped in this crate.

fn main() -> anyhow::Result<()> {
    let mut registry = tasker_worker_rust::HandlerRegistry::new();
    tasker_worker_rust::handlers::register_all(&mut registry);
    tasker_worker_rust::run_main(registry)
}
