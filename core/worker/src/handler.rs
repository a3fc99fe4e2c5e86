//! Native Rust handlers and their registry, keyed by the template's `handler.callable`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tasker_step::{StepContext, StepResult};

/// A step handler. Return `Ok(StepSuccess)` or a typed `StepError` (built from
/// `PermanentError` / `RetryableError`). A panic becomes a retryable `UNHANDLED_EXCEPTION`
/// failure, never a dead worker. Blocking work belongs in `tokio::task::spawn_blocking`.
#[async_trait]
pub trait StepHandler: Send + Sync {
    async fn call(&self, ctx: &StepContext) -> StepResult;
}

/// Adapts an async closure taking an owned context.
pub struct FnHandler<F>(pub F);

#[async_trait]
impl<F> StepHandler for FnHandler<F>
where
    F: Fn(StepContext) -> BoxFuture<'static, StepResult> + Send + Sync,
{
    async fn call(&self, ctx: &StepContext) -> StepResult {
        (self.0)(ctx.clone()).await
    }
}

/// Handlers by callable name, e.g. `ecommerce::validate_cart`.
#[derive(Default, Clone)]
pub struct HandlerRegistry {
    handlers: HashMap<String, Arc<dyn StepHandler>>,
}

impl HandlerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, callable: impl Into<String>, handler: impl StepHandler + 'static) -> &mut Self {
        self.handlers.insert(callable.into(), Arc::new(handler));
        self
    }

    /// Registers an async function: `registry.register_fn("ns::step", |ctx| async move { ... })`.
    pub fn register_fn<F, Fut>(&mut self, callable: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(StepContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StepResult> + Send + 'static,
    {
        let f = Arc::new(f);
        self.register(
            callable,
            FnHandler(move |ctx: StepContext| -> BoxFuture<'static, StepResult> {
                let f = f.clone();
                Box::pin(async move { f(ctx).await })
            }),
        )
    }

    pub fn get(&self, callable: &str) -> Option<Arc<dyn StepHandler>> {
        self.handlers.get(callable).cloned()
    }

    pub fn callables(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }
}
