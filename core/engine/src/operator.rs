//! Operator actions: cancel a task, give a failed step a fresh set of attempts.

use serde_json::json;
use uuid::Uuid;

use crate::actor::{act_as, Actor};
use crate::locked::{lock_task, set_step_status, set_task_status, step_states, LockedTask};
use crate::reconcile::reconcile_locked;
use crate::state::{StepStatus, TaskStatus};
use crate::{queue, Engine, EngineError};

async fn locked(tx: &mut sqlx::PgConnection, task_uuid: Uuid) -> Result<LockedTask, EngineError> {
    lock_task(tx, task_uuid)
        .await?
        .ok_or(EngineError::TaskNotFound(task_uuid))
}

impl Engine {
    /// Cancels a task: steps not yet running become `cancelled`; running attempts finish and are
    /// recorded as `cancelled`.
    /// `actor` is recorded on every audit row of the action.
    pub async fn cancel_task(&self, task_uuid: Uuid, actor: Option<&Actor>) -> Result<(), EngineError> {
        let mut tx = self.pool.begin().await?;
        act_as(&mut tx, actor).await?;
        let mut task = locked(&mut tx, task_uuid).await?;
        if !task.status.can_become(TaskStatus::Cancelled) {
            return Err(EngineError::Conflict(format!(
                "task {task_uuid} is already {} and cannot be cancelled",
                task.status
            )));
        }
        let ns = task.namespace.clone();
        for mut step in step_states(&mut tx, task_uuid).await? {
            if step.status.can_become(StepStatus::Cancelled) && step.status != StepStatus::InProgress {
                if let Some(m) = step.msg_id {
                    queue::delete(&mut tx, &ns, &[m]).await?;
                }
                set_step_status(&mut tx, task_uuid, &mut step, StepStatus::Cancelled, None, None).await?;
            }
        }
        set_task_status(&mut tx, &mut task, TaskStatus::Cancelled).await?;
        tx.commit().await?;
        self.publish(task.observed);
        Ok(())
    }

    /// Operator action: gives a step in `error` a fresh set of attempts. When no other step is in
    /// error, the task resumes at once.
    /// `actor` is recorded on every audit row of the action.
    pub async fn retry_step(&self, task_uuid: Uuid, step_name: &str, actor: Option<&Actor>) -> Result<(), EngineError> {
        let mut tx = self.pool.begin().await?;
        act_as(&mut tx, actor).await?;
        let mut task = locked(&mut tx, task_uuid).await?;
        if task.status.is_terminal() && task.status != TaskStatus::Error {
            return Err(EngineError::Conflict(format!(
                "task {task_uuid} is {}; its steps cannot be retried",
                task.status
            )));
        }
        let mut steps = step_states(&mut tx, task_uuid).await?;
        let step = steps
            .iter_mut()
            .find(|s| s.name == step_name)
            .ok_or_else(|| EngineError::StepNotFound {
                task_uuid,
                step_name: step_name.to_string(),
            })?;
        if step.status != StepStatus::Error {
            return Err(EngineError::Conflict(format!(
                "step {step_name} is {}; only a step in error can be retried",
                step.status
            )));
        }
        sqlx::query(
            "UPDATE tasker_steps SET attempts = 0, completed_at = NULL, next_retry_at = NULL WHERE step_uuid = $1",
        )
        .bind(step.step_uuid)
        .execute(&mut *tx)
        .await?;
        set_step_status(
            &mut tx,
            task_uuid,
            step,
            StepStatus::Pending,
            None,
            Some(json!({"reason": "manual_retry"})),
        )
        .await?;
        step.attempts = 0;
        if task.status == TaskStatus::Error && !steps.iter().any(|s| s.status == StepStatus::Error) {
            set_task_status(&mut tx, &mut task, TaskStatus::InProgress).await?;
        }
        reconcile_locked(&mut tx, &mut task).await?;
        tx.commit().await?;
        self.publish(task.observed);
        Ok(())
    }
}
