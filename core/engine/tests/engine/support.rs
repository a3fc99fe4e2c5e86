//! A fresh engine with templates, and the moves a worker makes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tasker_engine::{
    AttemptClaim, ClaimedStep, CompleteOutcome, Engine, EngineConfig, StepStatus, StepView, TaskStatus, TaskView,
};
use tasker_step::{PermanentError, RetryableError, StepOutcome, StepSuccess, TaskRequest};
use tasker_templates::TaskTemplate;
use uuid::Uuid;

pub const NS: &str = "engine_tests";

/// a → b → c, three attempts each, exponential backoff from 1 s.
pub const LINEAR: &str = "
name: linear
namespace_name: engine_tests
version: 1.0.0
input_schema: {type: object, required: [n], properties: {n: {type: integer, minimum: 0}}}
steps:
  - name: a
    handler: {callable: a}
    retry: {max_attempts: 3, backoff: exponential, backoff_base_ms: 1000, max_backoff_ms: 60000}
  - name: b
    handler: {callable: b}
    dependencies: [a]
    retry: {max_attempts: 3, backoff: linear, backoff_base_ms: 1000, max_backoff_ms: 60000}
  - name: c
    handler: {callable: c}
    dependencies: [b]
";

/// start fans out to left and right, which converge on end.
pub const DIAMOND: &str = "
name: diamond
namespace_name: engine_tests
version: 1.0.0
steps:
  - name: start
    handler: {callable: start}
  - name: left
    handler: {callable: left}
    dependencies: [start]
    retry: {max_attempts: 2, backoff: none, backoff_base_ms: 0, max_backoff_ms: 0}
  - name: right
    handler: {callable: right}
    dependencies: [start]
    retry: {max_attempts: 2, backoff: none, backoff_base_ms: 0, max_backoff_ms: 0}
  - name: end
    handler: {callable: end}
    dependencies: [left, right]
";

/// One step that may run once.
pub const ONCE: &str = "
name: once
namespace_name: engine_tests
version: 1.0.0
steps:
  - name: only
    handler: {callable: only}
    retry: {max_attempts: 1, backoff: none, backoff_base_ms: 0, max_backoff_ms: 0}
";

/// An engine on a database of its own, which goes when the test passes.
pub struct TestEngine {
    engine: Engine,
    _database: tasker_store::ScratchDatabase,
}

impl TestEngine {
    /// The engine's database.
    pub fn database(&self) -> &tasker_store::ScratchDatabase {
        &self._database
    }
}

impl std::ops::Deref for TestEngine {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

/// A fresh database with every migration, and an engine on it with the templates registered.
pub async fn engine(templates: &[&str], retry_delay_scale: f64) -> TestEngine {
    let base = tokio::task::spawn_blocking(tasker_devdb::resolve_database_url)
        .await
        .unwrap()
        .expect("a PostgreSQL server: the dev db or DATABASE_URL");
    let database = tasker_store::ScratchDatabase::create(&base, "engine_test")
        .await
        .unwrap();
    let pool = tasker_store::connect(database.url(), 8).await.unwrap();
    tasker_store::migrate(&pool).await.unwrap();
    let engine = Engine::new(
        pool,
        EngineConfig {
            retry_delay_scale,
            ..EngineConfig::default()
        },
    );
    for source in templates {
        let template = TaskTemplate::parse(source, None).unwrap();
        engine.register_template(&template).await.unwrap();
    }
    TestEngine {
        engine,
        _database: database,
    }
}

pub async fn create(engine: &Engine, name: &str, context: Value) -> Uuid {
    let created = engine.create_task(&TaskRequest::new(NS, name, context)).await.unwrap();
    assert!(created.created);
    created.task_uuid
}

/// Claims whatever is visible now (at most 10), hidden for `vt` seconds.
pub async fn claim_vt(engine: &Engine, vt: i32) -> Vec<ClaimedStep> {
    engine.claim_steps(NS, 10, vt).await.unwrap()
}

pub async fn claim(engine: &Engine) -> Vec<ClaimedStep> {
    claim_vt(engine, 30).await
}

/// The claimed steps by name.
pub fn by_name(steps: Vec<ClaimedStep>) -> HashMap<String, ClaimedStep> {
    steps.into_iter().map(|s| (s.context.step_name.clone(), s)).collect()
}

/// Runs `start` of the one diamond task waiting and claims its two branches: (left, right).
pub async fn running_branches(engine: &Engine) -> (ClaimedStep, ClaimedStep) {
    let start = claim(engine).await.remove(0);
    assert_eq!(start.context.step_name, "start");
    complete(engine, &start.claim, success(json!({}))).await;
    let mut branches = by_name(claim(engine).await);
    (branches.remove("left").unwrap(), branches.remove("right").unwrap())
}

/// Claims until `name` is among the claimed steps (it may still be invisible for a retry
/// delay), within `within`.
pub async fn claim_when_due(engine: &Engine, name: &str, within: Duration) -> ClaimedStep {
    let deadline = Instant::now() + within;
    loop {
        let mut claimed = by_name(claim(engine).await);
        if let Some(step) = claimed.remove(name) {
            return step;
        }
        assert!(Instant::now() < deadline, "{name} was not claimable within {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Claims until every one of `names` has been claimed, within `within`.
pub async fn claim_all_when_due(engine: &Engine, names: &[&str], within: Duration) -> HashMap<String, ClaimedStep> {
    let deadline = Instant::now() + within;
    let mut got = HashMap::new();
    while names.iter().any(|n| !got.contains_key(*n)) {
        assert!(
            Instant::now() < deadline,
            "{names:?} not all claimable within {within:?}: got {:?}",
            got.keys()
        );
        got.extend(by_name(claim(engine).await));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    got
}

pub fn success(result: Value) -> StepOutcome {
    StepOutcome::Success(StepSuccess::new(result))
}

pub fn retryable(code: &str, retry_after: Option<u64>) -> StepOutcome {
    let mut e = RetryableError::new(format!("{code} happened")).code(code);
    if let Some(s) = retry_after {
        e = e.retry_after(s);
    }
    StepOutcome::Failure(e.into())
}

pub fn permanent(code: &str) -> StepOutcome {
    StepOutcome::Failure(PermanentError::new(format!("{code} happened")).code(code).into())
}

pub async fn complete(engine: &Engine, claim: &AttemptClaim, outcome: StepOutcome) -> (StepStatus, TaskStatus) {
    match engine.complete_attempt(claim, &outcome).await.unwrap() {
        CompleteOutcome::Applied {
            step_status,
            task_status,
        } => (step_status, task_status),
        CompleteOutcome::Stale => panic!("the claim of {claim:?} was stale"),
    }
}

pub async fn task(engine: &Engine, uuid: Uuid) -> TaskView {
    engine.get_task(uuid).await.unwrap().expect("task exists")
}

pub fn step<'a>(task: &'a TaskView, name: &str) -> &'a StepView {
    task.steps.iter().find(|s| s.name == name).expect("step exists")
}

/// Every step's status, in template order.
pub fn statuses(task: &TaskView) -> Vec<(&str, StepStatus)> {
    task.steps.iter().map(|s| (s.name.as_str(), s.status)).collect()
}

/// Tasks neither complete nor in error.
pub async fn unfinished_tasks(engine: &Engine) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tasker_tasks WHERE status NOT IN ('complete', 'error')")
        .fetch_one(engine.pool())
        .await
        .unwrap()
}

/// Messages left in the namespace's queue.
pub async fn queued(engine: &Engine) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {}", tasker_store::queue_table(NS)))
        .fetch_one(engine.pool())
        .await
        .unwrap()
}

/// One audit row.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub step: Option<String>,
    pub from: Option<String>,
    pub to: String,
    pub attempt: Option<i32>,
    pub detail: Option<Value>,
}

type TransitionRow = (Option<String>, Option<String>, String, Option<i32>, Option<Value>);

pub async fn transitions(engine: &Engine, task_uuid: Uuid) -> Vec<Transition> {
    let rows: Vec<TransitionRow> = sqlx::query_as(
        "SELECT s.name, t.from_state, t.to_state, t.attempt, t.detail
           FROM tasker_transitions t LEFT JOIN tasker_steps s ON s.step_uuid = t.step_uuid
          WHERE t.task_uuid = $1 ORDER BY t.id",
    )
    .bind(task_uuid)
    .fetch_all(engine.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(step, from, to, attempt, detail)| Transition {
            step,
            from,
            to,
            attempt,
            detail,
        })
        .collect()
}

/// Every audit row of the database follows the transition table.
pub async fn assert_transitions_follow_the_table(engine: &Engine) {
    let rows: Vec<(bool, Option<String>, String)> =
        sqlx::query_as("SELECT step_uuid IS NOT NULL, from_state, to_state FROM tasker_transitions ORDER BY id")
            .fetch_all(engine.pool())
            .await
            .unwrap();
    assert!(!rows.is_empty());
    for (is_step, from, to) in rows {
        let ok = match (is_step, from) {
            (false, None) => to == "pending",
            (false, Some(from)) => from.parse::<TaskStatus>().unwrap().can_become(to.parse().unwrap()),
            (true, Some(from)) => from.parse::<StepStatus>().unwrap().can_become(to.parse().unwrap()),
            (true, None) => false,
        };
        assert!(
            ok,
            "audit row {} -> {to} is not in the table",
            if is_step { "step" } else { "task" }
        );
    }
}

pub fn ctx() -> Value {
    json!({"n": 1})
}

/// The uuids a listing with this filter shows, in order.
pub async fn listed(engine: &Engine, filter: &tasker_engine::TaskFilter) -> Vec<Uuid> {
    engine
        .list_tasks(filter)
        .await
        .unwrap()
        .tasks
        .iter()
        .map(|t| t.task_uuid)
        .collect()
}

/// A transaction of the test's own holding `task_uuid`'s row lock until it ends.
pub async fn hold_task_lock(engine: &Engine, task_uuid: Uuid) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut holder = engine.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tasker_tasks WHERE task_uuid = $1 FOR UPDATE")
        .bind(task_uuid)
        .execute(&mut *holder)
        .await
        .unwrap();
    holder
}

/// Makes the database refuse every `task.completed` event row (a trigger raising "refused for
/// the test"), so the transaction that would end a task fails; [`accept_task_completed`] undoes
/// it.
pub async fn refuse_task_completed(engine: &Engine) {
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_task_completed() RETURNS trigger AS $$
         BEGIN RAISE EXCEPTION 'refused for the test'; END $$ LANGUAGE plpgsql;
         CREATE TRIGGER refuse BEFORE INSERT ON tasker_events FOR EACH ROW
           WHEN (NEW.event_name = 'task.completed') EXECUTE FUNCTION refuse_task_completed();",
    )
    .execute(engine.pool())
    .await
    .unwrap();
}

/// Undoes [`refuse_task_completed`].
pub async fn accept_task_completed(engine: &Engine) {
    sqlx::raw_sql("DROP TRIGGER refuse ON tasker_events")
        .execute(engine.pool())
        .await
        .unwrap();
}
