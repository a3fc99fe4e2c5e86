//! The process contract: every worker flag falls back to its environment variable, a flag wins
//! over the variable, and `--env test` given as a flag configures exactly what `TASKER_ENV=test`
//! does. One test function: it changes this process's environment, so nothing runs beside it.

use clap::Parser;
use tasker_engine::EngineConfig;
use tasker_worker::args::{parse_host_command, HostCommandOutcome, RustWorkerCommand};

const VARS: [&str; 7] = [
    "DATABASE_URL",
    "TASKER_TEMPLATE_PATH",
    "TASKER_WORKER_BIND",
    "TASKER_WORKER_CONCURRENCY",
    "TASKER_ENV",
    "TASKER_VISIBILITY_TIMEOUT_MS",
    "TASKER_RETRY_DELAY_SCALE",
];

fn engine_config(args: &[&str]) -> (tasker_worker::WorkerConfig, EngineConfig) {
    let command =
        RustWorkerCommand::try_parse_from(std::iter::once("tasker-worker").chain(args.iter().copied())).unwrap();
    let config = command.worker.into_config("postgres://unused/db".into());
    let engine = EngineConfig::new(config.environment.as_deref(), config.retry_delay_scale).unwrap();
    (config, engine)
}

#[test]
fn flags_fall_back_to_the_environment_and_win_over_it() {
    for v in VARS {
        std::env::remove_var(v);
    }
    // --env test as a flag, and TASKER_ENV=test, configure the same worker.
    let (by_flag, engine_by_flag) = engine_config(&["--env", "test"]);
    std::env::set_var("TASKER_ENV", "test");
    let (by_var, engine_by_var) = engine_config(&[]);
    assert_eq!(engine_by_flag.retry_delay_scale, 0.001);
    assert_eq!(engine_by_flag, engine_by_var);
    assert_eq!(by_flag.environment, by_var.environment);
    std::env::remove_var("TASKER_ENV");
    assert_eq!(engine_config(&[]).1.retry_delay_scale, 1.0);

    // Each variable, then the flag over it.
    std::env::set_var("TASKER_WORKER_CONCURRENCY", "5");
    std::env::set_var("TASKER_VISIBILITY_TIMEOUT_MS", "4000");
    std::env::set_var("TASKER_RETRY_DELAY_SCALE", "0.5");
    std::env::set_var("TASKER_TEMPLATE_PATH", "/from/env");
    let (config, engine) = engine_config(&["--env", "test"]);
    assert_eq!(config.concurrency, 5);
    assert_eq!(config.visibility_timeout.as_millis(), 4000);
    assert_eq!(
        engine.retry_delay_scale, 0.5,
        "an explicit scale wins over the test environment"
    );
    assert_eq!(config.template_path.unwrap().to_str(), Some("/from/env"));
    let (config, engine) = engine_config(&[
        "--concurrency",
        "3",
        "--retry-delay-scale",
        "0.25",
        "--templates",
        "/flag",
    ]);
    assert_eq!((config.concurrency, engine.retry_delay_scale), (3, 0.25));
    assert_eq!(config.template_path.unwrap().to_str(), Some("/flag"));

    // A hosted worker reads the same contract, plus its handler path.
    std::env::set_var("TASKER_HANDLER_PATH", "/h1:/h2");
    std::env::set_var("DATABASE_URL", "postgres://env/db");
    let HostCommandOutcome::Run {
        options, handler_path, ..
    } = parse_host_command("TypeScript", &[])
    else {
        panic!("not parsed")
    };
    assert_eq!(options.database_url, "postgres://env/db");
    assert_eq!((options.concurrency, options.retry_delay_scale), (Some(5), Some(0.5)));
    assert_eq!(handler_path.len(), 2);
    // A blank variable counts as unset.
    std::env::set_var("TASKER_WORKER_CONCURRENCY", " ");
    std::env::set_var("TASKER_ENV", "");
    let HostCommandOutcome::Run { options, .. } = parse_host_command("TypeScript", &[]) else {
        panic!("a blank variable was refused")
    };
    assert_eq!((options.concurrency, options.environment), (Some(8), None));
    std::env::set_var("TASKER_WORKER_CONCURRENCY", "zero");
    let HostCommandOutcome::Exit { code, output } = parse_host_command("TypeScript", &[]) else {
        panic!("a bad variable was accepted")
    };
    assert_eq!(code, 2);
    assert!(output.contains("--concurrency"), "{output}");
    for v in VARS.iter().chain(&["TASKER_HANDLER_PATH"]) {
        std::env::remove_var(v);
    }
}
