//! Handlers of the engine's own test workflows (`fixtures/task_templates/rust/tests/`):
//! a linear chain and a diamond doing small integer arithmetic, so that every result proves
//! which dependency results it saw.
//!
//! Every handler first applies the behaviour the task input asks of its step, under
//! `behaviors.<step_name>`:
//! * `{"mode": "permanent"}`: fail permanently (`TEST_PERMANENT`);
//! * `{"mode": "retryable", "retry_after": s?}`: fail retryably (`TEST_RETRYABLE`);
//! * `{"mode": "fail_until_attempt", "attempt": n}`: fail retryably before attempt n;
//! * `{"mode": "sleep", "ms": n}`: sleep n ms, then succeed;
//! * `{"mode": "panic"}`: panic.

use std::time::Duration;

use serde_json::{json, Value};
use tasker_step::{PermanentError, RetryableError, StepContext, StepError, StepResult, StepSuccess};
use tasker_worker::HandlerRegistry;

/// Applies `behaviors.<step>` of the input; `Ok(())` means "go on and compute".
pub async fn apply_behavior(ctx: &StepContext) -> Result<(), StepError> {
    let Some(b) = ctx.get_input("behaviors").and_then(|b| b.get(ctx.step_name())) else {
        return Ok(());
    };
    match b.get("mode").and_then(Value::as_str).unwrap_or("") {
        "permanent" => Err(
            PermanentError::new(format!("step {} failed permanently", ctx.step_name()))
                .code("TEST_PERMANENT")
                .context(json!({"attempt": ctx.attempt()}))
                .into(),
        ),
        "retryable" => {
            let mut e =
                RetryableError::new(format!("step {} failed, try again", ctx.step_name())).code("TEST_RETRYABLE");
            if let Some(s) = b.get("retry_after").and_then(Value::as_u64) {
                e = e.retry_after(s);
            }
            Err(e.into())
        }
        "fail_until_attempt" => {
            let n = b.get("attempt").and_then(Value::as_u64).unwrap_or(2) as u32;
            if ctx.attempt() < n {
                Err(RetryableError::new(format!("attempt {} is too early", ctx.attempt()))
                    .code("TEST_RETRYABLE")
                    .into())
            } else {
                Ok(())
            }
        }
        "sleep" => {
            let ms = b.get("ms").and_then(Value::as_u64).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        }
        "panic" => panic!("step {} was told to panic", ctx.step_name()),
        other => Err(PermanentError::new(format!("unknown test behavior {other:?}"))
            .code("TEST_BAD_BEHAVIOR")
            .into()),
    }
}

fn int_input(ctx: &StepContext, key: &str) -> Result<i64, StepError> {
    ctx.get_input(key).and_then(Value::as_i64).ok_or_else(|| {
        PermanentError::new(format!("input {key} must be an integer"))
            .code("TEST_BAD_INPUT")
            .into()
    })
}

fn dep_value(ctx: &StepContext, step: &str) -> Result<i64, StepError> {
    ctx.get_dependency_field(step, &["value"])
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            PermanentError::new(format!("dependency {step} has no integer value"))
                .code("TEST_MISSING_DEPENDENCY")
                .into()
        })
}

fn value(ctx: &StepContext, v: i64) -> StepResult {
    Ok(StepSuccess::new(json!({"value": v, "attempt": ctx.attempt()})))
}

macro_rules! arithmetic {
    ($registry:expr, $callable:literal, |$ctx:ident| $body:expr) => {
        $registry.register_fn($callable, |$ctx: StepContext| async move {
            apply_behavior(&$ctx).await?;
            let v: i64 = $body;
            value(&$ctx, v)
        });
    };
}

/// Registers `tests::linear_*` and `tests::diamond_*`.
pub fn register(registry: &mut HandlerRegistry) {
    // linear: a = n + 1, b = a * 2, c = b - 3, d = c * c (, e = d + 1 in version 2)
    arithmetic!(registry, "tests::linear_a", |ctx| int_input(&ctx, "n")? + 1);
    arithmetic!(registry, "tests::linear_b", |ctx| dep_value(&ctx, "a")? * 2);
    arithmetic!(registry, "tests::linear_c", |ctx| dep_value(&ctx, "b")? - 3);
    arithmetic!(registry, "tests::linear_d", |ctx| dep_value(&ctx, "c")?.pow(2));
    arithmetic!(registry, "tests::linear_e", |ctx| dep_value(&ctx, "d")? + 1);
    // diamond: start = n, left = start * 2, right = start + 10, end = left + right
    arithmetic!(registry, "tests::diamond_start", |ctx| int_input(&ctx, "n")?);
    arithmetic!(registry, "tests::diamond_left", |ctx| dep_value(&ctx, "start")? * 2);
    arithmetic!(registry, "tests::diamond_right", |ctx| dep_value(&ctx, "start")? + 10);
    arithmetic!(registry, "tests::diamond_end", |ctx| dep_value(&ctx, "left")?
        + dep_value(&ctx, "right")?);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(callable: &str, ctx: Value) -> StepResult {
        let mut r = HandlerRegistry::new();
        register(&mut r);
        let ctx = StepContext::from_json(ctx).unwrap();
        r.get(callable).unwrap().call(&ctx).await
    }

    #[tokio::test]
    async fn linear_steps_compute_from_dependency_results() {
        let a = run("tests::linear_a", json!({"input": {"n": 4}})).await.unwrap();
        assert_eq!(a.result["value"], 5);
        let d = run("tests::linear_d", json!({"dependency_results": {"c": {"value": 7}}}))
            .await
            .unwrap();
        assert_eq!(d.result["value"], 49);
    }

    #[tokio::test]
    async fn diamond_end_adds_both_branches() {
        let r = run(
            "tests::diamond_end",
            json!({"dependency_results": {"left": {"value": 6}, "right": {"value": 13}}}),
        )
        .await
        .unwrap();
        assert_eq!(r.result["value"], 19);
    }

    #[tokio::test]
    async fn behaviors_produce_typed_failures() {
        let input = json!({"n": 1, "behaviors": {"a": {"mode": "retryable", "retry_after": 3}}});
        let e = run("tests::linear_a", json!({"step_name": "a", "input": input}))
            .await
            .unwrap_err();
        assert!(e.retryable);
        assert_eq!(e.retry_after, Some(3));
        let input = json!({"n": 1, "behaviors": {"a": {"mode": "permanent"}}});
        let e = run("tests::linear_a", json!({"step_name": "a", "input": input}))
            .await
            .unwrap_err();
        assert!(!e.retryable);
        assert_eq!(e.error_code, "TEST_PERMANENT");
    }

    #[tokio::test]
    async fn fail_until_attempt_succeeds_on_that_attempt() {
        let input = json!({"n": 1, "behaviors": {"a": {"mode": "fail_until_attempt", "attempt": 2}}});
        assert!(run(
            "tests::linear_a",
            json!({"step_name": "a", "attempt": 1, "input": input.clone()})
        )
        .await
        .is_err());
        let ok = run(
            "tests::linear_a",
            json!({"step_name": "a", "attempt": 2, "input": input}),
        )
        .await
        .unwrap();
        assert_eq!(ok.result, json!({"value": 2, "attempt": 2}));
    }

    #[tokio::test]
    async fn missing_dependency_is_a_permanent_failure() {
        let e = run("tests::linear_b", json!({})).await.unwrap_err();
        assert_eq!(e.error_code, "TEST_MISSING_DEPENDENCY");
        assert!(!e.retryable);
    }
}
