//! Task and step states (spec §0.4) and the one table of transitions between them.
//!
//! Every status the engine reads or writes is a [`TaskStatus`] or [`StepStatus`]; they are stored
//! as their snake_case names in TEXT columns (sqlx maps them here and nowhere else), and the SQL
//! elsewhere binds them as parameters or takes them from [`sql_list`]. No other module spells a
//! status. A state change the table does not allow is refused ([`EngineError::IllegalTransition`])
//! before anything is written.
//!
//! ```text
//! task:  pending ──▶ in_progress ◀──▶ waiting_for_retry
//!           │            │  ▲                │
//!           │            ▼  │ operator retry  ▼
//!           │    complete   error ◀──────────┘
//!           │                 │
//!           └──▶ cancelled ◀──┴ (from every non-terminal state)    error ──▶ resolved_manually
//!
//! step:  pending ─▶ enqueued ─▶ in_progress ─▶ complete | error | waiting_for_retry | cancelled
//!            ▲        │              ▲  └─ (redelivery: in_progress again)        │
//!            └────────┘ task failing └────────────────────────────────────────────┘
//!        error ─▶ pending (operator retry) | resolved_manually
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef, Postgres};

use crate::EngineError;

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every state, in the order of spec §0.4.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case name the API and the database use.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // Stored as its name in a TEXT column: encoded and decoded as a `&str` is.
        impl sqlx::Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <&str as sqlx::Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as sqlx::Type<Postgres>>::compatible(ty)
            }
        }

        impl PgHasArrayType for $name {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }
        }

        impl<'q> sqlx::Encode<'q, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as sqlx::Encode<'q, Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as sqlx::Decode<'r, Postgres>>::decode(value)?.parse()?)
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownStatus;

            fn from_str(s: &str) -> Result<Self, UnknownStatus> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownStatus {
                        kind: stringify!($name),
                        given: s.to_string(),
                        allowed: $name::ALL.iter().map(|v| v.as_str()).collect(),
                    }),
                }
            }
        }
    };
}

pub(crate) use status_enum;

status_enum! {
    /// The state of a task (spec §0.4).
    TaskStatus {
        Pending => "pending",
        InProgress => "in_progress",
        WaitingForRetry => "waiting_for_retry",
        Complete => "complete",
        Error => "error",
        Cancelled => "cancelled",
        ResolvedManually => "resolved_manually",
    }
}

status_enum! {
    /// The state of a step (spec §0.4).
    StepStatus {
        Pending => "pending",
        Enqueued => "enqueued",
        InProgress => "in_progress",
        WaitingForRetry => "waiting_for_retry",
        Complete => "complete",
        Error => "error",
        Cancelled => "cancelled",
        ResolvedManually => "resolved_manually",
    }
}

/// A status name that is not one of the states.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a {kind} (one of {})", allowed.join(", "))]
pub struct UnknownStatus {
    pub kind: &'static str,
    pub given: String,
    pub allowed: Vec<&'static str>,
}

impl TaskStatus {
    /// Nothing changes after these without an operator (§0.4): the one definition of "terminal",
    /// served to clients as the `terminal` field of every task the API returns.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Complete | TaskStatus::Error | TaskStatus::Cancelled | TaskStatus::ResolvedManually
        )
    }

    /// States the recovery sweep looks at.
    pub const ACTIVE: &'static [TaskStatus] =
        &[TaskStatus::Pending, TaskStatus::InProgress, TaskStatus::WaitingForRetry];

    /// Whether the engine may move a task from `self` to `to`. Same-state writes are not
    /// transitions and never reach this table.
    pub const fn can_become(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        match (self, to) {
            // A worker claims the first step.
            (Pending, InProgress) => true,
            // Steps fail and retry, retries are claimed.
            (InProgress, WaitingForRetry) | (WaitingForRetry, InProgress) => true,
            // Every step complete (§0.9 rule 7).
            (InProgress, Complete) => true,
            // A step in error with nothing in flight (§0.9 rule 6); a vanished worker's last
            // attempt (WORKER_LOST) can end a task that was waiting for another step's retry.
            (InProgress, Error) | (WaitingForRetry, Error) => true,
            // Operator actions.
            (Pending | InProgress | WaitingForRetry, Cancelled) => true,
            (Error, InProgress) => true,
            (Error, ResolvedManually) => true,
            _ => false,
        }
    }
}

impl StepStatus {
    /// A step in one of these has not finished: it waits, is queued or runs.
    pub const UNFINISHED: &'static [StepStatus] = &[
        StepStatus::Pending,
        StepStatus::Enqueued,
        StepStatus::InProgress,
        StepStatus::WaitingForRetry,
    ];

    /// A step in one of these never runs again without an operator.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            StepStatus::Complete | StepStatus::Error | StepStatus::Cancelled | StepStatus::ResolvedManually
        )
    }

    /// Whether the engine may move a step from `self` to `to`. `in_progress → in_progress` is
    /// the one same-state transition: a redelivered message starts a new attempt.
    pub const fn can_become(self, to: StepStatus) -> bool {
        use StepStatus::*;
        match (self, to) {
            // Ready: its message is sent.
            (Pending, Enqueued) => true,
            // Claimed: a first attempt, a retry, or a redelivery after a lost worker.
            (Enqueued | WaitingForRetry | InProgress, InProgress) => true,
            // The attempt's outcome (§0.9 rules 2-4), or cancelled while it ran.
            (InProgress, Complete | Error | WaitingForRetry | Cancelled) => true,
            // Another step failed: what was queued but not claimed goes back (§0.9 rule 6).
            (Enqueued, Pending) => true,
            // Task cancelled: nothing that waits will run.
            (Pending | Enqueued | WaitingForRetry, Cancelled) => true,
            // Operator actions.
            (Error, Pending) | (Error, ResolvedManually) => true,
            _ => false,
        }
    }
}

/// Refuses a task transition the table does not allow.
pub(crate) fn check_task(from: TaskStatus, to: TaskStatus) -> Result<(), EngineError> {
    if from.can_become(to) {
        Ok(())
    } else {
        Err(EngineError::IllegalTransition(format!("task {from} -> {to}")))
    }
}

/// Refuses a step transition the table does not allow.
pub(crate) fn check_step(from: StepStatus, to: StepStatus) -> Result<(), EngineError> {
    if from.can_become(to) {
        Ok(())
    } else {
        Err(EngineError::IllegalTransition(format!("step {from} -> {to}")))
    }
}

/// `'a','b'` for an SQL `IN (...)` list in a statement text that must stay constant (a partial
/// index predicate can only be matched against constants).
pub(crate) fn sql_list<T: Copy + fmt::Display>(states: &[T]) -> String {
    states.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair, written out: a change to the table must change this list too.
    #[test]
    fn task_transition_table_over_every_pair() {
        use TaskStatus::*;
        let allowed = [
            (Pending, InProgress),
            (Pending, Cancelled),
            (InProgress, WaitingForRetry),
            (InProgress, Complete),
            (InProgress, Error),
            (InProgress, Cancelled),
            (WaitingForRetry, InProgress),
            (WaitingForRetry, Error),
            (WaitingForRetry, Cancelled),
            (Error, InProgress),
            (Error, ResolvedManually),
        ];
        for &from in TaskStatus::ALL {
            for &to in TaskStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "task {from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn step_transition_table_over_every_pair() {
        use StepStatus::*;
        let allowed = [
            (Pending, Enqueued),
            (Pending, Cancelled),
            (Enqueued, InProgress),
            (Enqueued, Pending),
            (Enqueued, Cancelled),
            (InProgress, InProgress),
            (InProgress, Complete),
            (InProgress, Error),
            (InProgress, WaitingForRetry),
            (InProgress, Cancelled),
            (WaitingForRetry, InProgress),
            (WaitingForRetry, Cancelled),
            (Error, Pending),
            (Error, ResolvedManually),
        ];
        for &from in StepStatus::ALL {
            for &to in StepStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "step {from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn terminal_states_leave_only_through_operator_actions() {
        for &from in TaskStatus::ALL.iter().filter(|s| s.is_terminal()) {
            for &to in TaskStatus::ALL {
                if from.can_become(to) {
                    assert_eq!(from, TaskStatus::Error, "{from} -> {to}");
                }
            }
        }
        assert_eq!(
            TaskStatus::ALL.iter().filter(|s| s.is_terminal()).count(),
            4,
            "§0.4 lists four terminal task states"
        );
        assert_eq!(StepStatus::ALL.iter().filter(|s| s.is_terminal()).count(), 4);
    }

    #[test]
    fn active_and_unfinished_are_exactly_the_non_terminal_states() {
        let active: Vec<_> = TaskStatus::ALL.iter().filter(|s| !s.is_terminal()).copied().collect();
        assert_eq!(TaskStatus::ACTIVE, &active[..]);
        let unfinished: Vec<_> = StepStatus::ALL.iter().filter(|s| !s.is_terminal()).copied().collect();
        assert_eq!(StepStatus::UNFINISHED, &unfinished[..]);
    }

    #[test]
    fn names_round_trip_through_text_serde_and_display() {
        for &s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
            assert_eq!(s.to_string(), s.as_str());
        }
        for &s in StepStatus::ALL {
            assert_eq!(s.as_str().parse::<StepStatus>().unwrap(), s);
            assert_eq!(
                serde_json::from_value::<StepStatus>(serde_json::json!(s.as_str())).unwrap(),
                s
            );
        }
        let e = "done".parse::<TaskStatus>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"done\" is not a TaskStatus (one of pending, in_progress, waiting_for_retry, complete, error, cancelled, resolved_manually)"
        );
        assert_eq!(
            sql_list(TaskStatus::ACTIVE),
            "'pending','in_progress','waiting_for_retry'"
        );
    }

    #[test]
    fn illegal_transitions_are_refused_with_both_states_named() {
        let e = check_task(TaskStatus::Complete, TaskStatus::InProgress).unwrap_err();
        assert_eq!(e.to_string(), "illegal transition: task complete -> in_progress");
        assert!(check_step(StepStatus::Pending, StepStatus::Complete).is_err());
        assert!(check_step(StepStatus::InProgress, StepStatus::InProgress).is_ok());
    }
}
