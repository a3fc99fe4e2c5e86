//! A pool connection kept by one loop (the claim loop, the result-recording loop) across its
//! transactions. sqlx pings a pooled connection when it hands it out and again when it takes it
//! back; a loop that kept going back to the pool paid both round trips at every claim and every
//! result. The pool's ping also replaced a connection whose backend had ended (a restarted
//! database, a terminated session): a held connection is instead given up after any error, and
//! the caller tries again on a fresh one from the pool (see [`HeldConnection::run`]). A
//! connection taken from the pool has the engine's end statement prepared on it
//! ([`Engine::prepare_end_on`]) before its first use.
//! The claim loop's connection comes from [`Engine::claim_pool`], whose sessions commit without
//! waiting for the flush: a claim is one statement, its own transaction.

use std::future::Future;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres};
use tasker_engine::{AttemptClaim, Claimed, CompleteOutcome, EndPrepared, Engine, EngineError};
use tasker_step::StepOutcome;

/// One loop's connection, taken from the pool at first use and given up after an error.
pub(crate) struct HeldConnection {
    engine: Engine,
    conn: Option<(PoolConnection<Postgres>, EndPrepared)>,
}

/// What a held connection runs: one transaction (or a read), which either committed or did
/// nothing, and which a second run after a failure finds out about (a claim reads only visible
/// messages; a result whose attempt is already recorded comes back `Stale`).
pub(crate) trait Transaction {
    type Output;
    /// The pool the loop's connection comes from.
    fn pool(engine: &Engine) -> &sqlx::PgPool {
        engine.pool()
    }
    fn run(
        &self,
        engine: &Engine,
        conn: &mut PgConnection,
        end: &EndPrepared,
    ) -> impl Future<Output = Result<Self::Output, EngineError>> + Send;
}

/// [`Engine::claim_steps_on`].
pub(crate) struct Claim<'a> {
    pub namespace: &'a str,
    pub qty: i32,
    pub vt_seconds: i32,
    pub horizon: Duration,
}

impl Transaction for Claim<'_> {
    type Output = Claimed;
    /// Claims commit without waiting for the flush: [`Engine::claim_pool`].
    fn pool(engine: &Engine) -> &sqlx::PgPool {
        engine.claim_pool()
    }
    async fn run(&self, engine: &Engine, conn: &mut PgConnection, _: &EndPrepared) -> Result<Claimed, EngineError> {
        engine
            .claim_steps_on(conn, self.namespace, self.qty, self.vt_seconds, self.horizon)
            .await
    }
}

/// [`Engine::complete_attempts_on`].
pub(crate) struct Complete<'a>(pub &'a [(AttemptClaim, StepOutcome)]);

impl Transaction for Complete<'_> {
    type Output = Vec<CompleteOutcome>;
    async fn run(
        &self,
        engine: &Engine,
        conn: &mut PgConnection,
        end: &EndPrepared,
    ) -> Result<Vec<CompleteOutcome>, EngineError> {
        engine.complete_attempts_on(conn, Some(end), self.0).await
    }
}

impl HeldConnection {
    pub(crate) fn new(engine: Engine) -> HeldConnection {
        HeldConnection { engine, conn: None }
    }

    /// Runs `work` on the held connection. When it fails on a connection that was already held
    /// (which may have died while it waited), the connection is given up and the work runs
    /// once more on a fresh one from the pool, which checks it before handing it out; a failure
    /// there is the caller's.
    pub(crate) async fn run<W: Transaction + Sync>(&mut self, work: &W) -> Result<W::Output, EngineError> {
        let reused = self.conn.is_some();
        match self.once(work).await {
            Err(_) if reused => self.once(work).await,
            done => done,
        }
    }

    async fn once<W: Transaction + Sync>(&mut self, work: &W) -> Result<W::Output, EngineError> {
        let (conn, end) = match &mut self.conn {
            Some(held) => held,
            None => {
                let mut conn = W::pool(&self.engine).acquire().await.map_err(EngineError::from)?;
                let end = self.engine.prepare_end_on(&mut conn).await?;
                self.conn.insert((conn, end))
            }
        };
        let done = work.run(&self.engine, conn, end).await;
        if done.is_err() {
            // Its state is unknown (a broken socket, a transaction left open): back to the pool,
            // which tests it and closes it if it is unusable.
            self.conn = None;
        }
        done
    }
}
