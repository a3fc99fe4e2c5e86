//! The invariants of ARCHITECTURE.md: one task lock, results only under their own claim, no
//! limbo, a lost worker's attempt is redelivered or ends as WORKER_LOST, an append-only audit
//! trail, and every state change along the transition table.

use std::time::Duration;

use serde_json::json;
use tasker_engine::{CompleteOutcome, EventName, StepStatus, TaskStatus};
use tasker_templates::Backoff;

use crate::support::*;

#[tokio::test]
async fn handlers_see_every_upstream_result_and_their_own_attempt() {
    let engine = engine(&[LINEAR], 1.0).await;
    let uuid = create(&engine, "linear", json!({"n": 7})).await;
    let a = claim(&engine).await.remove(0);
    assert_eq!(a.context.task_uuid, uuid);
    assert_eq!(a.context.input, json!({"n": 7}));
    assert!(a.context.dependency_results.is_empty());
    complete(&engine, &a.claim, success(json!({"a": 1}))).await;
    let b = claim(&engine).await.remove(0);
    complete(&engine, &b.claim, success(json!({"b": 2}))).await;
    let c = claim(&engine).await.remove(0);
    assert_eq!(c.context.dependency_results.len(), 2, "c reads a through b");
    assert_eq!(c.context.dependency_results["a"], json!({"a": 1}));
    assert_eq!(c.context.dependency_results["b"], json!({"b": 2}));
    assert_eq!(
        (c.context.attempt, c.context.max_attempts, c.callable.as_str()),
        (1, 3, "c")
    );
}

#[tokio::test]
async fn one_task_lock_serialises_results_of_parallel_steps() {
    let engine = engine(&[DIAMOND], 1.0).await;
    for _ in 0..15 {
        let uuid = create(&engine, "diamond", json!({})).await;
        let (left, right) = running_branches(&engine).await;
        // Both results race; the task lock orders them, so exactly one of them sees both
        // branches complete and enqueues end.
        let (lo, ro) = (success(json!({"l": 1})), success(json!({"r": 1})));
        let (l, r) = tokio::join!(
            engine.complete_attempt(&left.claim, &lo),
            engine.complete_attempt(&right.claim, &ro),
        );
        assert!(matches!(l.unwrap(), CompleteOutcome::Applied { .. }));
        assert!(matches!(r.unwrap(), CompleteOutcome::Applied { .. }));
        let rows = transitions(&engine, uuid).await;
        let end_enqueued = rows
            .iter()
            .filter(|t| t.step.as_deref() == Some("end") && t.to == "enqueued")
            .count();
        assert_eq!(end_enqueued, 1);
        let end = claim(&engine).await.remove(0);
        assert_eq!(end.context.step_name, "end");
        assert_eq!(end.context.dependency_results.len(), 3);
        complete(&engine, &end.claim, success(json!({}))).await;
        assert_eq!(task(&engine, uuid).await.status, TaskStatus::Complete);
    }
    assert_transitions_follow_the_table(&engine).await;
}

#[tokio::test]
async fn a_result_is_applied_only_under_its_own_claim() {
    let engine = engine(&[LINEAR], 1.0).await;
    let uuid = create(&engine, "linear", ctx()).await;
    // A zero visibility timeout: the message is visible again at once, as after a lost worker.
    let first = claim_vt(&engine, 0).await.remove(0);
    let second = claim(&engine).await.remove(0);
    assert_eq!(second.claim.step_uuid, first.claim.step_uuid);
    assert_eq!(
        (first.claim.attempt, second.claim.attempt),
        (1, 2),
        "a redelivery is a new attempt"
    );
    assert_eq!(
        engine
            .complete_attempt(&first.claim, &success(json!({"late": true})))
            .await
            .unwrap(),
        CompleteOutcome::Stale,
        "the first worker's late result is discarded"
    );
    let (s, _) = complete(&engine, &second.claim, success(json!({"v": 2}))).await;
    assert_eq!(s, StepStatus::Complete);
    assert_eq!(
        engine
            .complete_attempt(&second.claim, &success(json!({"again": true})))
            .await
            .unwrap(),
        CompleteOutcome::Stale,
        "a step is never completed twice"
    );
    let view = task(&engine, uuid).await;
    assert_eq!(step(&view, "a").result, Some(json!({"v": 2})));
    let completions = transitions(&engine, uuid)
        .await
        .into_iter()
        .filter(|t| t.step.as_deref() == Some("a") && t.to == "complete")
        .count();
    assert_eq!(completions, 1);
    let redelivery = transitions(&engine, uuid)
        .await
        .into_iter()
        .find(|t| t.step.as_deref() == Some("a") && t.from.as_deref() == Some("in_progress") && t.to == "in_progress")
        .expect("the redelivery is in the audit trail");
    assert_eq!(redelivery.detail, Some(json!({"redelivered": true})));
}

#[tokio::test]
async fn a_lost_worker_on_the_last_attempt_fails_the_step_as_worker_lost() {
    let engine = engine(&[ONCE], 1.0).await;
    let uuid = create(&engine, "once", json!({})).await;
    let lost = claim_vt(&engine, 0).await.remove(0);
    assert!(claim(&engine).await.is_empty(), "no attempt is left to hand out");
    let view = task(&engine, uuid).await;
    assert_eq!(view.status, TaskStatus::Error);
    let error = step(&view, "only").error.clone().unwrap();
    assert_eq!((error.error_code.as_str(), error.retryable), ("WORKER_LOST", false));
    assert_eq!(
        error.message,
        "The worker running attempt 1 of step only stopped responding"
    );
    assert_eq!(
        engine.complete_attempt(&lost.claim, &success(json!({}))).await.unwrap(),
        CompleteOutcome::Stale
    );
}

/// A result that leaves its task's status as it is touches the task's `updated_at` (what the
/// recovery sweep reads) only when that is a second old: results in quicker succession write no
/// new version of the task's row.
#[tokio::test]
async fn a_result_touches_its_task_at_most_once_a_second() {
    let engine = engine(&[LINEAR], 1.0).await;
    let uuid = create(&engine, "linear", json!({"n": 1})).await;
    let row = || async {
        sqlx::query_as::<_, (String, chrono::DateTime<chrono::Utc>)>(
            "SELECT xmin::text, updated_at FROM tasker_tasks WHERE task_uuid = $1",
        )
        .bind(uuid)
        .fetch_one(engine.pool())
        .await
        .unwrap()
    };
    let a = claim(&engine).await.remove(0);
    let claimed = row().await;
    complete(&engine, &a.claim, success(json!({}))).await;
    assert_eq!(
        row().await,
        claimed,
        "touched less than a second ago: the row is not written"
    );

    // Last touched two seconds ago: the next result touches it.
    sqlx::query("UPDATE tasker_tasks SET updated_at = updated_at - interval '2 seconds' WHERE task_uuid = $1")
        .bind(uuid)
        .execute(engine.pool())
        .await
        .unwrap();
    let stale = row().await;
    let b = claim(&engine).await.remove(0);
    assert_eq!(row().await, stale, "a later step's claim leaves the task as it is");
    complete(&engine, &b.claim, success(json!({}))).await;
    let touched = row().await;
    assert_ne!(touched.0, stale.0);
    assert!(
        touched.1 > stale.1 + chrono::Duration::milliseconds(1500),
        "{touched:?} after {stale:?}"
    );
    assert!(engine.idle_active_tasks(1_000, 10).await.unwrap().is_empty());
    assert_eq!(task(&engine, uuid).await.status, TaskStatus::InProgress);
}

#[tokio::test]
async fn reconciling_a_healthy_task_changes_nothing() {
    let engine = engine(&[DIAMOND], 1.0).await;
    let uuid = create(&engine, "diamond", json!({})).await;
    let before = transitions(&engine, uuid).await;
    for _ in 0..3 {
        engine.reconcile_task(uuid).await.unwrap();
    }
    assert_eq!(
        transitions(&engine, uuid).await,
        before,
        "no duplicate enqueue, no state change"
    );
    assert_eq!(queued(&engine).await, 1);
    assert!(engine.idle_active_tasks(0, 10).await.unwrap().contains(&uuid));
    assert!(engine.idle_active_tasks(60_000, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn nothing_waits_in_limbo_after_an_operator_retry_of_another_step() {
    // right fails for good while left waits for a retry: left's message is withdrawn and the
    // task ends. After the operator retries right, left gets its message back.
    let engine = engine(&[DIAMOND], 0.001).await;
    let uuid = create(&engine, "diamond", json!({})).await;
    let (left, right) = running_branches(&engine).await;
    complete(&engine, &left.claim, retryable("FLAKY", None)).await;
    let (_, t) = complete(&engine, &right.claim, permanent("BROKEN")).await;
    assert_eq!(t, TaskStatus::Error);
    assert_eq!(queued(&engine).await, 0);
    engine.retry_step(uuid, "right", None).await.unwrap();
    assert_eq!(queued(&engine).await, 2, "right enqueued, left's retry re-sent");
    let mut both = claim_all_when_due(&engine, &["left", "right"], Duration::from_secs(2)).await;
    let (left, right) = (both.remove("left").unwrap(), both.remove("right").unwrap());
    assert_eq!((left.claim.attempt, right.claim.attempt), (2, 1));
    complete(&engine, &left.claim, success(json!({}))).await;
    complete(&engine, &right.claim, success(json!({}))).await;
    let end = claim_when_due(&engine, "end", Duration::from_secs(2)).await;
    let (_, t) = complete(&engine, &end.claim, success(json!({}))).await;
    assert_eq!(t, TaskStatus::Complete);
    assert_transitions_follow_the_table(&engine).await;
}

#[tokio::test]
async fn the_audit_trail_refuses_update_and_delete() {
    let engine = engine(&[ONCE], 1.0).await;
    let uuid = create(&engine, "once", json!({})).await;
    assert_eq!(transitions(&engine, uuid).await.len(), 2, "task created, step enqueued");
    for sql in [
        "UPDATE tasker_transitions SET to_state = 'complete' WHERE task_uuid = $1",
        "DELETE FROM tasker_transitions WHERE task_uuid = $1",
    ] {
        let e = sqlx::query(sql).bind(uuid).execute(engine.pool()).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
    }
    assert_eq!(transitions(&engine, uuid).await.len(), 2);
}

#[tokio::test]
async fn every_state_change_has_its_audit_row() {
    let engine = engine(&[LINEAR], 0.001).await;
    let uuid = create(&engine, "linear", ctx()).await;
    let a = claim(&engine).await.remove(0);
    complete(&engine, &a.claim, retryable("FLAKY", Some(0))).await;
    let a = claim_when_due(&engine, "a", Duration::from_secs(2)).await;
    complete(&engine, &a.claim, permanent("BROKEN")).await;
    // A claim writes the step's and the task's rows in one statement, in no defined order:
    // each sequence is compared on its own.
    let got = transitions(&engine, uuid).await;
    let of = |step: bool| -> Vec<(Option<String>, &str, Option<i32>)> {
        got.iter()
            .filter(|t| t.step.is_some() == step)
            .map(|t| (t.from.clone(), t.to.as_str(), t.attempt))
            .collect()
    };
    let s = |from: Option<&str>, to, attempt| (from.map(str::to_string), to, attempt);
    assert_eq!(
        of(true),
        [
            s(Some("pending"), "enqueued", Some(0)),
            s(Some("enqueued"), "in_progress", Some(1)),
            s(Some("in_progress"), "waiting_for_retry", Some(1)),
            s(Some("waiting_for_retry"), "in_progress", Some(2)),
            s(Some("in_progress"), "error", Some(2)),
        ]
    );
    assert_eq!(
        of(false),
        [
            s(None, "pending", None),
            s(Some("pending"), "in_progress", None),
            s(Some("in_progress"), "waiting_for_retry", None),
            s(Some("waiting_for_retry"), "in_progress", None),
            s(Some("in_progress"), "error", None),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_racing_results_and_redeliveries_never_deadlock() {
    // Four claimers whose claims expire at once (visibility 0 s), so every message is claimed
    // again while an earlier claimer is submitting its result: the result deletes a message a
    // claim holds, the claim wants the task the result holds; batches of results lock several
    // tasks. Every call's error is counted.
    let engine = engine(&[DIAMOND], 0.001).await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        tasks.push(create(&engine, "diamond", json!({})).await);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut loops = Vec::new();
    for claimer in 0..4 {
        let engine = engine.clone();
        let batches = claimer % 2 == 0;
        loops.push(tokio::spawn(async move {
            let (mut deadlocks, mut other, mut applied, mut stale) = (0u32, Vec::new(), 0u32, 0u32);
            while std::time::Instant::now() < deadline {
                let claimed = match engine.claim_steps(NS, 4, 0).await {
                    Ok(c) => c,
                    Err(e) => {
                        if e.to_string().contains("deadlock") {
                            deadlocks += 1;
                        } else {
                            other.push(e.to_string());
                        }
                        continue;
                    }
                };
                if claimed.is_empty() {
                    if unfinished_tasks(&engine).await == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                // Half the claimers submit their results one by one, half as one batch (given
                // in reverse, so batches racing each other name their tasks in any order).
                let submitted: Vec<Result<CompleteOutcome, _>> = if batches {
                    let results: Vec<_> = claimed
                        .iter()
                        .rev()
                        .map(|s| (s.claim.clone(), success(json!({"ok": true}))))
                        .collect();
                    match engine.complete_attempts(&results).await {
                        Ok(done) => done.into_iter().map(Ok).collect(),
                        Err(e) => vec![Err(e)],
                    }
                } else {
                    let mut done = Vec::new();
                    for step in &claimed {
                        done.push(
                            engine
                                .complete_attempt(&step.claim, &success(json!({"ok": true})))
                                .await,
                        );
                    }
                    done
                };
                for result in submitted {
                    match result {
                        Ok(CompleteOutcome::Applied { .. }) => applied += 1,
                        Ok(CompleteOutcome::Stale) => stale += 1,
                        Err(e) if e.to_string().contains("deadlock") => deadlocks += 1,
                        Err(e) => other.push(e.to_string()),
                    }
                }
            }
            (deadlocks, other, applied, stale)
        }));
    }
    let (mut deadlocks, mut applied, mut stale) = (0, 0, 0);
    for l in loops {
        let (d, other, a, s) = l.await.unwrap();
        assert!(other.is_empty(), "unexpected errors: {other:?}");
        deadlocks += d;
        applied += a;
        stale += s;
    }
    assert_eq!(
        deadlocks, 0,
        "deadlocks detected ({applied} results applied, {stale} stale)"
    );
    for uuid in &tasks {
        let view = task(&engine, *uuid).await;
        assert!(view.terminal, "task {uuid} is still {}", view.status);
        // Each step completed once, or ran out of attempts to redeliveries (WORKER_LOST).
        for s in &view.steps {
            let completions = transitions(&engine, *uuid)
                .await
                .into_iter()
                .filter(|t| t.step.as_deref() == Some(s.name.as_str()) && t.to == "complete")
                .count();
            assert!(completions <= 1, "{} completed {completions} times", s.name);
        }
    }
    assert!(stale > 0, "the race never happened: no result was stale");
    assert_transitions_follow_the_table(&engine).await;
}

#[tokio::test]
async fn a_claim_skips_a_task_another_transaction_holds_and_releases_its_message() {
    let engine = engine(&[LINEAR], 1.0).await;
    let held = create(&engine, "linear", json!({"n": 1})).await;
    let free = create(&engine, "linear", json!({"n": 2})).await;
    let holder = hold_task_lock(&engine, held).await;
    // One claim reads both messages; it takes the free task and never waits for the held one.
    let got = tokio::time::timeout(Duration::from_secs(5), engine.claim_steps(NS, 10, 30))
        .await
        .expect("a claim never waits for a lock")
        .unwrap();
    assert_eq!(got.iter().map(|s| s.claim.task_uuid).collect::<Vec<_>>(), vec![free]);
    holder.rollback().await.unwrap();
    // The held task's message was made visible again at once, not after the visibility timeout.
    let again = engine.claim_steps(NS, 10, 30).await.unwrap();
    assert_eq!(
        again
            .iter()
            .map(|s| (s.claim.task_uuid, s.context.attempt))
            .collect::<Vec<_>>(),
        vec![(held, 1)]
    );
}

#[tokio::test]
async fn the_schema_allows_exactly_the_words_of_the_state_types() {
    let engine = engine(&[ONCE], 1.0).await;
    let words = |enum_type: &'static str| {
        let pool = engine.pool().clone();
        async move {
            sqlx::query_scalar::<_, Vec<String>>(&format!("SELECT enum_range(NULL::{enum_type})::text[]"))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let tasks: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
    let steps: Vec<&str> = StepStatus::ALL.iter().map(|s| s.as_str()).collect();
    let events: Vec<&str> = EventName::ALL.iter().map(|s| s.as_str()).collect();
    let backoffs: Vec<&str> = [Backoff::Exponential, Backoff::Linear, Backoff::None]
        .iter()
        .map(|b| b.as_str())
        .collect();
    assert_eq!(words("tasker_task_status").await, tasks);
    assert_eq!(words("tasker_step_status").await, steps);
    assert_eq!(words("tasker_event_name").await, events);
    assert_eq!(words("tasker_backoff").await, backoffs);
    // A word outside a vocabulary is refused by the column's check, whoever writes it.
    let uuid = create(&engine, "once", json!({})).await;
    let status = || async {
        sqlx::query_scalar::<_, String>("SELECT status FROM tasker_tasks WHERE task_uuid = $1")
            .bind(uuid)
            .fetch_one(engine.pool())
            .await
            .unwrap()
    };
    let before = status().await;
    for sql in [
        "UPDATE tasker_tasks SET status = 'finished' WHERE task_uuid = $1",
        "UPDATE tasker_steps SET status = 'finished' WHERE task_uuid = $1",
        "UPDATE tasker_steps SET backoff = 'random' WHERE task_uuid = $1",
        "UPDATE tasker_events SET event_name = 'task.finished' WHERE task_uuid = $1",
    ] {
        let e = sqlx::query(sql).bind(uuid).execute(engine.pool()).await.unwrap_err();
        let db = e.as_database_error().expect("refused by the database");
        assert_eq!(db.code().as_deref(), Some("22P02"), "{sql}: {e}");
        assert!(
            db.message().contains("invalid input value for enum tasker_"),
            "{sql}: {e}"
        );
    }
    assert_eq!(status().await, before);
}

/// Columns every step writes (the step's claim, attempt and result; its task's `updated_at`,
/// at most once a second). None may be indexed, so those writes stay heap-only (HOT) and write
/// no index entry.
#[tokio::test]
async fn no_column_written_for_every_step_is_indexed() {
    let engine = engine(&[LINEAR], 1.0).await;
    let per_step = [
        ("tasker_steps", "status"),
        ("tasker_steps", "attempts"),
        ("tasker_steps", "msg_id"),
        ("tasker_steps", "claim_read_ct"),
        ("tasker_steps", "started_at"),
        ("tasker_steps", "completed_at"),
        ("tasker_steps", "next_retry_at"),
        ("tasker_steps", "result"),
        ("tasker_steps", "metadata"),
        ("tasker_steps", "error"),
        ("tasker_tasks", "updated_at"),
    ];
    // Key columns, expression and predicate columns alike (pg_get_indexdef spells them all).
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_indexdef(i.indexrelid)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
          WHERE c.relname IN ('tasker_steps', 'tasker_tasks')",
    )
    .fetch_all(engine.pool())
    .await
    .unwrap();
    for (table, column) in per_step {
        for (t, def) in &indexes {
            let words: Vec<&str> = def.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
            assert!(
                t != table || !words.contains(&column),
                "{table}.{column} is written for every step but indexed: {def}"
            );
        }
    }
    // Room on each page for the next versions of a row.
    let fillfactors: Vec<(String, Option<Vec<String>>)> = sqlx::query_as(
        "SELECT relname::text, reloptions FROM pg_class WHERE relname IN ('tasker_steps', 'tasker_tasks') ORDER BY 1",
    )
    .fetch_all(engine.pool())
    .await
    .unwrap();
    for (table, options) in fillfactors {
        let options = options.unwrap_or_default();
        assert!(
            options.iter().any(|o| o.starts_with("fillfactor=")),
            "{table} has no fillfactor: {options:?}"
        );
    }
}

#[tokio::test]
async fn a_batch_of_results_applies_each_as_alone_and_skips_a_stale_or_repeated_one() {
    let engine = engine(&[DIAMOND, LINEAR], 1.0).await;
    let diamond = create(&engine, "diamond", json!({})).await;
    let linear = create(&engine, "linear", json!({"n": 1})).await;
    let mut first = by_name(claim(&engine).await);
    let (start, a) = (first.remove("start").unwrap(), first.remove("a").unwrap());
    complete(&engine, &start.claim, success(json!({}))).await;
    let mut branches = by_name(claim(&engine).await);
    let (left, right) = (branches.remove("left").unwrap(), branches.remove("right").unwrap());
    // A claim that is no longer current: its step was redelivered under a later read.
    let mut stale = a.claim.clone();
    stale.read_ct -= 1;
    let done = engine
        .complete_attempts(&[
            (right.claim.clone(), success(json!({"r": 1}))),
            (stale, success(json!({"old": true}))),
            (a.claim.clone(), success(json!({"a": 1}))),
            (left.claim.clone(), success(json!({"l": 1}))),
            // The same attempt again, in the same batch: the first result counts.
            (a.claim.clone(), success(json!({"a": 2}))),
        ])
        .await
        .unwrap();
    let applied = |s: &CompleteOutcome| {
        matches!(
            s,
            CompleteOutcome::Applied {
                step_status: StepStatus::Complete,
                ..
            }
        )
    };
    assert!(applied(&done[0]) && applied(&done[2]) && applied(&done[3]), "{done:?}");
    assert_eq!(done[1], CompleteOutcome::Stale);
    assert_eq!(done[4], CompleteOutcome::Stale, "a second result for one attempt");
    // Both branches of the diamond ended in one transaction: `end` was enqueued once.
    let end_enqueued = transitions(&engine, diamond)
        .await
        .iter()
        .filter(|t| t.step.as_deref() == Some("end") && t.to == "enqueued")
        .count();
    assert_eq!(end_enqueued, 1);
    let next = by_name(claim(&engine).await);
    assert_eq!(next["end"].context.dependency_results.len(), 3);
    assert_eq!(
        next["b"].context.dependency_results["a"],
        json!({"a": 1}),
        "neither the stale result nor the second one was applied"
    );
    assert_eq!(task(&engine, linear).await.status, TaskStatus::InProgress);
    assert_transitions_follow_the_table(&engine).await;
}

/// A retry and an end of two steps of one task, recorded in one transaction: the retry is
/// scheduled, the other step ends, and the task is reconciled once with both (rule 6: a step in
/// error withdraws the retry's message and the task fails when nothing runs).
#[tokio::test]
async fn a_batch_with_a_retry_and_an_error_of_one_task_reconciles_both() {
    let engine = engine(&[DIAMOND], 1.0).await;
    let diamond = create(&engine, "diamond", json!({})).await;
    let (left, right) = running_branches(&engine).await;
    let done = engine
        .complete_attempts(&[
            (left.claim.clone(), retryable("FLAKY", None)),
            (right.claim.clone(), permanent("DECLINED")),
        ])
        .await
        .unwrap();
    let steps: Vec<_> = done
        .iter()
        .map(|d| match d {
            CompleteOutcome::Applied {
                step_status,
                task_status,
            } => (*step_status, *task_status),
            CompleteOutcome::Stale => panic!("{done:?}"),
        })
        .collect();
    assert_eq!(
        steps,
        [
            (StepStatus::WaitingForRetry, TaskStatus::Error),
            (StepStatus::Error, TaskStatus::Error)
        ]
    );
    let view = task(&engine, diamond).await;
    assert_eq!(
        statuses(&view),
        [
            ("start", StepStatus::Complete),
            ("left", StepStatus::WaitingForRetry),
            ("right", StepStatus::Error),
            ("end", StepStatus::Pending)
        ]
    );
    assert_eq!(queued(&engine).await, 0, "the retry's message was withdrawn");
    assert_transitions_follow_the_table(&engine).await;
}

/// A worker plans each statement once per connection, on a new database while its tables are
/// empty and never analyzed, and keeps that plan as they grow; its pool prices out sequential
/// scans. Each of its statements must still find tasks and steps by key: none may read the task
/// list's index (`tasker_tasks_listing`, whose `status` is not the first column), which a claim
/// that chose tasks by status did, all of it at every claim.
#[tokio::test]
async fn a_worker_planning_on_a_new_database_finds_tasks_by_key_not_through_the_listing_index() {
    let setup = engine(&[DIAMOND], 1.0).await;
    let url = setup.database().url().to_string();
    let pool = tasker_store::connect_keyed(&url, 2).await.unwrap();
    let worker = tasker_engine::Engine::new(pool.clone(), tasker_engine::EngineConfig::default());
    let uuid = create(&setup, "diamond", json!({})).await;
    let (left, right) = running_branches(&worker).await;
    worker
        .complete_attempts(&[
            (left.claim.clone(), success(json!({}))),
            (right.claim.clone(), success(json!({}))),
        ])
        .await
        .unwrap();
    let end = claim(&worker).await.remove(0);
    assert_eq!(
        complete(&worker, &end.claim, success(json!({}))).await.1,
        TaskStatus::Complete
    );
    assert_eq!(task(&setup, uuid).await.status, TaskStatus::Complete);
    // A backend reports its statistics when it ends.
    pool.close().await;
    let stats = tasker_store::connect(&url, 1).await.unwrap();
    let scans = |index: &'static str| {
        sqlx::query_scalar::<_, i64>("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = $1")
            .bind(index)
            .fetch_one(&stats)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while scans("tasker_tasks_pkey").await.unwrap() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The statistics arrived: the worker read tasks by their key.
    assert!(scans("tasker_tasks_pkey").await.unwrap() > 0);
    let listing = scans("tasker_tasks_listing").await.unwrap();
    assert_eq!(listing, 0, "a worker's statement read tasks through the listing index");
}

/// A task's `completed_at` is when its end was recorded: a final result that waited for the
/// task's lock is not dated at the start of its transaction, before it could be applied.
#[tokio::test]
async fn a_task_ends_when_its_end_is_recorded_not_when_its_transaction_began() {
    let engine = engine(&[ONCE], 1.0).await;
    let uuid = create(&engine, "once", json!({})).await;
    let step = claim(&engine).await.pop().expect("the only step");
    let mut holder = hold_task_lock(&engine, uuid).await;
    let result = {
        let engine = engine.clone();
        let claim = step.claim.clone();
        tokio::spawn(async move { complete(&engine, &claim, success(json!({"ok": true}))).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let released: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&mut *holder)
        .await
        .unwrap();
    holder.rollback().await.unwrap();
    assert_eq!(result.await.unwrap(), (StepStatus::Complete, TaskStatus::Complete));
    let ended = task(&engine, uuid).await.completed_at.expect("completed_at");
    assert!(
        ended >= released,
        "completed at {ended}, before its lock was free at {released}"
    );
}
