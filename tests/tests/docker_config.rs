//! `docker-compose.yml` and `docker/*.Dockerfile`, checked without a Docker engine: every
//! service's build context, Dockerfile and `COPY` sources exist; the server and every worker get
//! the process-contract environment, health checks on the port they bind; every worker language
//! gets its own templates and handlers, copied from where this repository keeps them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;
use tasker_e2e::{languages, repo_root};

/// The environment a worker process reads (`tasker_worker::args`, for every language's
/// `tasker-worker`), plus what the server reads.
const WORKER_ENV: [&str; 7] = [
    "DATABASE_URL",
    "TASKER_TEMPLATE_PATH",
    "TASKER_HANDLER_PATH",
    "TASKER_WORKER_BIND",
    "TASKER_WORKER_CONCURRENCY",
    "TASKER_ENV",
    "TASKER_VISIBILITY_TIMEOUT_MS",
];
const SERVER_ENV: [&str; 7] = [
    "DATABASE_URL",
    "TASKER_BIND",
    "TASKER_SWEEP_INTERVAL_MS",
    "TASKER_SWEEP_IDLE_MS",
    "TASKER_LOG_FORMAT",
    "TASKER_AUTH",
    "TASKER_OPEN",
];

fn compose() -> Value {
    let path = repo_root().join("docker-compose.yml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn services() -> BTreeMap<String, Value> {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services is a mapping");
    services
        .iter()
        .map(|(k, v)| (k.as_str().expect("service name").to_string(), v.clone()))
        .collect()
}

fn env_of(service: &Value) -> BTreeMap<String, String> {
    let Some(env) = service["environment"].as_mapping() else {
        return BTreeMap::new();
    };
    env.iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("environment value {other:?} is not a string"),
            };
            (k.as_str().expect("env name").to_string(), value)
        })
        .collect()
}

/// One `COPY` line: `--from` stage (if any), sources, destination.
struct Copy {
    from: Option<String>,
    sources: Vec<String>,
    dest: String,
}

/// Instructions of a Dockerfile with line continuations joined.
fn instructions(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = vec![];
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

fn copies(path: &Path) -> Vec<Copy> {
    instructions(path)
        .iter()
        .filter_map(|i| i.strip_prefix("COPY "))
        .map(|args| {
            let mut from = None;
            let mut words = vec![];
            for word in args.split_whitespace() {
                if let Some(stage) = word.strip_prefix("--from=") {
                    from = Some(stage.to_string());
                } else if !word.starts_with("--") {
                    words.push(word.to_string());
                }
            }
            let dest = words.pop().expect("COPY has a destination");
            Copy {
                from,
                sources: words,
                dest,
            }
        })
        .collect()
}

fn dockerfile_of(name: &str, service: &Value) -> (PathBuf, PathBuf) {
    let build = &service["build"];
    let context = repo_root().join(
        build["context"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: build.context")),
    );
    let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
    (context, dockerfile)
}

fn port_of(bind: &str) -> &str {
    bind.rsplit(':').next().expect("host:port")
}

fn health_port(name: &str, service: &Value) -> String {
    let test = service["healthcheck"]["test"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{name}: healthcheck.test"));
    let url = test
        .iter()
        .filter_map(Value::as_str)
        .find(|s| s.starts_with("http://"))
        .unwrap_or_else(|| panic!("{name}: the health check requests no http:// url"));
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_once('/').expect("url has a path");
    assert_eq!(
        path, "health",
        "{name}: the health check must request /health, got {url}"
    );
    port_of(authority).to_string()
}

#[test]
fn every_build_context_dockerfile_and_copy_source_exists() {
    let mut built = 0;
    for (name, service) in services() {
        if service.get("build").is_none() {
            continue;
        }
        let (context, dockerfile) = dockerfile_of(&name, &service);
        assert!(
            context.is_dir(),
            "{name}: build context {} is missing",
            context.display()
        );
        assert!(dockerfile.is_file(), "{name}: {} is missing", dockerfile.display());
        let from_lines: Vec<String> = instructions(&dockerfile)
            .into_iter()
            .filter(|i| i.starts_with("FROM "))
            .collect();
        assert!(
            from_lines.len() >= 2,
            "{name}: {} is not multi-stage",
            dockerfile.display()
        );
        for copy in copies(&dockerfile).iter().filter(|c| c.from.is_none()) {
            for source in &copy.sources {
                assert!(
                    context.join(source).exists(),
                    "{name}: {} copies {source}, which is not in the build context",
                    dockerfile.display()
                );
            }
        }
        built += 1;
    }
    assert_eq!(
        built, 5,
        "the server and one worker per language are built from this repository"
    );
}

#[test]
fn the_server_binds_where_it_is_published_and_health_checked() {
    let services = services();
    let server = services.get("server").expect("a server service");
    let env = env_of(server);
    for key in env.keys() {
        assert!(
            SERVER_ENV.contains(&key.as_str()),
            "server: {key} is not part of the server's contract"
        );
    }
    assert!(
        env["DATABASE_URL"].contains("@postgres:"),
        "server: DATABASE_URL must name the postgres service"
    );
    let port = port_of(&env["TASKER_BIND"]).to_string();
    assert!(
        env["TASKER_BIND"].starts_with("0.0.0.0:"),
        "server: bind all interfaces inside the container"
    );
    assert_eq!(
        env.get("TASKER_AUTH").map(String::as_str),
        Some("tokens"),
        "server: a published port asks for API tokens"
    );
    assert_eq!(health_port("server", server), port);
    let published: Vec<String> = server["ports"]
        .as_sequence()
        .expect("server publishes its port")
        .iter()
        .map(|p| p.as_str().expect("port mapping").to_string())
        .collect();
    assert!(
        published.iter().any(|p| p.rsplit(':').next() == Some(port.as_str())),
        "server: {published:?} does not publish container port {port}"
    );
}

#[test]
fn every_worker_language_has_its_own_templates_handlers_and_health_check() {
    let services = services();
    for lang in languages() {
        let name = format!("worker-{}", lang.name);
        let service = services.get(&name).unwrap_or_else(|| panic!("no {name} service"));
        let env = env_of(service);
        for key in env.keys() {
            assert!(
                WORKER_ENV.contains(&key.as_str()),
                "{name}: {key} is not part of the worker contract"
            );
        }
        assert!(
            env["DATABASE_URL"].contains("@postgres:"),
            "{name}: DATABASE_URL must name the postgres service"
        );
        let bind = &env["TASKER_WORKER_BIND"];
        assert!(
            bind.starts_with("0.0.0.0:"),
            "{name}: bind all interfaces inside the container"
        );
        assert_eq!(
            health_port(&name, service),
            port_of(bind),
            "{name}: health check and bind differ"
        );
        assert!(
            service["depends_on"].get("server").is_some(),
            "{name}: start after the server (it migrates the schema)"
        );

        let (_, dockerfile) = dockerfile_of(&name, service);
        let copies = copies(&dockerfile);
        let templates = format!(
            "fixtures/task_templates/{}",
            lang.template_dir().file_name().unwrap().to_string_lossy()
        );
        let template_dest = copies
            .iter()
            .find(|c| c.from.is_none() && c.sources == [templates.clone()])
            .unwrap_or_else(|| panic!("{name}: {} does not copy {templates}", dockerfile.display()));
        assert_eq!(
            env["TASKER_TEMPLATE_PATH"], template_dest.dest,
            "{name}: TASKER_TEMPLATE_PATH"
        );

        if lang.name == "rust" {
            assert!(
                !env.contains_key("TASKER_HANDLER_PATH"),
                "{name}: Rust handlers are compiled in"
            );
            continue;
        }
        let handler_path = env
            .get("TASKER_HANDLER_PATH")
            .unwrap_or_else(|| panic!("{name}: an interpreted worker needs TASKER_HANDLER_PATH"));
        let examples_dest = copies
            .iter()
            .find(|c| c.sources.iter().any(|s| s.contains(&format!("workers/{}/", lang.name))))
            .unwrap_or_else(|| panic!("{name}: {} copies no handlers", dockerfile.display()));
        for dir in ["blog", "test_workflows"] {
            let expected = format!("{}/{dir}", examples_dest.dest);
            assert!(
                handler_path.split(':').any(|p| p == expected),
                "{name}: TASKER_HANDLER_PATH {handler_path} lacks {expected}"
            );
            let source = repo_root().join(format!("workers/{}/examples/{dir}", lang.name));
            assert!(source.is_dir(), "{name}: {} is missing", source.display());
        }
    }
}

#[test]
fn dockerfile_defaults_agree_with_the_compose_environment() {
    for (name, service) in services() {
        if !name.starts_with("worker-") {
            continue;
        }
        let (_, dockerfile) = dockerfile_of(&name, &service);
        let env = env_of(&service);
        let defaults: Vec<String> = instructions(&dockerfile)
            .into_iter()
            .filter_map(|i| i.strip_prefix("ENV ").map(str::to_string))
            .collect();
        for pair in defaults.iter().flat_map(|d| d.split_whitespace()) {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            if let Some(set) = env.get(key) {
                assert_eq!(
                    set,
                    value,
                    "{name}: {key} in {} and in docker-compose.yml differ",
                    dockerfile.display()
                );
            }
        }
    }
}

#[test]
fn prometheus_scrapes_the_server_and_every_worker_where_they_bind_and_loads_the_alerts() {
    let services = services();
    let prometheus = services.get("prometheus").expect("a prometheus service");
    let mounted: Vec<&str> = prometheus["volumes"]
        .as_sequence()
        .expect("prometheus mounts its configuration")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        mounted
            .iter()
            .any(|v| v.starts_with("./deploy/prometheus:/etc/prometheus")),
        "prometheus: mount ./deploy/prometheus at /etc/prometheus, got {mounted:?}"
    );
    let path = repo_root().join("deploy/prometheus/prometheus.yml");
    let config: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).expect("prometheus.yml")).expect("yaml");
    let rule_files: Vec<&str> = config["rule_files"]
        .as_sequence()
        .expect("rule_files")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for rules in &rule_files {
        assert!(
            repo_root().join("deploy/prometheus").join(rules).is_file(),
            "rule file {rules} is not beside prometheus.yml"
        );
    }
    assert!(rule_files.contains(&"alerts.yml"), "{rule_files:?}");
    let mut targets = std::collections::BTreeSet::new();
    for job in config["scrape_configs"].as_sequence().expect("scrape_configs") {
        for sc in job["static_configs"].as_sequence().expect("static_configs") {
            for t in sc["targets"].as_sequence().expect("targets") {
                targets.insert(t.as_str().expect("target").to_string());
            }
        }
    }
    let mut expected = std::collections::BTreeSet::new();
    expected.insert(format!(
        "server:{}",
        port_of(&env_of(&services["server"])["TASKER_BIND"])
    ));
    for lang in languages() {
        let name = format!("worker-{}", lang.name);
        expected.insert(format!(
            "{name}:{}",
            port_of(&env_of(&services[&name])["TASKER_WORKER_BIND"])
        ));
    }
    assert_eq!(
        targets, expected,
        "Prometheus must scrape exactly the server and every worker"
    );
}
