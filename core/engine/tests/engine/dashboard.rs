//! The dashboard's read models: listing filters (version, creation range, search by uuid,
//! correlation id or idempotency key) with keyset pages, counts per status, workflow
//! statistics, delegation links and each attempt rebuilt from the events.

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::json;
use tasker_engine::{attempts_from_events, AttemptEnd, StepStatus, TaskFilter, TaskStatus};
use tasker_step::TaskRequest;
use uuid::Uuid;

use crate::support::*;

fn filter() -> TaskFilter {
    TaskFilter {
        limit: 50,
        ..TaskFilter::default()
    }
}

async fn set_created(engine: &tasker_engine::Engine, uuid: Uuid, hours_ago: i64) {
    sqlx::query("UPDATE tasker_tasks SET created_at = now() - make_interval(hours => $2) WHERE task_uuid = $1")
        .bind(uuid)
        .bind(hours_ago as i32)
        .execute(engine.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn listing_filters_by_version_creation_range_and_search_and_counts_every_status() {
    let v2 = LINEAR.replace("version: 1.0.0", "version: 2.0.0");
    let engine = engine(&[LINEAR, &v2, ONCE], 1.0).await;
    let mut req = TaskRequest::new(NS, "linear", json!({"n": 1}));
    req.version = Some("1.0.0".into());
    req.correlation_id = Some("order-1234".into());
    req.idempotency_key = Some("checkout-77".into());
    let old = engine.create_task(&req).await.unwrap().task_uuid;
    set_created(&engine, old, 48).await;
    let newer = create(&engine, "linear", json!({"n": 2})).await;
    let once = create(&engine, "once", json!({})).await;
    // `once` fails permanently.
    let claimed = by_name(claim(&engine).await);
    complete(&engine, &claimed["only"].claim, permanent("BROKEN")).await;

    let list = |f: TaskFilter| {
        let engine = engine.clone();
        async move { listed(&engine, &f).await }
    };
    assert_eq!(list(filter()).await, vec![once, newer, old], "newest first");
    let by_version = TaskFilter {
        version: Some("2.0.0".into()),
        ..filter()
    };
    assert_eq!(
        list(by_version).await,
        vec![newer],
        "the latest version was picked by default"
    );
    let recent = TaskFilter {
        created_after: Some(Utc::now() - ChronoDuration::hours(1)),
        ..filter()
    };
    assert_eq!(list(recent).await, vec![once, newer]);
    let earlier = TaskFilter {
        created_before: Some(Utc::now() - ChronoDuration::hours(1)),
        ..filter()
    };
    assert_eq!(list(earlier).await, vec![old]);
    for search in [old.to_string(), "order-1234".into(), "checkout-77".into()] {
        let f = TaskFilter {
            search: Some(search.clone()),
            ..filter()
        };
        assert_eq!(list(f).await, vec![old], "search {search}");
    }
    let nothing = TaskFilter {
        search: Some("order-12".into()),
        ..filter()
    };
    assert!(list(nothing).await.is_empty(), "search is exact, not a prefix");
    let failed = TaskFilter {
        status: Some(TaskStatus::Error),
        ..filter()
    };
    assert_eq!(list(failed).await, vec![once]);

    // Counts ignore the status filter (they are what the status buttons show) but honour the rest.
    let counts = engine
        .count_tasks_by_status(&TaskFilter {
            status: Some(TaskStatus::Error),
            name: Some("linear".into()),
            ..filter()
        })
        .await
        .unwrap();
    assert_eq!(counts.len(), TaskStatus::ALL.len(), "every status, zeros included");
    let count = |st| counts.iter().find(|(s, _)| *s == st).unwrap().1;
    // Both linear tasks had their first step claimed with `once`'s.
    assert_eq!((count(TaskStatus::InProgress), count(TaskStatus::Error)), (2, 0));
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<i64>(), 2);
}

#[tokio::test]
async fn keyset_pages_cover_every_task_once_in_order() {
    let engine = engine(&[ONCE], 1.0).await;
    let mut made = Vec::new();
    for _ in 0..7 {
        made.push(create(&engine, "once", json!({})).await);
    }
    made.reverse();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = engine
            .list_tasks(&TaskFilter {
                limit: 3,
                cursor,
                ..TaskFilter::default()
            })
            .await
            .unwrap();
        assert!(page.tasks.len() <= 3);
        seen.extend(page.tasks.iter().map(|t| t.task_uuid));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, made);
}

#[tokio::test]
async fn workflow_stats_count_failures_and_duration_percentiles_in_the_window() {
    let engine = engine(&[ONCE, DIAMOND], 1.0).await;
    for outcome in ["ok", "ok", "ok", "fail"] {
        create(&engine, "once", json!({})).await;
        let claimed = by_name(claim(&engine).await);
        let out = if outcome == "ok" {
            success(json!({}))
        } else {
            permanent("BROKEN")
        };
        complete(&engine, &claimed["only"].claim, out).await;
    }
    let running = create(&engine, "diamond", json!({})).await;
    let outside = create(&engine, "once", json!({})).await;
    set_created(&engine, outside, 30).await;
    // Durations 1 s, 2 s, 3 s and 10 s.
    sqlx::query(
        "UPDATE tasker_tasks t SET completed_at = t.created_at + make_interval(secs => d.s)
           FROM (SELECT task_uuid, (ARRAY[1, 2, 3, 10])[row_number() OVER (ORDER BY task_uuid)] AS s
                   FROM tasker_tasks WHERE completed_at IS NOT NULL) d
          WHERE t.task_uuid = d.task_uuid",
    )
    .execute(engine.pool())
    .await
    .unwrap();

    let stats = engine
        .workflow_stats(Utc::now() - ChronoDuration::hours(24))
        .await
        .unwrap();
    let once = stats.iter().find(|s| s.name == "once").unwrap();
    assert_eq!((once.tasks, once.finished, once.failed), (4, 4, 1), "{once:?}");
    assert_eq!(once.failure_ratio(), Some(0.25));
    assert!((once.p50_seconds.unwrap() - 2.5).abs() < 1e-6, "{once:?}");
    assert!((once.p95_seconds.unwrap() - 8.95).abs() < 1e-6, "{once:?}");
    let diamond = stats.iter().find(|s| s.name == "diamond").unwrap();
    assert_eq!((diamond.tasks, diamond.finished, diamond.failure_ratio()), (1, 0, None));
    assert_eq!(diamond.p50_seconds, None);
    let _ = running;
}

#[tokio::test]
async fn related_tasks_link_a_delegated_task_and_its_parent() {
    let engine = engine(&[ONCE], 1.0).await;
    let mut parent_req = TaskRequest::new(NS, "once", json!({}));
    parent_req.correlation_id = Some("refund-9".into());
    let parent = engine.create_task(&parent_req).await.unwrap().task_uuid;
    let mut child_req = TaskRequest::new(NS, "once", json!({"child": true}));
    child_req.parent_correlation_id = Some("refund-9".into());
    let child = engine.create_task(&child_req).await.unwrap().task_uuid;
    let loner = create(&engine, "once", json!({})).await;

    let of_parent = engine.related_tasks(parent).await.unwrap();
    assert_eq!(of_parent.parent, None);
    assert_eq!(
        of_parent.children.iter().map(|t| t.task_uuid).collect::<Vec<_>>(),
        vec![child]
    );
    let of_child = engine.related_tasks(child).await.unwrap();
    assert_eq!(of_child.parent.map(|t| t.task_uuid), Some(parent));
    assert!(of_child.children.is_empty());
    assert_eq!(engine.related_tasks(loner).await.unwrap(), Default::default());
    assert!(matches!(
        engine.related_tasks(Uuid::now_v7()).await,
        Err(tasker_engine::EngineError::TaskNotFound(_))
    ));
}

#[tokio::test]
async fn attempts_are_rebuilt_from_events_with_their_ends() {
    let engine = engine(&[LINEAR], 0.0).await;
    let uuid = create(&engine, "linear", json!({"n": 1})).await;
    let a = by_name(claim(&engine).await);
    complete(&engine, &a["a"].claim, retryable("FLAKY", None)).await;
    let a = claim_when_due(&engine, "a", std::time::Duration::from_secs(10)).await;
    complete(&engine, &a.claim, success(json!({"ok": 1}))).await;
    let b = claim_when_due(&engine, "b", std::time::Duration::from_secs(10)).await;
    let _ = b;

    let events = engine.task_events(uuid).await.unwrap();
    let attempts = attempts_from_events(&events);
    let summary: Vec<(&str, i32, AttemptEnd, Option<&str>)> = attempts
        .iter()
        .map(|a| (a.step_name.as_str(), a.attempt, a.end, a.error_code.as_deref()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a", 1, AttemptEnd::RetryScheduled, Some("FLAKY")),
            ("a", 2, AttemptEnd::Completed, None),
            ("b", 1, AttemptEnd::Open, None),
        ]
    );
    assert!(attempts
        .iter()
        .all(|a| a.ended_at.is_none_or(|end| end >= a.started_at)));
    assert_eq!(step(&task(&engine, uuid).await, "b").status, StepStatus::InProgress);

    let configs = engine.step_configs(uuid).await.unwrap();
    assert_eq!(
        configs
            .iter()
            .map(|c| (c.name.as_str(), c.callable.as_str()))
            .collect::<Vec<_>>(),
        vec![("a", "a"), ("b", "b"), ("c", "c")]
    );
}
