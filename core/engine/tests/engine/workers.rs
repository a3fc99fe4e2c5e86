//! The worker registry: a recorded worker is listed alive with what it said of itself, its
//! heartbeat refreshes its load, a clean stop or silence makes it not alive, and the namespace
//! filter lists only the workers that serve a namespace.

use tasker_engine::{WorkerRegistration, WORKER_LIVENESS};
use uuid::Uuid;

use crate::support::*;

fn registration(language: &str, namespaces: &[&str]) -> WorkerRegistration {
    WorkerRegistration {
        worker_id: Uuid::now_v7(),
        language: language.into(),
        hostname: "host-a".into(),
        pid: 4242,
        concurrency: 8,
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
    }
}

#[tokio::test]
async fn workers_are_listed_alive_until_they_stop_or_fall_silent() {
    let engine = engine(&[], 1.0).await;
    let rust = registration("rust", &["payments_rs", "ecommerce_rs"]);
    let python = registration("python", &["payments_py"]);
    let silent = registration("ruby", &["payments_rb"]);
    for w in [&rust, &python, &silent] {
        engine.record_worker(w).await.unwrap();
    }
    engine.worker_heartbeat(rust.worker_id, 3, 17).await.unwrap();
    // `silent` last answered longer ago than the liveness window.
    sqlx::query("UPDATE tasker_workers SET last_seen_at = now() - make_interval(secs => $2) WHERE worker_id = $1")
        .bind(silent.worker_id)
        .bind(WORKER_LIVENESS.as_secs_f64() + 1.0)
        .execute(engine.pool())
        .await
        .unwrap();
    engine.worker_stopped(python.worker_id, 5).await.unwrap();

    let all = engine.list_workers(None).await.unwrap();
    let by_id = |id: Uuid| all.iter().find(|w| w.worker_id == id).expect("listed");
    let r = by_id(rust.worker_id);
    assert!(r.alive && r.stopped_at.is_none());
    assert_eq!(
        (
            r.language.as_str(),
            r.hostname.as_str(),
            r.pid,
            r.concurrency,
            r.in_flight,
            r.completed
        ),
        ("rust", "host-a", 4242, 8, 3, 17)
    );
    assert_eq!(r.namespaces, ["payments_rs", "ecommerce_rs"]);
    let p = by_id(python.worker_id);
    assert!(!p.alive && p.stopped_at.is_some() && p.completed == 5 && p.in_flight == 0);
    let s = by_id(silent.worker_id);
    assert!(!s.alive && s.stopped_at.is_none(), "silent, not stopped: lost");
    assert_eq!(all[0].worker_id, rust.worker_id, "alive workers first");

    let serving: Vec<Uuid> = engine
        .list_workers(Some("payments_rs"))
        .await
        .unwrap()
        .iter()
        .map(|w| w.worker_id)
        .collect();
    assert_eq!(serving, [rust.worker_id]);
    assert!(engine.list_workers(Some("nobody")).await.unwrap().is_empty());
}

#[tokio::test]
async fn workers_gone_for_a_day_are_forgotten_when_another_starts() {
    let engine = engine(&[], 1.0).await;
    let old = registration("rust", &["payments_rs"]);
    engine.record_worker(&old).await.unwrap();
    sqlx::query("UPDATE tasker_workers SET last_seen_at = now() - interval '25 hours'")
        .execute(engine.pool())
        .await
        .unwrap();
    let new = registration("rust", &["payments_rs"]);
    engine.record_worker(&new).await.unwrap();
    let ids: Vec<Uuid> = engine
        .list_workers(None)
        .await
        .unwrap()
        .iter()
        .map(|w| w.worker_id)
        .collect();
    assert_eq!(ids, [new.worker_id]);
}
