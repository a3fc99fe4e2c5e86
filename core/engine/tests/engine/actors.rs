//! Who did what: a task records its creator, every audit row of an operator action its actor,
//! and nothing else is attributed; listings can be confined to the namespaces a caller reads.

use serde_json::json;
use tasker_engine::{ActionKind, Actor, TaskFilter};
use tasker_step::TaskRequest;
use uuid::Uuid;

use crate::support::*;

fn token(name: &str) -> Actor {
    Actor::Token { name: name.into() }
}

/// `(to_state, step, actor)` of every audit row of the task, oldest first.
async fn audit(engine: &tasker_engine::Engine, uuid: Uuid) -> Vec<(String, Option<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT t.to_state, s.name, t.actor FROM tasker_transitions t
           LEFT JOIN tasker_steps s ON s.step_uuid = t.step_uuid
          WHERE t.task_uuid = $1 ORDER BY t.id",
    )
    .bind(uuid)
    .fetch_all(engine.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn the_creator_and_each_operator_action_are_recorded_with_their_actor() {
    let engine = engine(&[LINEAR], 1.0).await;
    let req = TaskRequest::new(NS, "linear", ctx());
    let uuid = engine
        .create_task_by(&req, Some(&token("cs-app")), None)
        .await
        .unwrap()
        .task_uuid;
    assert_eq!(task(&engine, uuid).await.created_by, Some(token("cs-app")));

    // A worker's attempt is nobody's action: its rows have no actor.
    let a = claim(&engine).await.remove(0);
    complete(&engine, &a.claim, permanent("DECLINED")).await;
    engine.retry_step(uuid, "a", Some(&token("ops"))).await.unwrap();
    engine.cancel_task(uuid, Some(&token("oncall"))).await.unwrap();

    let rows = audit(&engine, uuid).await;
    let by = |who: &str| Some(format!("token:{who}"));
    // The creation's rows (the task, its root step enqueued) are the creator's; the claim and
    // result rows that follow are nobody's.
    assert_eq!(rows[0], ("pending".into(), None, by("cs-app")), "the creation");
    assert_eq!(rows[1], ("enqueued".into(), Some("a".into()), by("cs-app")), "{rows:?}");
    let (worker_rows, _) = rows.split_at(rows.iter().position(|r| r.2 == by("ops")).unwrap());
    assert!(
        worker_rows.len() > 2 && worker_rows[2..].iter().all(|r| r.2.is_none()),
        "claim and result rows: {worker_rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r == &("pending".into(), Some("a".into()), by("ops"))),
        "{rows:?}"
    );
    let cancel_rows: Vec<_> = rows.iter().filter(|r| r.0 == "cancelled").collect();
    assert!(
        !cancel_rows.is_empty() && cancel_rows.iter().all(|r| r.2 == by("oncall")),
        "{rows:?}"
    );

    let view = task(&engine, uuid).await;
    let actions: Vec<_> = view
        .actions
        .iter()
        .map(|a| (a.action, a.step_name.clone(), a.actor.clone()))
        .collect();
    assert_eq!(
        actions,
        [
            (ActionKind::Retry, Some("a".into()), Some(token("ops"))),
            (ActionKind::Cancel, None, Some(token("oncall"))),
        ]
    );
    assert!(view.actions[0].at <= view.actions[1].at);
    assert_transitions_follow_the_table(&engine).await;
}

#[tokio::test]
async fn the_actor_ends_with_its_transaction_on_a_reused_connection() {
    // One connection: the next transaction on it must not inherit the actor.
    let engine = engine(&[LINEAR], 1.0).await;
    let solo = tasker_engine::Engine::new(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_with(engine.pool().connect_options().as_ref().clone())
            .await
            .unwrap(),
        tasker_engine::EngineConfig::new(None, Some(1.0)).unwrap(),
    );
    let first = solo
        .create_task_by(&TaskRequest::new(NS, "linear", ctx()), Some(&token("a")), None)
        .await
        .unwrap()
        .task_uuid;
    let second = solo
        .create_task(&TaskRequest::new(NS, "linear", ctx()))
        .await
        .unwrap()
        .task_uuid;
    assert_eq!(audit(&solo, first).await[0].2.as_deref(), Some("token:a"));
    assert_eq!(audit(&solo, second).await[0].2, None);
    assert_eq!(task(&solo, second).await.created_by, None);
}

#[tokio::test]
async fn a_delegated_task_names_the_creating_task_and_anonymous_actions_name_nobody() {
    let engine = engine(&[LINEAR], 1.0).await;
    let parent = create(&engine, "linear", ctx()).await;
    let child = engine
        .create_task_by(
            &TaskRequest::new(NS, "linear", json!({"n": 2})),
            Some(&Actor::Task { task_uuid: parent }),
            None,
        )
        .await
        .unwrap()
        .task_uuid;
    assert_eq!(
        task(&engine, child).await.created_by,
        Some(Actor::Task { task_uuid: parent })
    );
    assert_eq!(task(&engine, parent).await.created_by, None);
    engine.cancel_task(parent, None).await.unwrap();
    let view = task(&engine, parent).await;
    assert_eq!(view.actions.len(), 1);
    assert_eq!(
        (view.actions[0].action, &view.actions[0].actor),
        (ActionKind::Cancel, &None)
    );
}

#[tokio::test]
async fn listings_confined_to_readable_namespaces_show_nothing_else() {
    let engine = engine(&[LINEAR], 1.0).await;
    let uuid = create(&engine, "linear", ctx()).await;
    let all = |within: Option<Vec<String>>| TaskFilter {
        limit: 50,
        within,
        ..TaskFilter::default()
    };
    let seen = |f: &TaskFilter| {
        let engine = engine.clone();
        let f = f.clone();
        async move { listed(&engine, &f).await }
    };
    assert_eq!(seen(&all(None)).await, [uuid]);
    assert_eq!(seen(&all(Some(vec![NS.into()]))).await, [uuid]);
    assert!(seen(&all(Some(vec!["payments".into()]))).await.is_empty());
    assert!(seen(&all(Some(vec![]))).await.is_empty());
    let counts = engine
        .count_tasks_by_status(&all(Some(vec!["payments".into()])))
        .await
        .unwrap();
    assert!(counts.iter().all(|(_, n)| *n == 0), "{counts:?}");
}
