//! Notifications sent once a transaction has committed: work for a namespace's workers
//! ([`tasker_store::queue_channel`]) and ended tasks for waiting clients
//! ([`tasker_store::TASK_ENDED_CHANNEL`]).
//!
//! A transaction that calls `NOTIFY` takes PostgreSQL's one notification lock at commit and holds
//! it until its commit record is flushed, so notifying transactions flush one after another
//! instead of sharing a flush: most of the hot path's waits were on that lock. So engine
//! transactions do not notify (but in the one case below). Each records what it would have raised (a [`Notice`] among its
//! observations) and, once it has committed, the engine hands the notices to its [`Notifier`]:
//! one task per process that sends everything pending in one statement, on its own connection,
//! committed without waiting for a flush (`synchronous_commit = off`). Notices of the same
//! channel and payload pending together go as one. Ends go at once (a client waits on each);
//! a namespace's work goes at most every [`crate::EngineConfig::work_notification_gap`] (2 ms),
//! one notification listing the commits of everything pending: under a steady stream of
//! creations a server sent one notification each, and each woke every listening connection of
//! the database and the workers' claim loops; a process idle for the gap is announced at once.
//!
//! One exception: a result recorded while the process records no other (an idle worker's, a
//! sequential workflow's) raises the end of its task in its own commit. With nothing else of
//! the process committing, holding the lock costs nobody anything, and the waiting client is
//! answered one round trip sooner ([`Notifier::recording`]). On a connection its caller keeps
//! (a worker's result loop), the end statement is prepared once for the session
//! ([`Engine::prepare_end_on`]) and goes with the `COMMIT` in one simple query, a round trip sooner
//! again (`locked::commit_with_end`).
//!
//! Work a worker of the same process will claim at once is not announced to the database at all:
//! while a worker of the process serves the namespace and has a free slot
//! ([`Engine::claim_locally`]), the in-process wake-up is the whole notice. Every other process
//! could at most have raced that worker for the message (and the process itself skips its own
//! copy), and under a steady load these were most of the database's notifications: one
//! transaction each, and a wake-up of every listening connection of the database. A worker
//! whose claim fills its last free slot hands the namespace over ([`Engine::hand_over_work`]):
//! messages it could not take are announced to the others then.
//!
//! A wake-up says which of this process's commits raised it ([`LocalWork::commit`], counted as
//! the commits return), and a database notification lists the commits that wrote its work
//! ([`notified_commits`]; from creations, whose statement reads its transaction's id): a worker
//! whose last claim drained the namespace, begun after that commit had returned or reading a
//! snapshot that saw those commits ([`ReadSnapshot`]), has seen the work already and skips it
//! ([`Engine::commits_returned`]). Under a steady load most wake-ups arrive while a claim runs
//! that takes their message, and each used to cost an empty claim after it.
//!
//! A notification can still be lost (the process ends after the commit, the connection fails):
//! nothing depends on one. Waiting clients read the task again at least every 2 s, workers claim
//! at the earliest due message and at their fallback poll. The notifying process's own workers
//! are woken in-process at once ([`Engine::local_work`]) and skip the database's copy of the
//! notification, whose payload names the process that sent it ([`Engine::notified_by_self`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, PgPool};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Duration, Instant};

use crate::Engine;

/// What a committed transaction tells the processes listening.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Notice {
    /// A namespace's queue has a message its workers may claim now, or a retry's due time
    /// they should sleep until; `commit`, when known, is the transaction that wrote it.
    Work { namespace: String, commit: Option<TxId> },
    /// A task ended: the payload [`crate::task_ended`] reads.
    TaskEnded { payload: String },
}

/// A transaction's id (PostgreSQL's 64-bit `xid8`, as `pg_current_xact_id()` gives it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxId(pub u64);

/// The most commits a work notification lists; one that gathered more lists none, and every
/// worker claims on it.
const MAX_LISTED_COMMITS: usize = 64;

/// The payload of a namespace's work notification: the sending process, then (after `/`) the
/// commits that wrote the work, when every one is known.
fn work_payload(sender: &str, commits: &[Option<TxId>]) -> String {
    match commits.iter().copied().collect::<Option<Vec<TxId>>>() {
        Some(ids) if !ids.is_empty() && ids.len() <= MAX_LISTED_COMMITS => {
            let ids: Vec<String> = ids.iter().map(|t| t.0.to_string()).collect();
            format!("{sender}/{}", ids.join(","))
        }
        _ => sender.to_string(),
    }
}

/// The commits a work notification's payload lists; None when it lists none (any of its work
/// may be new to every reader).
pub fn notified_commits(payload: &str) -> Option<Vec<TxId>> {
    let (_, ids) = payload.split_once('/')?;
    ids.split(',').map(|id| id.parse().ok().map(TxId)).collect()
}

/// What a queue read's snapshot saw: the transactions committed before it
/// (`pg_current_snapshot()`: every id below `xmin`, and those below `xmax` not running then).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSnapshot {
    xmin: u64,
    xmax: u64,
    running: Vec<u64>,
}

impl ReadSnapshot {
    /// Parses `pg_snapshot`'s text form, `xmin:xmax:id,id,...`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let running = match parts.next()? {
            "" => vec![],
            ids => ids.split(',').map(|id| id.parse().ok()).collect::<Option<_>>()?,
        };
        Some(ReadSnapshot { xmin, xmax, running })
    }

    /// Whether every one of these committed transactions had committed when the read began
    /// (the default snapshot saw none).
    pub fn saw(&self, commits: &[TxId]) -> bool {
        commits
            .iter()
            .all(|t| t.0 < self.xmin || (t.0 < self.xmax && !self.running.contains(&t.0)))
    }
}

/// Where a commit of this process stands in the order its commits returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct CommitSeq(u64);

/// A namespace's new work, woken in-process by a commit of this process ([`Engine::local_work`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalWork {
    pub namespace: Arc<str>,
    /// The commit that raised it: a claim of the namespace begun at or after
    /// [`Engine::commits_returned`] said this commit had returned reads its work.
    pub commit: CommitSeq,
}

/// The `application_name` of the notifier's connection, as `pg_stat_activity` shows it.
pub const NOTIFIER_APPLICATION: &str = "tasker-notifier";

/// How many namespace wake-ups an in-process listener may fall behind before it is told it
/// lagged (and then claims from every namespace).
const LOCAL_WAKES: usize = 256;

/// Sends the notices of committed transactions (see the module documentation).
pub(crate) struct Notifier {
    /// This process's name in the payload of its work notices.
    sender: Arc<str>,
    options: PgConnectOptions,
    /// The least time between two of the sending task's work notifications.
    work_gap: Duration,
    /// The sending task's inbox. Started on first use, in the runtime of that call, and again
    /// when that runtime has gone.
    inbox: Mutex<Option<mpsc::UnboundedSender<Vec<Notice>>>>,
    /// Namespaces with new work, for this process's own workers.
    local: broadcast::Sender<LocalWork>,
    /// Commits of this process that raised notices, counted once each has returned.
    commits: AtomicU64,
    /// Results being recorded by this process now.
    recording: Arc<AtomicUsize>,
    /// This process's workers that claim as their own commits wake them.
    claimers: Arc<Mutex<Vec<LocalClaimer>>>,
    next_claimer: AtomicU64,
}

/// Whether a worker has a free slot now.
type HasRoom = Box<dyn Fn() -> bool + Send + Sync>;

/// A worker of this process ([`Engine::claim_locally`]).
struct LocalClaimer {
    id: u64,
    namespaces: BTreeSet<String>,
    has_room: HasRoom,
}

/// A worker's registration as a local claimer; ends when dropped (a stopping worker's last
/// results are announced to the others again).
pub struct LocalClaims {
    id: u64,
    claimers: Arc<Mutex<Vec<LocalClaimer>>>,
}

impl Drop for LocalClaims {
    fn drop(&mut self) {
        lock(&self.claimers).retain(|c| c.id != self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every edit under these locks is one call: a panic leaves them consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A result being recorded (see [`Notifier::recording`]); done when dropped.
pub(crate) struct Recording {
    count: Arc<AtomicUsize>,
    alone: bool,
}

impl Recording {
    /// No other result of this process was being recorded when this one began.
    pub(crate) fn alone(&self) -> bool {
        self.alone
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Notifier {
    pub(crate) fn new(pool: &PgPool, work_gap: Duration) -> Self {
        let options = (*pool.connect_options())
            .clone()
            .options([("synchronous_commit", "off")])
            .application_name(NOTIFIER_APPLICATION);
        Notifier {
            sender: Arc::from(uuid::Uuid::now_v7().to_string()),
            options,
            work_gap,
            inbox: Mutex::new(None),
            local: broadcast::channel(LOCAL_WAKES).0,
            commits: AtomicU64::new(0),
            recording: Arc::default(),
            claimers: Arc::default(),
            next_claimer: AtomicU64::new(0),
        }
    }

    /// Whether a worker of this process serving `namespace` has a free slot now.
    fn claimed_here(&self, namespace: &str) -> bool {
        lock(&self.claimers)
            .iter()
            .any(|c| c.namespaces.contains(namespace) && (c.has_room)())
    }

    /// Counts a result being recorded until the returned guard drops.
    pub(crate) fn recording(&self) -> Recording {
        let others = self.recording.fetch_add(1, Ordering::AcqRel);
        Recording {
            count: self.recording.clone(),
            alone: others == 0,
        }
    }

    /// Hands over the notices of a transaction that has committed. Never waits.
    pub(crate) fn send(&self, notices: Vec<Notice>) {
        if notices.is_empty() {
            return;
        }
        // The commit has returned: a claim begun from now on sees what it wrote.
        let commit = CommitSeq(self.commits.fetch_add(1, Ordering::SeqCst) + 1);
        let mut announced = Vec::with_capacity(notices.len());
        for n in notices {
            if let Notice::Work { namespace, .. } = &n {
                // No receiver is not an error: most processes run no worker.
                let _ = self.local.send(LocalWork {
                    namespace: Arc::from(namespace.as_str()),
                    commit,
                });
                if self.claimed_here(namespace) {
                    continue;
                }
            }
            announced.push(n);
        }
        self.announce(announced);
    }

    /// Sends notices to the database's listeners (after the commit that raised them).
    fn announce(&self, notices: Vec<Notice>) {
        if notices.is_empty() {
            return;
        }
        let mut inbox = lock(&self.inbox);
        let notices = match inbox.as_ref() {
            Some(tx) => match tx.send(notices) {
                Ok(()) => return,
                Err(mpsc::error::SendError(notices)) => notices,
            },
            None => notices,
        };
        // The engine's operations run on a runtime; were one called without, its notices are
        // lost like any other (nothing depends on them).
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(notices = notices.len(), "notifications not sent: no async runtime");
            return;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(notices);
        runtime.spawn(run(self.options.clone(), self.sender.clone(), self.work_gap, rx));
        *inbox = Some(tx);
    }
}

/// What the sending task holds until it sends: each namespace's work with the commits that
/// wrote it, and each ended task's payload.
#[derive(Default)]
struct Pending {
    work: BTreeMap<String, Vec<Option<TxId>>>,
    ended: BTreeSet<String>,
}

impl Pending {
    fn add(&mut self, notices: Vec<Notice>) {
        for n in notices {
            match n {
                Notice::Work { namespace, commit } => self.work.entry(namespace).or_default().push(commit),
                Notice::TaskEnded { payload } => {
                    self.ended.insert(payload);
                }
            }
        }
    }
}

/// The sending task: waits for notices and sends everything pending in one statement, one
/// notification a namespace (listing its work's commits) and one an ended task. Ends go at
/// once (a client waits on each); work goes `work_gap` after the last work sent at the
/// earliest, or with an end.
async fn run(
    options: PgConnectOptions,
    sender: Arc<str>,
    work_gap: Duration,
    mut inbox: mpsc::UnboundedReceiver<Vec<Notice>>,
) {
    let mut conn: Option<PgConnection> = None;
    let mut pending = Pending::default();
    let mut work_sent: Option<Instant> = None;
    let mut open = true;
    while open || !pending.work.is_empty() {
        let work_due = work_sent.map(|t| t + work_gap);
        let work_ready =
            |pending: &Pending| !pending.work.is_empty() && work_due.is_none_or(|due| due <= Instant::now());
        if open && !work_ready(&pending) {
            tokio::select! {
                got = inbox.recv() => match got {
                    Some(notices) => pending.add(notices),
                    None => open = false,
                },
                _ = tokio::time::sleep_until(work_due.unwrap_or_else(Instant::now)), if !pending.work.is_empty() => {}
            }
        }
        while let Ok(more) = inbox.try_recv() {
            pending.add(more);
        }
        let send_work = work_ready(&pending) || (!pending.work.is_empty() && (!pending.ended.is_empty() || !open));
        if pending.ended.is_empty() && !send_work {
            continue;
        }
        let work = if send_work {
            std::mem::take(&mut pending.work)
        } else {
            BTreeMap::new()
        };
        let (channels, payloads): (Vec<String>, Vec<String>) = work
            .into_iter()
            .map(|(namespace, commits)| (tasker_store::queue_channel(&namespace), work_payload(&sender, &commits)))
            .chain(
                std::mem::take(&mut pending.ended)
                    .into_iter()
                    .map(|payload| (tasker_store::TASK_ENDED_CHANNEL.to_string(), payload)),
            )
            .unzip();
        if send_work {
            work_sent = Some(Instant::now());
        }
        // One retry on a fresh connection: the one kept here may have ended since its last use.
        if send_once(&mut conn, &options, &channels, &payloads).await.is_err() {
            if let Err(e) = send_once(&mut conn, &options, &channels, &payloads).await {
                tracing::warn!(error = %e, notices = channels.len(), "notifications not sent");
            }
        }
    }
}

/// Sends one batch on the kept connection, connecting first when there is none; a connection
/// that failed is dropped.
async fn send_once(
    conn: &mut Option<PgConnection>,
    options: &PgConnectOptions,
    channels: &[String],
    payloads: &[String],
) -> Result<(), sqlx::Error> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(options.connect().await?),
    };
    let sent = sqlx::query("SELECT count(pg_notify(c, p)) FROM unnest($1::text[], $2::text[]) AS n(c, p)")
        .bind(channels)
        .bind(payloads)
        .execute(&mut *c)
        .await;
    if sent.is_err() {
        *conn = None;
    }
    sent.map(drop)
}

impl Engine {
    /// Registers a worker of this process that claims the work of `namespaces` as soon as this
    /// process's commits wake it ([`Engine::local_work`]), whenever `has_room` says it has a free
    /// slot: that work is then not announced to the database (see the module documentation).
    /// The registration ends when the returned value drops.
    pub fn claim_locally(
        &self,
        namespaces: &[String],
        has_room: impl Fn() -> bool + Send + Sync + 'static,
    ) -> LocalClaims {
        let id = self.notifier.next_claimer.fetch_add(1, Ordering::Relaxed);
        lock(&self.notifier.claimers).push(LocalClaimer {
            id,
            namespaces: namespaces.iter().cloned().collect(),
            has_room: Box::new(has_room),
        });
        LocalClaims {
            id,
            claimers: self.notifier.claimers.clone(),
        }
    }

    /// Announces work of `namespace` to every listening process (not to this one's workers): a
    /// local claimer whose claim filled its last free slot may have left messages behind.
    pub fn hand_over_work(&self, namespace: &str) {
        self.notifier.announce(vec![Notice::Work {
            namespace: namespace.to_string(),
            commit: None,
        }]);
    }

    /// Namespaces this process's transactions gave new work, as their commits return: a worker
    /// in the same process claims without waiting for the database's notification.
    /// `RecvError::Lagged` means some were missed (claim from every namespace).
    pub fn local_work(&self) -> broadcast::Receiver<LocalWork> {
        self.notifier.local.subscribe()
    }

    /// The last of this process's commits to have returned, as [`LocalWork::commit`] counts
    /// them. Read before a claim: a wake-up from this commit or an earlier one brings nothing
    /// that claim's read could not see.
    pub fn commits_returned(&self) -> CommitSeq {
        CommitSeq(self.notifier.commits.load(Ordering::SeqCst))
    }

    /// Whether a queue channel's notification came from this process, whose workers
    /// [`Engine::local_work`] woke already.
    pub fn notified_by_self(&self, payload: &str) -> bool {
        payload.split('/').next() == Some(&*self.notifier.sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_saw_the_commits_below_its_xmin_and_those_below_its_xmax_not_running() {
        let s = ReadSnapshot::parse("100:110:103,107").unwrap();
        assert!(s.saw(&[TxId(5), TxId(99), TxId(100), TxId(104), TxId(109)]));
        for unseen in [103, 107, 110, 111] {
            assert!(!s.saw(&[TxId(99), TxId(unseen)]), "{unseen}");
        }
        assert_eq!(
            ReadSnapshot::parse("7:7:"),
            Some(ReadSnapshot {
                xmin: 7,
                xmax: 7,
                running: vec![]
            })
        );
        assert!(ReadSnapshot::parse("7:x:").is_none() && ReadSnapshot::parse("7:8").is_none());
        assert!(
            !ReadSnapshot::default().saw(&[TxId(0)]),
            "the default snapshot saw nothing"
        );
    }

    #[test]
    fn a_work_payload_lists_its_commits_only_when_it_knows_all_of_them_and_they_are_few() {
        let listed = work_payload("p", &[Some(TxId(3)), Some(TxId(9))]);
        assert_eq!(listed, "p/3,9");
        assert_eq!(notified_commits(&listed), Some(vec![TxId(3), TxId(9)]));
        for unlisted in [
            work_payload("p", &[Some(TxId(3)), None]),
            work_payload("p", &[]),
            work_payload("p", &vec![Some(TxId(1)); MAX_LISTED_COMMITS + 1]),
        ] {
            assert_eq!(unlisted, "p");
            assert_eq!(notified_commits(&unlisted), None);
        }
        assert_eq!(notified_commits("p/3,x"), None, "a commit it cannot read lists none");
    }
}
