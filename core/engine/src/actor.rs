//! Who did what: the actor of an API action or of a task's creation, and the audit of a
//! task's operator actions read back from its transitions.
//!
//! **Invariant:** a transaction that acts for someone names them first ([`act_as`]); every audit
//! row it writes then carries that actor (the column's default reads the setting), and the
//! setting ends with the transaction.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::EngineError;

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A request authenticated by the API token of this name.
    Token { name: String },
    /// The handler of a step of this task (a delegated task's creator).
    Task { task_uuid: Uuid },
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Token { name } => write!(f, "token:{name}"),
            Actor::Task { task_uuid } => write!(f, "task:{task_uuid}"),
        }
    }
}

impl FromStr for Actor {
    type Err = EngineError;

    /// The stored form, as [`fmt::Display`] writes it.
    fn from_str(s: &str) -> Result<Actor, EngineError> {
        let corrupt = || EngineError::Corrupt(format!("stored actor {s:?}"));
        match s.split_once(':').ok_or_else(corrupt)? {
            ("token", name) if !name.is_empty() => Ok(Actor::Token { name: name.to_string() }),
            ("task", uuid) => Ok(Actor::Task {
                task_uuid: uuid.parse().map_err(|_| corrupt())?,
            }),
            _ => Err(corrupt()),
        }
    }
}

/// An optional stored actor.
pub(crate) fn actor_of(stored: Option<String>) -> Result<Option<Actor>, EngineError> {
    stored.as_deref().map(str::parse).transpose()
}

/// Names the actor of every audit row this transaction writes from now on (nothing when
/// `None`: the rows have no actor).
pub(crate) async fn act_as(conn: &mut PgConnection, actor: Option<&Actor>) -> Result<(), sqlx::Error> {
    if let Some(actor) = actor {
        sqlx::query("SELECT set_config('tasker.actor', $1, true)")
            .bind(actor.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// An operator action on a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Cancel,
    Retry,
}

/// One operator action taken on a task, from its audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskAction {
    pub action: ActionKind,
    /// The step retried; null for a cancel.
    #[schema(required)]
    pub step_name: Option<String>,
    /// Who acted; null when the server ran without authentication.
    #[schema(required)]
    pub actor: Option<Actor>,
    pub at: DateTime<Utc>,
}

/// The operator actions of the task `t` as one JSON array, oldest first, read from
/// `transitions` (a relation with the columns of `tasker_transitions`). A cancel is the task's
/// own move to `cancelled`; a retry is a step's move marked `manual_retry` (the steps a cancel
/// moves, and the task a retry resumes, are its effects). The predicate is written out as the
/// partial index `tasker_transitions_actions` states it, so that the index serves it.
pub(crate) fn task_actions_json(transitions: &str) -> String {
    format!(
        "COALESCE((SELECT json_agg(json_build_object('step_name', s.name, 'actor', tr.actor, 'at', tr.created_at)
                                   ORDER BY tr.id)
                     FROM {transitions} tr LEFT JOIN tasker_steps s ON s.step_uuid = tr.step_uuid
                    WHERE tr.task_uuid = t.task_uuid
                      AND ((tr.step_uuid IS NULL AND tr.to_state = '{cancelled}')
                           OR tr.detail->>'reason' = 'manual_retry')), '[]')",
        cancelled = crate::state::TaskStatus::Cancelled
    )
}

/// Reads back what [`task_actions_json`] wrote.
pub(crate) fn actions_from_json(actions: serde_json::Value) -> Result<Vec<TaskAction>, EngineError> {
    #[derive(Deserialize)]
    struct Row {
        step_name: Option<String>,
        actor: Option<String>,
        at: DateTime<Utc>,
    }
    let rows: Vec<Row> =
        serde_json::from_value(actions).map_err(|e| EngineError::Corrupt(format!("task actions: {e}")))?;
    rows.into_iter()
        .map(|r| {
            Ok(TaskAction {
                action: if r.step_name.is_some() {
                    ActionKind::Retry
                } else {
                    ActionKind::Cancel
                },
                step_name: r.step_name,
                actor: actor_of(r.actor)?,
                at: r.at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_are_stored_as_kind_and_name_and_read_back() {
        let token = Actor::Token {
            name: "ci@payments".into(),
        };
        let task = Actor::Task {
            task_uuid: Uuid::parse_str("0193a1b2-0000-7000-8000-00000000beef").unwrap(),
        };
        assert_eq!(token.to_string(), "token:ci@payments");
        assert_eq!(task.to_string(), "task:0193a1b2-0000-7000-8000-00000000beef");
        for a in [token, task] {
            assert_eq!(a.to_string().parse::<Actor>().unwrap(), a);
        }
        for bad in ["", "token:", "task:nope", "user:x", "token"] {
            assert!(bad.parse::<Actor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn actors_serialise_with_their_kind() {
        let json = serde_json::to_value(Actor::Token { name: "ops".into() }).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "token", "name": "ops"}));
    }
}
