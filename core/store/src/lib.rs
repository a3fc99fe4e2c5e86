//! Tasker's PostgreSQL schema and connections.
//!
//! * [`migrate`] applies the sqlx migrations in `migrations/` and installs PGMQ from the SQL
//!   embedded in the `pgmq` crate (no extension build). It is idempotent and safe to call from
//!   several processes at once (a PostgreSQL advisory lock serialises them), so every Tasker
//!   process applies pending migrations at start and any start order works.
//! * [`connect`] opens a pool. [`queue_name`] maps a namespace to its PGMQ queue.
//!
//! **Invariant:** `tasker_transitions` is append-only; the database itself refuses UPDATE and
//! DELETE on it.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

pub use sqlx;

/// Errors from connecting and migrating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("installing PGMQ failed: {0}")]
    Pgmq(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The small, stable classification callers branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    Connect,
    Migrate,
    Pgmq,
    Database,
}

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Connect(_) => StoreErrorKind::Connect,
            StoreError::Migrate(_) => StoreErrorKind::Migrate,
            StoreError::Pgmq(_) => StoreErrorKind::Pgmq,
            StoreError::Database(_) => StoreErrorKind::Database,
        }
    }
}

/// Advisory lock key held while migrating ("tasker" in ASCII).
const MIGRATION_LOCK: i64 = 0x7461_736b_6572;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Opens a pool of at most `max_connections`.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    open(url.parse().map_err(StoreError::Connect)?, max_connections).await
}

/// Opens a pool for a process whose every statement is a keyed lookup (a worker: claims,
/// results, event reads, heartbeats), with sequential scans priced out. A connection keeps a
/// plan it made once: planned while a new database's tables are a page or two, a sequential
/// scan would stay in its plan cache as the tables grow, until autovacuum's first ANALYZE
/// invalidates it (measured: 57 million rows read by 3,247 scans in one 5,000-task benchmark
/// run). Not for the server, whose gauges and dashboard aggregate whole tables.
pub async fn connect_keyed(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    let opts: PgConnectOptions = url.parse().map_err(StoreError::Connect)?;
    open(opts.options([("enable_seqscan", "off")]), max_connections).await
}

/// Every pool plans each statement once per connection (`plan_cache_mode =
/// force_generic_plan`). Tasker's statements are keyed lookups and set-based writes whose best
/// plan does not depend on the values bound, and PostgreSQL's default re-plans a statement at
/// every execution when its custom plans look cheaper than the generic one, which for the hot
/// path's CTEs they always do: planning was 21 % of PostgreSQL's CPU under sustained load, and
/// without it the 2-core machine holds 1,500 steps/s instead of ~1,130 (docs/benchmarks.md).
/// Statements whose best plan does depend on the values (the task list's filters) are built
/// per shape instead of with `$n IS NULL OR ...` predicates.
pub const PLAN_CACHE_MODE: &str = "force_generic_plan";

/// No pool compiles statements to machine code (`jit = off`). PostgreSQL JIT-compiles a
/// statement whose estimated cost passes `jit_above_cost`, at every execution (nothing of it is
/// cached), and a generic plan's estimates for the task view's subqueries pass it: the
/// statement that ends a task then spent ~5 ms of CPU in LLVM for ~0.3 ms of work, and the
/// benchmark's engine latency at 50 % of peak went from 36 ms to 1.5 s. Tasker's statements
/// each touch a few rows; none gains from JIT.
pub const JIT: &str = "off";

/// Every pool pings a connection before it hands it out (`test_before_acquire`, sqlx's
/// default, kept on purpose): a connection whose backend ended while it sat in the pool (a
/// restarted database, a terminated session) is replaced there instead of failing the next
/// statement. Pinging only connections idle for 1 s saved ~0.06 ms before each creation, but
/// then a statement run within that second of a failover failed (docs/benchmarks.md).
async fn open(opts: PgConnectOptions, max_connections: u32) -> Result<PgPool, StoreError> {
    let opts = opts
        .options([("plan_cache_mode", PLAN_CACHE_MODE), ("jit", JIT)])
        .log_statements(tracing::log::LevelFilter::Trace);
    // One direct connection first: an unreachable or misconfigured database then fails at once
    // with its real cause, not with the pool's acquire timeout.
    let probe = sqlx::ConnectOptions::connect(&opts)
        .await
        .map_err(StoreError::Connect)?;
    let _ = sqlx::Connection::close(probe).await;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(true)
        .connect_with(opts)
        .await
        .map_err(StoreError::Connect)
}

/// Installs PGMQ (embedded SQL) and applies Tasker's migrations. Idempotent; concurrent callers
/// wait for each other.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut lock_conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *lock_conn)
        .await?;
    let outcome = async {
        pgmq::install::install_sql_from_embedded(pool)
            .await
            .map_err(|e| StoreError::Pgmq(e.to_string()))?;
        MIGRATOR.run(pool).await.map_err(StoreError::Migrate)
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *lock_conn)
        .await?;
    outcome
}

/// True when every migration of this build is applied (used by `/ready`).
pub async fn is_migrated(pool: &PgPool) -> Result<bool, StoreError> {
    let applied: Vec<i64> = match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await
    {
        Ok(v) => v,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
}

/// The PGMQ queue that carries the steps of one namespace.
pub fn queue_name(namespace: &str) -> String {
    format!("tasker_{namespace}")
}

/// The PGMQ table of a namespace's queue. The engine's hot path reads and writes it with plain
/// prepared statements rather than through PGMQ's plpgsql wrappers, which build dynamic SQL and
/// so re-plan every call.
pub fn queue_table(namespace: &str) -> String {
    format!("pgmq.q_{}", queue_name(namespace))
}

/// The LISTEN/NOTIFY channel raised, with the task's uuid as payload, when a task ends
/// (complete, error, cancelled, resolved manually), once its transaction commits.
pub const TASK_ENDED_CHANNEL: &str = "tasker_task_ended";

/// The LISTEN/NOTIFY channel raised when a namespace's queue receives a message.
pub fn queue_channel(namespace: &str) -> String {
    format!("{CHANNEL_PREFIX}{namespace}")
}

/// The namespace whose queue channel this is (inverse of [`queue_channel`]).
pub fn channel_namespace(channel: &str) -> Option<&str> {
    channel.strip_prefix(CHANNEL_PREFIX)
}

const CHANNEL_PREFIX: &str = "tasker_q_";

/// `base_url` with its database name replaced by `database`.
pub fn with_database(base_url: &str, database: &str) -> Result<String, StoreError> {
    let mut u = url::Url::parse(base_url).map_err(|e| StoreError::Connect(sqlx::Error::Configuration(Box::new(e))))?;
    u.set_path(&format!("/{database}"));
    Ok(u.to_string())
}

/// A database name used unquoted in `CREATE` and `DROP DATABASE`: letters, digits and `_`.
fn check_database_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Connect(sqlx::Error::Configuration(
            format!("invalid database name {name:?}").into(),
        )));
    }
    Ok(())
}

/// Creates an empty database `name` on the server of `base_url` and returns its url. Used by
/// tests and benchmarks, which each run on a fresh database.
pub async fn create_database(base_url: &str, name: &str) -> Result<String, StoreError> {
    check_database_name(name)?;
    let admin = connect(base_url, 1).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await?;
    admin.close().await;
    with_database(base_url, name)
}

/// Drops database `name` of the server of `base_url`, ending any session still connected to
/// it; dropping one that does not exist is not an error. Benchmarks drop theirs when done, so
/// runs leave no gigabytes behind for the next one's autovacuum to work through.
pub async fn drop_database(base_url: &str, name: &str) -> Result<(), StoreError> {
    check_database_name(name)?;
    let admin = connect(base_url, 1).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}

/// A database created for one test, dropped when this guard is, unless the thread is
/// panicking: a failed test's database stays behind for a look, a passing one's does not pile
/// up on the cluster (each one's catalogue and its autovacuum slow the next runs).
pub struct ScratchDatabase {
    base_url: String,
    name: String,
    url: String,
    removed: bool,
}

impl ScratchDatabase {
    /// Creates an empty database named `<prefix>_<pid>_<time>` on the server of `base_url`.
    pub async fn create(base_url: &str, prefix: &str) -> Result<ScratchDatabase, StoreError> {
        let name = unique_database_name(prefix);
        let url = create_database(base_url, &name).await?;
        Ok(ScratchDatabase {
            base_url: base_url.to_string(),
            name,
            url,
            removed: false,
        })
    }

    /// Drops the database now (ending any session still on it), reporting a failure.
    pub async fn remove(&mut self) -> Result<(), StoreError> {
        drop_database(&self.base_url, &self.name).await?;
        self.removed = true;
        Ok(())
    }

    /// The database's url.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Ends every session on the database (waiting up to 5 s for each to go), as a restart or
    /// a failover would: what a test of stale connections needs. Returns how many ended.
    pub async fn end_sessions(&self) -> Result<i64, StoreError> {
        let admin = connect(&self.base_url, 1).await?;
        let ended = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity
              WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&self.name)
        .fetch_one(&admin)
        .await?;
        admin.close().await;
        Ok(ended)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        if std::thread::panicking() {
            tracing::info!(database = %self.name, "kept for a look after the failure");
            return;
        }
        // Drop may run inside a runtime, where blocking on another future is not allowed: the
        // drop gets a thread and a runtime of its own.
        let (base_url, name) = (self.base_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(drop_database(&base_url, &name))
                .map_err(|e| e.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("the dropping thread panicked".to_string()));
        if let Err(e) = dropped {
            tracing::warn!(database = %self.name, error = %e, "could not drop the scratch database");
        }
    }
}

/// A database name unique to this process and moment, with a readable prefix.
pub fn unique_database_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}
