//! Native Rust handlers and their registry, keyed by the template's `handler.callable`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tasker_step::{StepContext, StepResult};

use crate::events::EventSubscriber;

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

/// Makes a lifecycle-event subscriber named by `--subscribe`.
type SubscriberFactory = Arc<dyn Fn() -> Arc<dyn EventSubscriber> + Send + Sync>;

/// Handlers by callable name, e.g. `ecommerce::validate_cart`, and the worker's own
/// lifecycle-event subscribers by the name `--subscribe` gives them.
#[derive(Default, Clone)]
pub struct HandlerRegistry {
    handlers: HashMap<String, Arc<dyn StepHandler>>,
    subscribers: HashMap<String, SubscriberFactory>,
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

    /// Makes a subscriber `--subscribe <name>` can register (besides the built-in
    /// `observability::…` ones), created with `make` when the worker boots.
    pub fn register_subscriber<S, F>(&mut self, name: impl Into<String>, make: F) -> &mut Self
    where
        S: EventSubscriber + 'static,
        F: Fn() -> S + Send + Sync + 'static,
    {
        self.subscribers.insert(
            name.into(),
            Arc::new(move || Arc::new(make()) as Arc<dyn EventSubscriber>),
        );
        self
    }

    /// A new subscriber registered under `name`, if there is one.
    pub fn subscriber(&self, name: &str) -> Option<Arc<dyn EventSubscriber>> {
        self.subscribers.get(name).map(|make| make())
    }

    /// The names of the registered subscribers.
    pub fn subscriber_names(&self) -> impl Iterator<Item = &str> {
        self.subscribers.keys().map(String::as_str)
    }
}
