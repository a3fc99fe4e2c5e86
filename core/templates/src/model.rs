//! The typed, validated shape of a task template.
//!
//! These types serialize to the canonical shape (plain keys, no Ruby-style
//! `:colon` keys) and deserialize from it, so the engine can store a template
//! as JSON and read it back with `serde_json::from_value::<TaskTemplate>`.
//! Deserializing through serde does NOT validate; use
//! [`TaskTemplate::parse`](crate::TaskTemplate::parse) for untrusted input.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default number of attempts (the first attempt counts).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default base delay for backoff, in milliseconds.
pub const DEFAULT_BACKOFF_BASE_MS: u64 = 1_000;
/// Default cap on the backoff delay, in milliseconds.
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 30_000;
/// Default step timeout, in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 30;
/// Largest accepted `max_attempts`.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;
/// Largest accepted backoff value (one day), in milliseconds.
pub const MAX_BACKOFF_LIMIT_MS: u64 = 86_400_000;
/// Largest accepted step timeout (one day), in seconds.
pub const MAX_TIMEOUT_SECONDS: u32 = 86_400;

/// A validated task template: a named, versioned DAG of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTemplate {
    /// Template name, `^[a-z][a-z0-9_]{0,63}$`.
    pub name: String,
    /// Namespace, `^[a-z][a-z0-9_]{0,39}$`.
    pub namespace_name: String,
    /// Semantic version `MAJOR.MINOR.PATCH` (no pre-release or build part).
    pub version: semver::Version,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema (dialect 2020-12) for the task's input context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// Steps in declaration order.
    pub steps: Vec<StepTemplate>,
    /// Per-environment overrides, keyed by `TASKER_ENV` value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, EnvironmentOverride>,
}

/// One step of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTemplate {
    /// Step name, unique within the template, `^[a-z][a-z0-9_]{0,63}$`.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What runs the step.
    pub handler: HandlerSpec,
    /// Names of the steps that must complete before this one.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Retry behaviour.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Per-attempt timeout in seconds.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u32,
}

fn default_timeout_seconds() -> u32 {
    DEFAULT_TIMEOUT_SECONDS
}

/// The handler a worker resolves to run a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandlerSpec {
    /// Name the worker looks up, e.g. `tests::step_one`.
    pub callable: String,
    /// Handler configuration; always a JSON object.
    #[serde(default = "empty_object")]
    pub initialization: Value,
}

pub(crate) fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// How the delay between attempts grows.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    /// `base * 2^(n-1)`.
    Exponential,
    /// `base * n`.
    Linear,
    /// No delay.
    None,
}

impl Backoff {
    /// The lowercase name used in templates.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Backoff::Exponential => "exponential",
            Backoff::Linear => "linear",
            Backoff::None => "none",
        }
    }

    /// Parses the lowercase name used in templates.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Backoff> {
        match name {
            "exponential" => Some(Backoff::Exponential),
            "linear" => Some(Backoff::Linear),
            "none" => Some(Backoff::None),
            _ => None,
        }
    }
}

/// Retry policy of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Whether a failed attempt may be retried at all.
    pub retryable: bool,
    /// Maximum number of attempts, counting the first one (1..=100).
    pub max_attempts: u32,
    /// Growth of the delay between attempts.
    pub backoff: Backoff,
    /// Base delay in milliseconds.
    pub backoff_base_ms: u64,
    /// Cap on the delay in milliseconds (>= `backoff_base_ms`).
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retryable: true,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::Exponential,
            backoff_base_ms: DEFAULT_BACKOFF_BASE_MS,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt n+1 after attempt n (1-based) failed: exponential
    /// `base*2^(n-1)`, linear `base*n`, none 0; capped at `max_backoff_ms`;
    /// saturating arithmetic, never overflow. `failed_attempt` 0 is treated as 1.
    #[must_use]
    pub fn backoff_ms(&self, failed_attempt: u32) -> u64 {
        let n = failed_attempt.max(1);
        let raw = match self.backoff {
            Backoff::None => 0,
            Backoff::Linear => self.backoff_base_ms.saturating_mul(u64::from(n)),
            Backoff::Exponential => {
                let factor = 1u64.checked_shl(n - 1).unwrap_or(u64::MAX);
                self.backoff_base_ms.saturating_mul(factor)
            }
        };
        raw.min(self.max_backoff_ms)
    }

    /// Applies the keys present in `o` over this policy.
    pub fn apply(&mut self, o: &RetryOverride) {
        if let Some(v) = o.retryable {
            self.retryable = v;
        }
        if let Some(v) = o.max_attempts {
            self.max_attempts = v;
        }
        if let Some(v) = o.backoff {
            self.backoff = v;
        }
        if let Some(v) = o.backoff_base_ms {
            self.backoff_base_ms = v;
        }
        if let Some(v) = o.max_backoff_ms {
            self.max_backoff_ms = v;
        }
    }
}

/// Overrides for one environment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EnvironmentOverride {
    /// Step overrides, each naming an existing step.
    #[serde(default)]
    pub steps: Vec<StepOverride>,
}

/// Override of one step's settings; `None` fields keep the step's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOverride {
    /// Name of the step to override.
    pub name: String,
    /// Handler override (only `initialization` can be replaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<HandlerOverride>,
    /// Retry keys to override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryOverride>,
    /// Replacement timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
}

/// Handler part of a [`StepOverride`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HandlerOverride {
    /// Replaces the step's `handler.initialization` when present (an object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<Value>,
}

/// Retry part of a [`StepOverride`]; each present key replaces the step's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RetryOverride {
    /// See [`RetryPolicy::retryable`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// See [`RetryPolicy::max_attempts`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// See [`RetryPolicy::backoff`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// See [`RetryPolicy::backoff_base_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    /// See [`RetryPolicy::max_backoff_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff_ms: Option<u64>,
}

impl StepOverride {
    /// Applies this override to `step` (whose name it is assumed to match).
    pub fn apply_to(&self, step: &mut StepTemplate) {
        if let Some(init) = self.handler.as_ref().and_then(|h| h.initialization.as_ref()) {
            step.handler.initialization = init.clone();
        }
        if let Some(retry) = &self.retry {
            step.retry.apply(retry);
        }
        if let Some(t) = self.timeout_seconds {
            step.timeout_seconds = t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff, base: u64, max: u64) -> RetryPolicy {
        RetryPolicy {
            backoff,
            backoff_base_ms: base,
            max_backoff_ms: max,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn exponential_backoff_doubles_from_the_base() {
        let p = policy(Backoff::Exponential, 100, 1_000_000);
        let delays: Vec<u64> = (1..=5).map(|n| p.backoff_ms(n)).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600]);
    }

    #[test]
    fn linear_backoff_grows_by_the_base() {
        let p = policy(Backoff::Linear, 250, 1_000_000);
        let delays: Vec<u64> = (1..=4).map(|n| p.backoff_ms(n)).collect();
        assert_eq!(delays, [250, 500, 750, 1000]);
    }

    #[test]
    fn no_backoff_is_always_zero() {
        let p = policy(Backoff::None, 250, 1_000);
        assert_eq!(p.backoff_ms(1), 0);
        assert_eq!(p.backoff_ms(u32::MAX), 0);
    }

    #[test]
    fn backoff_is_capped_at_max_backoff() {
        let p = policy(Backoff::Exponential, 1_000, 30_000);
        assert_eq!(p.backoff_ms(5), 16_000);
        assert_eq!(p.backoff_ms(6), 30_000);
        assert_eq!(policy(Backoff::Linear, 1_000, 2_500).backoff_ms(3), 2_500);
    }

    #[test]
    fn huge_attempt_numbers_saturate_instead_of_overflowing() {
        let p = policy(Backoff::Exponential, MAX_BACKOFF_LIMIT_MS, MAX_BACKOFF_LIMIT_MS);
        for n in [63, 64, 65, 1_000, u32::MAX] {
            assert_eq!(p.backoff_ms(n), MAX_BACKOFF_LIMIT_MS);
        }
        let uncapped = policy(Backoff::Exponential, 3, u64::MAX);
        assert_eq!(uncapped.backoff_ms(64), u64::MAX);
        assert_eq!(
            policy(Backoff::Linear, u64::MAX / 2, u64::MAX).backoff_ms(u32::MAX),
            u64::MAX
        );
    }

    #[test]
    fn attempt_zero_is_treated_as_the_first_attempt() {
        let p = policy(Backoff::Exponential, 100, 1_000);
        assert_eq!(p.backoff_ms(0), p.backoff_ms(1));
    }

    #[test]
    fn retry_override_replaces_only_present_keys() {
        let mut p = RetryPolicy::default();
        p.apply(&RetryOverride {
            max_attempts: Some(7),
            ..RetryOverride::default()
        });
        assert_eq!(
            p,
            RetryPolicy {
                max_attempts: 7,
                ..RetryPolicy::default()
            }
        );
    }
}
