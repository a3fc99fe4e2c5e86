//! Spec §0.3: template lookup, idempotency, input schema; a rejected request leaves nothing.

use serde_json::json;
use tasker_engine::{CreateErrorKind, StepStatus, TaskStatus};
use tasker_step::TaskRequest;

use crate::support::*;

async fn rows(engine: &tasker_engine::Engine) -> i64 {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM tasker_tasks) + (SELECT count(*) FROM tasker_steps)
              + (SELECT count(*) FROM tasker_transitions)",
    )
    .fetch_one(engine.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn creation_enqueues_only_the_root_steps() {
    let engine = engine(&[DIAMOND], 1.0).await;
    let uuid = create(&engine, "diamond", json!({})).await;
    let view = task(&engine, uuid).await;
    assert_eq!((view.status, view.terminal), (TaskStatus::Pending, false));
    assert_eq!(view.steps[0].status, StepStatus::Enqueued);
    assert!(view.steps[1..].iter().all(|s| s.status == StepStatus::Pending));
    assert_eq!(view.steps[3].dependencies, ["left", "right"]);
    assert_eq!(queued(&engine).await, 1);
    assert!(
        uuid::Uuid::parse_str(&view.correlation_id).is_ok(),
        "a generated correlation id"
    );
}

#[tokio::test]
async fn a_creation_locks_neither_its_template_nor_its_own_task_row() {
    // A row's xmax stays 0 until a transaction deletes, updates or locks it. Foreign-key checks
    // locked the template's row from every creation (concurrent ones made a MultiXact of it) and
    // the new task's row once per step.
    let engine = engine(&[DIAMOND], 1.0).await;
    let uuid = create(&engine, "diamond", json!({})).await;
    let (template, task): (String, String) = sqlx::query_as(
        "SELECT (SELECT xmax::text FROM tasker_templates WHERE namespace = $1 AND name = 'diamond'),
                (SELECT xmax::text FROM tasker_tasks WHERE task_uuid = $2)",
    )
    .bind(NS)
    .bind(uuid)
    .fetch_one(engine.pool())
    .await
    .unwrap();
    assert_eq!((template.as_str(), task.as_str()), ("0", "0"));
}

#[tokio::test]
async fn template_lookup_names_the_first_unmatched_part() {
    let engine = engine(&[LINEAR], 1.0).await;
    for (ns, name, version, field) in [
        ("nope", "linear", None, "/namespace"),
        (NS, "nope", None, "/name"),
        (NS, "linear", Some("9.9.9"), "/version"),
    ] {
        let mut req = TaskRequest::new(ns, name, ctx());
        req.version = version.map(str::to_string);
        let e = engine.create_task(&req).await.unwrap_err();
        assert_eq!(e.kind(), CreateErrorKind::TemplateNotFound);
        assert_eq!(e.kind().code(), "TEMPLATE_NOT_FOUND");
        assert_eq!(e.field().as_deref(), Some(field));
        assert_eq!(e.details()[0].keyword, "template");
    }
    assert_eq!(rows(&engine).await, 0);
}

#[tokio::test]
async fn the_latest_version_is_chosen_by_semver_precedence() {
    let v2 = LINEAR.replace("version: 1.0.0", "version: 1.10.0");
    let v3 = LINEAR.replace("version: 1.0.0", "version: 1.9.0");
    let engine = engine(&[LINEAR, &v2, &v3], 1.0).await;
    let created = engine
        .create_task(&TaskRequest::new(NS, "linear", ctx()))
        .await
        .unwrap();
    assert_eq!(created.version, "1.10.0");
}

#[tokio::test]
async fn a_template_cached_by_one_process_yields_to_what_another_registered() {
    let engine = engine(&[LINEAR], 1.0).await;
    // Another process: its own engine (and template cache) on the same database.
    let other = tasker_engine::Engine::new(engine.pool().clone(), tasker_engine::EngineConfig::default());
    assert_eq!(version_created(&engine).await, "1.0.0");

    // A higher version: a creation that names none takes it, not the cached 1.0.0.
    let v2 = LINEAR.replace("version: 1.0.0", "version: 2.0.0");
    register(&other, &v2).await;
    assert_eq!(version_created(&engine).await, "2.0.0");

    // The same version changed in place: the new content is used (here, one step fewer).
    let shorter = LINEAR.replace("version: 1.0.0", "version: 2.0.0");
    register(&other, &shorter[..shorter.find("  - name: c").unwrap()]).await;
    let changed = create(&engine, "linear", ctx()).await;
    assert_eq!(task(&engine, changed).await.steps.len(), 2);
    // A version named explicitly still finds the old one.
    let mut req = TaskRequest::new(NS, "linear", ctx());
    req.version = Some("1.0.0".into());
    let old = engine.create_task(&req).await.unwrap();
    assert_eq!(task(&engine, old.task_uuid).await.steps.len(), 3);
    assert_eq!(rows_of_tasks(&engine).await, 4, "no creation was written twice");
}

/// The version of a task created without naming one.
async fn version_created(engine: &tasker_engine::Engine) -> String {
    let req = TaskRequest::new(NS, "linear", ctx());
    engine.create_task(&req).await.unwrap().version
}

async fn register(engine: &tasker_engine::Engine, source: &str) {
    let template = tasker_templates::TaskTemplate::parse(source, None).unwrap();
    engine.register_template(&template).await.unwrap();
}

async fn rows_of_tasks(engine: &tasker_engine::Engine) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tasker_tasks")
        .fetch_one(engine.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn idempotency_returns_the_first_task_or_conflicts() {
    let engine = engine(&[LINEAR], 1.0).await;
    let mut req = TaskRequest::new(NS, "linear", json!({"n": 1}));
    req.idempotency_key = Some("order-1".into());
    let first = engine.create_task(&req).await.unwrap();
    let again = engine.create_task(&req).await.unwrap();
    assert!(first.created && !again.created);
    assert_eq!(again.task_uuid, first.task_uuid);
    let before = rows(&engine).await;
    req.context = json!({"n": 2});
    let e = engine.create_task(&req).await.unwrap_err();
    assert_eq!(e.kind(), CreateErrorKind::IdempotencyConflict);
    assert_eq!(e.field().as_deref(), Some("/idempotency_key"));
    assert_eq!(rows(&engine).await, before, "nothing created");
    // Only a keyed task stores its request's hash; a task without a key, the same request
    // otherwise, stores none and is created again each time.
    req.idempotency_key = None;
    let (a, b) = (
        engine.create_task(&req).await.unwrap(),
        engine.create_task(&req).await.unwrap(),
    );
    assert!(a.created && b.created && a.task_uuid != b.task_uuid);
    let hashes: Vec<(bool, Option<String>)> = sqlx::query_as(
        "SELECT idempotency_key IS NOT NULL, request_hash FROM tasker_tasks WHERE task_uuid = ANY($1) ORDER BY 1",
    )
    .bind(vec![first.task_uuid, a.task_uuid, b.task_uuid])
    .fetch_all(engine.pool())
    .await
    .unwrap();
    assert_eq!(hashes.len(), 3);
    assert!(
        hashes[..2].iter().all(|(keyed, hash)| !keyed && hash.is_none()),
        "{hashes:?}"
    );
    assert!(
        hashes[2].0 && hashes[2].1.as_ref().is_some_and(|h| h.len() == 64),
        "{hashes:?}"
    );
}

#[tokio::test]
async fn schema_violations_are_all_listed_and_create_nothing() {
    let engine = engine(&[LINEAR], 1.0).await;
    let e = engine
        .create_task(&TaskRequest::new(NS, "linear", json!({"n": -1})))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), CreateErrorKind::InvalidTaskInput);
    assert_eq!(e.field().as_deref(), Some("/context/n"));
    assert_eq!(e.details()[0].keyword, "minimum");
    assert!(
        e.to_string()
            .starts_with("Task input does not match engine_tests/linear@1.0.0: /context/n"),
        "{e}"
    );
    let e = engine
        .create_task(&TaskRequest::new(NS, "linear", json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Task input does not match engine_tests/linear@1.0.0: /context/n is required"
    );
    assert_eq!(rows(&engine).await, 0);
}

#[tokio::test]
async fn request_shape_rules_name_their_field() {
    let engine = engine(&[LINEAR], 1.0).await;
    let base = TaskRequest::new(NS, "linear", ctx());
    let cases: Vec<(TaskRequest, &str)> = vec![
        (
            TaskRequest {
                namespace: String::new(),
                ..base.clone()
            },
            "/namespace",
        ),
        (
            TaskRequest {
                context: json!([1]),
                ..base.clone()
            },
            "/context",
        ),
        (
            TaskRequest {
                correlation_id: Some(String::new()),
                ..base.clone()
            },
            "/correlation_id",
        ),
        (
            TaskRequest {
                idempotency_key: Some("k".repeat(256)),
                ..base.clone()
            },
            "/idempotency_key",
        ),
        (
            TaskRequest {
                context: json!({"n": 1, "note": "a\u{0}b"}),
                ..base.clone()
            },
            "/context/note",
        ),
        (
            TaskRequest {
                context: json!({"n": 1, "k\u{0}": 1}),
                ..base.clone()
            },
            "/context",
        ),
        (
            TaskRequest {
                reason: Some("\u{0}".into()),
                ..base.clone()
            },
            "/reason",
        ),
        (
            TaskRequest {
                tags: Some(vec!["ok".into(), "x\u{0}".into()]),
                ..base.clone()
            },
            "/tags/1",
        ),
    ];
    for (req, field) in cases {
        let e = engine.create_task(&req).await.unwrap_err();
        assert_eq!(e.kind(), CreateErrorKind::InvalidRequest, "{field}: {e}");
        assert_eq!(e.field().as_deref(), Some(field), "{e}");
    }
    assert_eq!(rows(&engine).await, 0);
}

#[tokio::test]
async fn every_attempt_of_a_task_receives_the_trace_it_was_created_in() {
    let engine = engine(&[LINEAR, ONCE], 0.001).await;
    let trace = tasker_step::TraceContext {
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        tracestate: Some("vendor=1".into()),
    };
    engine
        .create_task_by(&TaskRequest::new(NS, "linear", json!({"n": 1})), None, Some(&trace))
        .await
        .unwrap();
    let first = claim_vt(&engine, 0).await.pop().expect("a claimed");
    assert_eq!(first.context.trace.as_ref(), Some(&trace));
    // A redelivery (a new attempt) carries it, and so does the next step.
    let again = claim_when_due(&engine, "a", std::time::Duration::from_secs(5)).await;
    assert_eq!((again.context.attempt, again.context.trace.as_ref()), (2, Some(&trace)));
    complete(&engine, &again.claim, success(json!({}))).await;
    let b = claim_when_due(&engine, "b", std::time::Duration::from_secs(5)).await;
    assert_eq!(b.context.trace.as_ref(), Some(&trace));
    // A task created outside any trace has none.
    create(&engine, "once", json!({})).await;
    let untraced = claim_when_due(&engine, "only", std::time::Duration::from_secs(5)).await;
    assert_eq!(untraced.context.trace, None);
}

/// A step declared before its dependencies, which it lists in the opposite of their step order.
const BACKWARDS: &str = "
name: backwards
namespace_name: engine_tests
version: 1.0.0
steps:
  - name: join
    handler: {callable: join}
    dependencies: [second, first]
  - name: first
    handler: {callable: first}
  - name: second
    handler: {callable: second}
    dependencies: [first]
";

#[tokio::test]
async fn dependencies_stored_at_creation_are_listed_in_step_order_and_gate_the_run() {
    let engine = engine(&[BACKWARDS], 1.0).await;
    let uuid = create(&engine, "backwards", json!({})).await;
    let view = task(&engine, uuid).await;
    let deps: Vec<(&str, Vec<String>)> = view
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.dependencies.clone()))
        .collect();
    assert_eq!(
        deps,
        [
            ("join", vec!["first".to_string(), "second".to_string()]),
            ("first", vec![]),
            ("second", vec!["first".to_string()]),
        ]
    );
    let first = claim(&engine).await.remove(0);
    assert_eq!(first.context.step_name, "first");
    complete(&engine, &first.claim, success(json!(1))).await;
    let second = claim(&engine).await;
    assert_eq!(second.len(), 1, "join waits for second");
    assert_eq!(
        second[0].context.dependency_results,
        [("first".to_string(), json!(1))].into()
    );
    complete(&engine, &second[0].claim, success(json!(2))).await;
    let join = claim(&engine).await.remove(0);
    assert_eq!(join.context.step_name, "join");
    assert_eq!(
        join.context.dependency_results,
        [("first".to_string(), json!(1)), ("second".to_string(), json!(2))].into()
    );
}

#[tokio::test]
async fn a_creation_whose_pooled_connection_died_is_made_once_on_a_checked_one() {
    let engine = engine(&[LINEAR], 1.0).await;
    let first = create(&engine, "linear", ctx()).await;
    // Every session of the database ends, the creation's idle pooled connection with them.
    let ended = engine.database().end_sessions().await.unwrap();
    assert!(ended >= 2, "only {ended} sessions ended");
    // The creations pool hands out its connections unchecked: the first statement meets the
    // dead one, and the creation is made on a checked connection, once.
    let second = create(&engine, "linear", ctx()).await;
    let third = create(&engine, "linear", ctx()).await;
    let tasks: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT task_uuid FROM tasker_tasks ORDER BY task_uuid")
        .fetch_all(engine.pool())
        .await
        .unwrap();
    assert_eq!(tasks, [first, second, third]);
    assert_eq!(queued(&engine).await, 3, "one root message per task");
}
