//! The `tasker` binary, for everything that needs no database: template validation, argument
//! checking, and (in `tasks`) the task commands against a small fake HTTP server on 127.0.0.1.

// In a subdirectory so that cargo does not take them for test targets of their own.
#[path = "cli/fake_server.rs"]
mod fake_server;
#[path = "cli/tasks.rs"]
mod tasks;

use std::path::Path;
use std::process::{Command, Output};

const LINEAR: &str = "\
name: linear_workflow
namespace_name: tasker_tests_rs
version: 1.0.0
steps:
  - name: a
    handler: {callable: \"tests::a\"}
  - name: b
    handler: {callable: \"tests::b\"}
    dependencies: [a]
";

/// An unknown top-level key, a dependency cycle and a version that is not MAJOR.MINOR.PATCH.
const BROKEN: &str = "\
name: broken
namespace_name: tasker_tests_rs
version: 1.0
colour: blue
steps:
  - name: a
    handler: {callable: \"tests::a\"}
    dependencies: [b]
  - name: b
    handler: {callable: \"tests::b\"}
    dependencies: [a]
";

fn tasker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tasker"))
        .args(args)
        .env_remove("TASKER_URL")
        .env_remove("DATABASE_URL")
        .output()
        .expect("run tasker")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[test]
fn validate_good_file_prints_ok() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "linear.yaml", LINEAR);
    let out = tasker(&["template", "validate", &file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("ok  {file}  tasker_tests_rs/linear_workflow@1.0.0\n")
    );
}

#[test]
fn validate_bad_file_prints_every_problem_with_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "broken.yaml", BROKEN);
    let out = tasker(&["template", "validate", &file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 3, "{stderr}");
    assert!(lines.iter().all(|l| l.starts_with(&format!("{file}: "))), "{stderr}");
    assert!(
        lines.iter().any(|l| l.contains("colour") && l.contains("unknown key")),
        "{stderr}"
    );
    assert!(lines.iter().any(|l| l.contains("dependency cycle")), "{stderr}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("version") && l.contains("semantic version")),
        "{stderr}"
    );
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn validate_directory_recurses_and_stops_at_the_first_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "a/linear.yml", LINEAR);
    let bad = write(dir.path(), "b_broken.yaml", BROKEN);
    write(dir.path(), "c/later.yaml", &LINEAR.replace("linear_workflow", "later"));
    write(dir.path(), "notes.txt", "not a template");
    let root = dir.path().display().to_string();

    let out = tasker(&["template", "validate", &root]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        format!("ok  {good}  tasker_tests_rs/linear_workflow@1.0.0\n")
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.lines().count() >= 3 && stderr.lines().all(|l| l.starts_with(&bad)),
        "{stderr}"
    );

    std::fs::remove_file(&bad).unwrap();
    let out = tasker(&["template", "validate", &root]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2, "{}", text(&out.stdout));
}

#[test]
fn validate_rejects_two_files_defining_the_same_template() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "one.yaml", LINEAR);
    let second = write(dir.path(), "two.yaml", LINEAR);
    let out = tasker(&["template", "validate", &first, &second]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&second) && stderr.contains("already defined in"),
        "{stderr}"
    );
}

#[test]
fn validate_missing_path_or_empty_directory_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = tasker(&[
        "template",
        "validate",
        &dir.path().join("nope.yaml").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nope.yaml"));
    let out = tasker(&["template", "validate", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no *.yaml or *.yml"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn help_lists_the_subcommands() {
    let out = tasker(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for cmd in ["server", "db", "dev-db", "template", "task"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(&format!("{cmd} "))),
            "{cmd}: {help}"
        );
    }
    let out = tasker(&["task", "--help"]);
    let help = text(&out.stdout);
    for cmd in ["create", "get", "list", "watch"] {
        assert!(help.contains(cmd), "{cmd}: {help}");
    }
}

#[test]
fn dev_db_url_fails_when_not_running() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tasker"))
        .args(["dev-db", "url"])
        .env("TASKER_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains("not running"), "{}", text(&out.stderr));
}
