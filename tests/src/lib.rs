//! End-to-end harness: a fresh database on a real PostgreSQL (the dev db, or `DATABASE_URL`),
//! the `tasker` server binary and worker processes of any language on free ports, and helpers
//! to drive them over the REST API.
//!
//! The suites are parametrised by [`Lang`]: adding a language worker is one entry in
//! [`languages`]. The binaries must be built first (`cargo build --bins`; `cargo make test`
//! does it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

pub mod blog;
pub mod conformance;
pub mod masking;
pub mod otlp;

/// A worker language the suites run against.
#[derive(Debug, Clone)]
pub struct Lang {
    /// `rust`, `python`, `ruby`, `typescript`.
    pub name: &'static str,
    /// Namespace suffix, e.g. `rs`.
    pub suffix: &'static str,
    /// The worker executable (relative to the target dir for Rust).
    program: PathBuf,
    args: Vec<String>,
    /// `fixtures/task_templates/<dir>`.
    template_dir: PathBuf,
    /// `TASKER_HANDLER_PATH` (directories joined with `:`), for interpreted languages.
    handler_path: Option<String>,
    /// Extra environment the worker process needs (e.g. the private gem home for Ruby).
    env: Vec<(String, String)>,
    /// The verb that installs this language's worker, for the message when it is missing.
    setup: &'static str,
}

impl Lang {
    /// `<base>_<suffix>`, e.g. `tasker_tests_rs`.
    pub fn namespace(&self, base: &str) -> String {
        format!("{base}_{}", self.suffix)
    }

    pub fn template_dir(&self) -> &Path {
        &self.template_dir
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where cargo put the binaries of this build profile.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

pub fn binary(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the binaries first (`cargo build --bins`, or `cargo make test`)",
        p.display()
    );
    p
}

/// Every worker language in the suites.
pub fn languages() -> Vec<Lang> {
    vec![
        Lang {
            name: "rust",
            suffix: "rs",
            program: PathBuf::from("tasker-worker-rust"),
            args: vec![],
            template_dir: repo_root().join("fixtures/task_templates/rust"),
            handler_path: None,
            env: vec![],
            setup: "build-bins",
        },
        python(),
        ruby(),
        typescript(),
    ]
}

/// The Python interpreter that has `tasker_core` installed: `TASKER_PYTHON`, else the checkout's
/// `.venv` (`cargo make python-setup` creates it).
pub fn python_interpreter() -> PathBuf {
    match std::env::var_os("TASKER_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".venv/bin/python"),
    }
}

fn python() -> Lang {
    let examples = repo_root().join("workers/python/examples");
    Lang {
        name: "python",
        suffix: "py",
        program: python_interpreter(),
        args: vec!["-m".into(), "tasker_core.worker".into()],
        template_dir: repo_root().join("fixtures/task_templates/python"),
        handler_path: Some(handler_path(&examples)),
        env: vec![],
        setup: "python-setup",
    }
}

/// `TASKER_HANDLER_PATH` for an interpreted worker: its blog and test-workflow handler directories.
fn handler_path(examples: &Path) -> String {
    format!(
        "{}:{}",
        examples.join("blog").display(),
        examples.join("test_workflows").display()
    )
}

/// The gem home `cargo make ruby-setup` installs the Ruby worker gem into: `TASKER_GEM_HOME`, else
/// the checkout's `.gems`.
pub fn ruby_gem_home() -> PathBuf {
    match std::env::var_os("TASKER_GEM_HOME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".gems"),
    }
}

/// The installed gem's `tasker-worker` executable, serving the Ruby blog and test handlers.
fn ruby() -> Lang {
    let examples = repo_root().join("workers/ruby/examples");
    let gems = ruby_gem_home();
    Lang {
        name: "ruby",
        suffix: "rb",
        program: gems.join("bin/tasker-worker"),
        args: vec![],
        template_dir: repo_root().join("fixtures/task_templates/ruby"),
        handler_path: Some(handler_path(&examples)),
        env: vec![
            ("GEM_HOME".into(), gems.display().to_string()),
            ("GEM_PATH".into(), gems.display().to_string()),
        ],
        setup: "ruby-setup",
    }
}

/// The Node.js that runs the TypeScript worker: `TASKER_NODE`, else `node` on `PATH`.
pub fn node_interpreter() -> PathBuf {
    if let Some(p) = std::env::var_os("TASKER_NODE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("node"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("/usr/bin/node"))
}

/// The compiled `@tasker/worker` package (`cargo make node-setup`): its `tasker-worker` bin,
/// serving the compiled TypeScript blog and test handlers.
fn typescript() -> Lang {
    let package = repo_root().join("workers/typescript");
    let examples = package.join("dist/examples");
    Lang {
        name: "typescript",
        suffix: "ts",
        program: node_interpreter(),
        args: vec![package.join("dist/src/bin/tasker-worker.js").display().to_string()],
        template_dir: repo_root().join("fixtures/task_templates/typescript"),
        handler_path: Some(handler_path(&examples)),
        env: vec![],
        setup: "node-setup",
    }
}

pub fn lang(name: &str) -> Lang {
    languages()
        .into_iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("unknown language {name}"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Options of a [`Stack`].
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Extra environment for every process (e.g. `TASKER_RETRY_DELAY_SCALE`).
    pub env: Vec<(String, String)>,
    /// The PostgreSQL server to create the stack's database on (a [`PrivateDb`]'s URL); the
    /// shared dev database (or `DATABASE_URL`) when None.
    pub server: Option<String>,
}

/// A PostgreSQL cluster of one test's own, on a fixed port, that the test may stop (as a crash
/// would) and start again under the same URL. Removed when dropped.
pub struct PrivateDb {
    devdb: tasker_devdb::DevDb,
    url: String,
    _dir: tempfile::TempDir,
}

impl PrivateDb {
    pub fn start() -> PrivateDb {
        let dir = tempfile::Builder::new()
            .prefix("tasker-pg-")
            .tempdir()
            .expect("temp dir");
        let devdb = tasker_devdb::DevDb::new(dir.path()).with_port(free_port());
        let url = devdb.start().expect("a private PostgreSQL starts").url;
        PrivateDb { devdb, url, _dir: dir }
    }

    /// The server's URL (its `postgres` database); the same after a restart.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Kills the server without a checkpoint (`pg_ctl stop -m immediate`).
    pub fn crash(&self) {
        self.devdb
            .stop_with(tasker_devdb::StopMode::Immediate)
            .expect("PostgreSQL stops");
    }

    /// What the server has logged (`postgres.log`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.devdb.log_file()).unwrap_or_default()
    }

    /// Starts it again (crash recovery from the WAL), on the same port.
    pub fn restart(&self) {
        let info = self.devdb.start().expect("PostgreSQL starts again");
        assert_eq!(info.url, self.url, "the server came back on another port");
    }
}

impl Drop for PrivateDb {
    fn drop(&mut self) {
        let _ = self.devdb.stop_with(tasker_devdb::StopMode::Immediate);
    }
}

struct Proc {
    name: String,
    child: Child,
}

/// One fresh database plus the processes started on it. Dropping it kills them, then drops
/// the database unless a test is failing.
pub struct Stack {
    pub database_url: String,
    /// Dropped after the processes (fields drop after [`Stack`]'s own `Drop`).
    database: tasker_store::ScratchDatabase,
    pub server_url: String,
    servers: Vec<Proc>,
    workers: Vec<Proc>,
    /// Each worker's HTTP address (`/health`, `/observability/snapshots`), by worker index.
    worker_urls: Vec<String>,
    env: Vec<(String, String)>,
    log_dir: PathBuf,
    pub http: reqwest::Client,
}

/// The spec name of a built-in observability subscriber in `lang` (§0.2 naming, module
/// `observability`): `class` is `BusinessMetricsSubscriber` or `PerformanceMonitoringSubscriber`.
pub fn subscriber_name(lang: &Lang, class: &str) -> String {
    match lang.name {
        "rust" => format!("observability::{class}"),
        "ruby" => format!("Observability::{class}"),
        "python" => format!("observability.{class}"),
        _ => format!("Observability.{class}"),
    }
}

/// `TASKER_SUBSCRIBERS` naming both observability subscribers in `lang`.
pub fn both_subscribers(lang: &Lang) -> String {
    format!(
        "{},{}",
        subscriber_name(lang, "BusinessMetricsSubscriber"),
        subscriber_name(lang, "PerformanceMonitoringSubscriber")
    )
}

/// Whether the server says a task document is terminal (its `terminal` field).
pub fn is_terminal(task: &Value) -> bool {
    task["terminal"].as_bool() == Some(true)
}

impl Stack {
    /// A fresh database, one server, and one worker of `lang` (when given).
    pub async fn start(lang: Option<&Lang>, opts: StackOptions) -> Stack {
        let base = match opts.server {
            Some(url) => url,
            None => tokio::task::spawn_blocking(tasker_devdb::resolve_database_url)
                .await
                .expect("join")
                .expect("a PostgreSQL server (dev db or DATABASE_URL)"),
        };
        let database = tasker_store::ScratchDatabase::create(&base, "e2e")
            .await
            .expect("create database");
        let database_url = database.url().to_string();
        let log_dir = bin_dir().join("e2e-logs").join(database.name());
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let mut env = vec![
            ("DATABASE_URL".to_string(), database_url.clone()),
            ("TASKER_ENV".to_string(), "test".to_string()),
            ("TASKER_SWEEP_INTERVAL_MS".to_string(), "500".to_string()),
            ("RUST_LOG".to_string(), "info,sqlx=warn".to_string()),
        ];
        env.extend(opts.env);
        let mut stack = Stack {
            database_url,
            database,
            server_url: String::new(),
            servers: vec![],
            workers: vec![],
            worker_urls: vec![],
            env,
            log_dir,
            http: reqwest::Client::new(),
        };
        stack.start_server().await;
        if let Some(l) = lang {
            stack.start_worker(l).await;
        }
        stack
    }

    fn spawn(&self, name: &str, program: &Path, args: &[String], extra: &[(String, String)]) -> Child {
        let log = std::fs::File::create(self.log_dir.join(format!("{name}.log"))).expect("log file");
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_remove("TASKER_TEMPLATE_PATH")
            .envs(self.env.iter().cloned())
            .envs(extra.iter().cloned())
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
    }

    /// Starts a server on the stack's url (again, after [`Stack::kill_server`]) or, with
    /// `extra_port`, a second server on another port. Waits for `/ready`.
    /// Starts a server on a port of its own choosing (it announces the address it bound, so no
    /// other process can take the port in between); the first one after none ran becomes
    /// `server_url`. Waits for its `/ready`.
    pub async fn start_server(&mut self) -> String {
        let name = format!("server{}", self.servers.len());
        let child = self.spawn(
            &name,
            &binary("tasker"),
            &["server".into()],
            &[("TASKER_BIND".into(), "127.0.0.1:0".into())],
        );
        let first = self.servers.is_empty();
        self.servers.push(Proc {
            name: name.clone(),
            child,
        });
        let url = self.announced(&name, "tasker server listening on ").await;
        self.wait_http_ok(&format!("{url}/ready"), &name).await;
        if first {
            self.server_url = url.clone();
        }
        url
    }

    /// How process `name` ended, if it has.
    fn exit_status(&mut self, name: &str) -> Option<std::process::ExitStatus> {
        self.servers
            .iter_mut()
            .chain(self.workers.iter_mut())
            .find(|p| p.name == name)
            .and_then(|p| p.child.try_wait().ok().flatten())
    }

    /// The URL a process prints after `marker` once it listens.
    async fn announced(&mut self, name: &str, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(url) = self.log_text(name).lines().find_map(|l| {
                l.split_once(marker)
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .map(str::to_string)
            }) {
                return url;
            }
            let exited = self.exit_status(name);
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "{name} did not announce its address ({exited:?}); log:\n{}",
                    self.log_tail(name)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Starts one more worker of `lang`; returns its index. Waits for its `/health`.
    pub async fn start_worker(&mut self, lang: &Lang) -> usize {
        self.start_worker_with(lang, &[]).await
    }

    pub async fn start_worker_with(&mut self, lang: &Lang, extra_env: &[(&str, &str)]) -> usize {
        let name = self.spawn_worker(lang, extra_env);
        let url = self.announced(&name, "tasker worker health on ").await;
        self.wait_http_ok(&format!("{url}/health"), &name).await;
        self.worker_urls.push(url);
        self.workers.len() - 1
    }

    /// Starts a worker of `lang` that is expected to refuse to start, and waits (up to 60 s)
    /// for it to exit: its exit code and everything it wrote.
    pub async fn run_worker_to_exit(&mut self, lang: &Lang, extra_env: &[(&str, &str)]) -> (Option<i32>, String) {
        let name = self.spawn_worker(lang, extra_env);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.exit_status(&name) {
                return (status.code(), self.log_text(&name));
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not exit; log:\n{}",
                self.log_tail(&name)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Spawns a worker of `lang` (with the stack's templates and handlers); returns its name.
    fn spawn_worker(&mut self, lang: &Lang, extra_env: &[(&str, &str)]) -> String {
        let program = if lang.program.is_relative() && lang.program.components().count() == 1 {
            binary(lang.program.to_str().expect("utf-8"))
        } else {
            assert!(
                lang.program.exists(),
                "{} worker: {} is missing (run `cargo make {}`)",
                lang.name,
                lang.program.display(),
                lang.setup
            );
            lang.program.clone()
        };
        for arg in lang.args.iter().map(Path::new).filter(|a| a.is_absolute()) {
            assert!(
                arg.exists(),
                "{} worker: {} is missing (run `cargo make {}`)",
                lang.name,
                arg.display(),
                lang.setup
            );
        }
        let mut env = vec![
            (
                "TASKER_TEMPLATE_PATH".to_string(),
                lang.template_dir.display().to_string(),
            ),
            ("TASKER_WORKER_BIND".to_string(), "127.0.0.1:0".to_string()),
        ];
        if let Some(h) = &lang.handler_path {
            env.push(("TASKER_HANDLER_PATH".into(), h.clone()));
        }
        env.extend(lang.env.iter().cloned());
        env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let name = format!("worker{}-{}", self.workers.len(), lang.name);
        let child = self.spawn(&name, &program, &lang.args, &env);
        self.workers.push(Proc {
            name: name.clone(),
            child,
        });
        name
    }

    /// Worker `i`'s HTTP base URL.
    pub fn worker_url(&self, i: usize) -> &str {
        &self.worker_urls[i]
    }

    /// Worker `i`'s `/observability/snapshots` once its `performance` subscriber has counted
    /// `ended` tasks (its subscribers have seen them end), or after 30 s.
    pub async fn settled_snapshots(&self, i: usize, performance: &str, ended: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.worker_get(i, "/observability/snapshots").await;
            let counted: i64 = s[performance]["workflows"]
                .as_object()
                .map(|w| w.values().filter_map(|w| w["count"].as_i64()).sum())
                .unwrap_or(0);
            if counted >= ended || Instant::now() > deadline {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many tasks of `lang`'s namespaces have ended (complete or error).
    pub async fn ended_tasks(&self, lang: &Lang) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM tasker_tasks WHERE namespace LIKE '%\\_' || $1 AND status IN ('complete', 'error')",
        )
        .bind(lang.suffix)
        .fetch_one(&self.pool().await)
        .await
        .expect("count ended tasks")
    }

    /// `GET` of a worker's HTTP endpoint, as JSON.
    pub async fn worker_get(&self, i: usize, path: &str) -> Value {
        let url = format!("{}{path}", self.worker_url(i));
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(r.status().is_success(), "GET {url}: {}", r.status());
        r.json().await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    async fn wait_http_ok(&mut self, url: &str, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.http.get(url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            let exited = self.exit_status(name);
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "{name} did not become ready at {url} ({exited:?}); log:\n{}",
                    self.log_tail(name)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Everything a process wrote (`server0`, `worker0-python`, ...).
    pub fn log_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The last lines a process wrote.
    pub fn log_tail(&self, name: &str) -> String {
        let text = self.log_text(name);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Fails when a process's log (a file, not a terminal) holds an ANSI escape sequence.
    pub fn assert_logs_are_plain_text(&self) {
        for p in self.servers.iter().chain(&self.workers) {
            let text = std::fs::read_to_string(self.log_dir.join(format!("{}.log", p.name))).unwrap_or_default();
            assert!(!text.is_empty(), "{} wrote no log", p.name);
            assert!(
                !text.contains('\u{1b}'),
                "{} wrote colour codes into its log file:\n{}",
                p.name,
                self.log_tail(&p.name)
            );
        }
    }

    /// The name and process id of every server and worker started.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.servers
            .iter()
            .chain(self.workers.iter())
            .map(|p| (p.name.clone(), p.child.id()))
            .collect()
    }

    /// `kill -9` of worker `i`.
    pub fn kill_worker(&mut self, i: usize) {
        let p = &mut self.workers[i];
        let _ = p.child.kill();
        let _ = p.child.wait();
    }

    /// SIGTERM to worker `i`; returns its exit status once it stopped.
    pub async fn terminate_worker(&mut self, i: usize, deadline: Duration) -> std::process::ExitStatus {
        let p = &mut self.workers[i];
        let _ = Command::new("kill").arg("-TERM").arg(p.child.id().to_string()).status();
        let end = Instant::now() + deadline;
        loop {
            if let Some(s) = p.child.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < end, "worker did not stop within {deadline:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9` of every server.
    pub fn kill_servers(&mut self) {
        for mut p in self.servers.drain(..) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// A pool on the stack's database, for assertions on the audit trail.
    pub async fn pool(&self) -> sqlx::PgPool {
        tasker_store::connect(&self.database_url, 2).await.expect("connect")
    }

    /// POST /v1/tasks; returns (status, body).
    pub async fn create_task(&self, body: &Value) -> (u16, Value) {
        self.post_json(&format!("{}/v1/tasks", self.server_url), body).await
    }

    pub async fn post_json(&self, url: &str, body: &Value) -> (u16, Value) {
        let r = self.http.post(url).json(body).send().await.expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.server_url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.server_url))
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates a task and asserts 201; returns its uuid.
    pub async fn create_ok(&self, body: &Value) -> Uuid {
        let (status, resp) = self.create_task(body).await;
        assert_eq!(status, 201, "create failed: {resp}");
        resp["task_uuid"].as_str().expect("task_uuid").parse().expect("uuid")
    }

    pub async fn task(&self, uuid: Uuid) -> Value {
        let (status, body) = self.get(&format!("/v1/tasks/{uuid}")).await;
        assert_eq!(status, 200, "GET task {uuid}: {body}");
        body
    }

    /// Waits until the task is terminal; panics with its state and the worker logs after `deadline`.
    pub async fn wait_for_task(&self, uuid: Uuid, deadline: Duration) -> Value {
        self.wait_for(uuid, deadline, is_terminal).await
    }

    /// Waits until `cond(task)` holds.
    pub async fn wait_for(&self, uuid: Uuid, deadline: Duration, cond: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + deadline;
        loop {
            let t = self.task(uuid).await;
            if cond(&t) {
                return t;
            }
            if Instant::now() > end {
                let logs: Vec<String> = self
                    .workers
                    .iter()
                    .map(|w| format!("--- {}\n{}", w.name, self.log_tail(&w.name)))
                    .collect();
                panic!(
                    "task {uuid} did not reach the condition within {deadline:?}: {t:#}\n{}",
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The steps of a task, by name.
    pub async fn steps(&self, uuid: Uuid) -> std::collections::BTreeMap<String, Value> {
        step_map(&self.task(uuid).await)
    }

    /// `tasker token <args>` on the stack's database, as an operator runs it: its stdout.
    pub fn tasker_token(&self, args: &[&str]) -> String {
        let out = Command::new(binary("tasker"))
            .arg("token")
            .args(args)
            .env("DATABASE_URL", &self.database_url)
            .output()
            .expect("run tasker token");
        assert!(
            out.status.success(),
            "tasker token {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// A new API token with these scopes (`--scope` each); returns its secret.
    pub fn create_token(&self, name: &str, scopes: &[&str], expires_in: Option<&str>) -> String {
        let mut args = vec!["create", "--name", name];
        for s in scopes {
            args.extend(["--scope", s]);
        }
        if let Some(e) = expires_in {
            args.extend(["--expires-in", e]);
        }
        self.tasker_token(&args).trim().to_string()
    }
}

/// An HTTP client that sends `secret` as its bearer token with every request.
pub fn client_with_token(secret: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {secret}")).expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// `(status, JSON body)` of a response.
pub async fn status_and_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET url` with `client`: `(status, JSON body)`.
pub async fn get_with(client: &reqwest::Client, url: &str) -> (u16, Value) {
    status_and_json(client.get(url).send().await.expect("GET")).await
}

/// `POST url` of a JSON body with `client`: `(status, JSON body)`.
pub async fn post_with(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    status_and_json(client.post(url).json(body).send().await.expect("POST")).await
}

/// A task's or step row's timestamp as the API writes it (`created_at`, `started_at`,
/// `completed_at`: serde's RFC 3339, whose precision is not the §0.7 result format, so it is
/// parsed rather than format-checked).
pub fn api_time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str().expect("timestamp").parse().expect("rfc3339")
}

/// The `steps` array of a task body, keyed by step name.
pub fn step_map(task: &Value) -> std::collections::BTreeMap<String, Value> {
    task["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["name"].as_str().expect("name").to_string(), s.clone()))
        .collect()
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.kill_all();
    }
}

impl Stack {
    /// Kills every server and worker process of the stack and reaps it.
    fn kill_all(&mut self) {
        for p in self.servers.iter_mut().chain(self.workers.iter_mut()) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// Stops every process of the stack and drops its database now, reporting a failure
    /// (benchmarks, whose databases reach gigabytes, call this when done).
    pub async fn remove(mut self) -> anyhow::Result<()> {
        self.kill_all();
        self.database.remove().await?;
        Ok(())
    }

    /// Asserts that the database holds no task and no step (a rejected request creates nothing).
    pub async fn assert_no_task_created(&self) {
        let pool = self.pool().await;
        let counts: (i64, i64) =
            sqlx::query_as("SELECT (SELECT count(*) FROM tasker_tasks), (SELECT count(*) FROM tasker_steps)")
                .fetch_one(&pool)
                .await
                .expect("count tasks and steps");
        assert_eq!(counts, (0, 0), "a rejected request leaves no task and no step");
    }
}

/// One `#[tokio::test]` per (language, case): `language_suite!([rust, python], [case_a, case_b]);`
/// expands to `mod rust { async fn case_a() { super::case_a(lang("rust")).await } ... }` and
/// the same for `python`. Each case is an `async fn(Lang)` of the calling test file.
#[macro_export]
macro_rules! language_suite {
    ([$($lang:ident),+ $(,)?], $cases:tt) => {
        $( $crate::language_suite!(@one $lang, $cases); )+
    };
    (@one $lang:ident, [$($case:ident),+ $(,)?]) => {
        mod $lang {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::lang(stringify!($lang))).await;
                }
            )+
        }
    };
}

/// The `p`th percentile of `sorted` (nearest rank); NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Adds `section` at the top of docs/benchmarks.md (the newest run first); returns its path.
pub fn record_benchmark(section: &str) -> std::io::Result<PathBuf> {
    let path = repo_root().join("docs/benchmarks.md");
    let header =
        "# Benchmarks\n\nProduced by `cargo make bench` (tests/src/bin/tasker-bench.rs). The newest run is first.\n\n";
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let old_runs = old.strip_prefix(header).unwrap_or("");
    std::fs::write(&path, format!("{header}{section}\n{old_runs}"))?;
    Ok(path)
}
