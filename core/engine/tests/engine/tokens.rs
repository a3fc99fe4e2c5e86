//! API tokens: a secret authenticates its token with the token's scopes until it expires or is
//! revoked; only the key's hash is stored; names are unique; use is recorded once a minute.

use chrono::{Duration, Utc};
use tasker_engine::{AuthFailure, EngineErrorKind, Scopes};

use crate::support::*;

fn scopes(list: &[&str]) -> Scopes {
    Scopes(list.iter().map(|s| s.parse().unwrap()).collect())
}

#[tokio::test]
async fn a_secret_authenticates_its_token_until_it_is_revoked() {
    let engine = engine(&[], 1.0).await;
    let s = scopes(&["customer_success:write", "payments:read"]);
    let (token, secret) = engine.create_token("cs-app", &s, None).await.unwrap();
    assert_eq!((token.name.as_str(), &token.scopes), ("cs-app", &s));
    let who = engine.authenticate(secret.expose()).await.unwrap().unwrap();
    assert_eq!((who.name.as_str(), who.scopes), ("cs-app", s.clone()));

    // Only the key's SHA-256 is stored: the secret appears nowhere in the table.
    let stored: String = sqlx::query_scalar("SELECT row_to_json(t)::text FROM tasker_api_tokens t")
        .fetch_one(engine.pool())
        .await
        .unwrap();
    let key = secret.expose().rsplit('_').next().unwrap();
    assert!(!stored.contains(key), "{stored}");

    // A key changed by one digit, a stranger's id, garbage: unknown.
    let mut wrong = secret.expose().to_string();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    let stranger = format!("tkr_0000000000000000_{}", "0".repeat(64));
    for bad in [wrong.as_str(), stranger.as_str(), "Bearer", ""] {
        assert_eq!(
            engine.authenticate(bad).await.unwrap(),
            Err(AuthFailure::Unknown),
            "{bad}"
        );
    }

    assert!(engine.revoke_token("cs-app").await.unwrap());
    assert!(engine.revoke_token("cs-app").await.unwrap(), "revoking twice is fine");
    assert!(!engine.revoke_token("nobody").await.unwrap());
    assert_eq!(
        engine.authenticate(secret.expose()).await.unwrap(),
        Err(AuthFailure::Revoked)
    );
    let listed = engine.list_tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state(Utc::now()), "revoked");
}

#[tokio::test]
async fn an_expired_token_is_refused_and_listed_as_expired() {
    let engine = engine(&[], 1.0).await;
    let (_, secret) = engine
        .create_token("short", &scopes(&["*:read"]), Some(Utc::now() + Duration::hours(1)))
        .await
        .unwrap();
    assert!(engine.authenticate(secret.expose()).await.unwrap().is_ok());
    assert!(engine.token_active("short").await.unwrap());
    sqlx::query("UPDATE tasker_api_tokens SET expires_at = now() - interval '1 second'")
        .execute(engine.pool())
        .await
        .unwrap();
    assert_eq!(
        engine.authenticate(secret.expose()).await.unwrap(),
        Err(AuthFailure::Expired)
    );
    assert_eq!(engine.list_tokens().await.unwrap()[0].state(Utc::now()), "expired");
    assert!(!engine.token_active("short").await.unwrap());
}

#[tokio::test]
async fn a_revoked_or_unknown_token_is_no_longer_active() {
    let engine = engine(&[], 1.0).await;
    engine
        .create_token("streamer", &scopes(&["a:read"]), None)
        .await
        .unwrap();
    assert!(engine.token_active("streamer").await.unwrap());
    assert!(engine.revoke_token("streamer").await.unwrap());
    assert!(!engine.token_active("streamer").await.unwrap());
    assert!(!engine.token_active("nobody").await.unwrap());
}

#[tokio::test]
async fn names_are_unique_and_a_token_needs_a_scope() {
    let engine = engine(&[], 1.0).await;
    engine.create_token("ops", &scopes(&["*"]), None).await.unwrap();
    let dup = engine
        .create_token("ops", &scopes(&["*:read"]), None)
        .await
        .unwrap_err();
    assert_eq!(dup.kind(), EngineErrorKind::Conflict);
    let none = engine
        .create_token("empty", &Scopes::default(), None)
        .await
        .unwrap_err();
    assert_eq!(none.kind(), EngineErrorKind::Invalid);
    let bad = engine
        .create_token("has space", &scopes(&["*"]), None)
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), EngineErrorKind::Invalid);
}

#[tokio::test]
async fn use_is_recorded_at_most_once_a_minute() {
    let engine = engine(&[], 1.0).await;
    let (_, secret) = engine
        .create_token("ci", &scopes(&["payments:read"]), None)
        .await
        .unwrap();
    assert_eq!(engine.list_tokens().await.unwrap()[0].last_used_at, None);
    engine.authenticate(secret.expose()).await.unwrap().unwrap();
    let first = engine.list_tokens().await.unwrap()[0].last_used_at.expect("recorded");
    engine.authenticate(secret.expose()).await.unwrap().unwrap();
    assert_eq!(engine.list_tokens().await.unwrap()[0].last_used_at, Some(first));
}
