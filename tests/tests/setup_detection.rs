//! `tools/setup.sh --check` against fake filesystem roots and a bare PATH: each prerequisite is
//! detected by the file the build really loads or the binary it really runs, so a machine that
//! has only look-alikes (the `libclang-cpp14` package, an old PostgreSQL) gets the package
//! installed instead of a build that fails later.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tasker_e2e::repo_root;

struct Check {
    ok: bool,
    stderr: String,
}

impl Check {
    fn names(&self, package: &str) -> bool {
        self.stderr
            .lines()
            .any(|l| l.contains(&format!("(Debian package {package})")))
    }
}

fn check(root: &Path, path: Option<&Path>) -> Check {
    let mut cmd = Command::new("/bin/bash");
    cmd.arg(repo_root().join("tools/setup.sh"))
        .arg("--check")
        .env("TASKER_SETUP_ROOT", root)
        .env_remove("LIBCLANG_PATH");
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let out = cmd.output().expect("run tools/setup.sh");
    Check {
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn touch(root: &Path, rel: &str) -> PathBuf {
    let p = root.join(rel.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, b"").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn libclang_cpp_alone_does_not_count_as_libclang() {
    let root = tempfile::tempdir().unwrap();
    // What Debian 12's preinstalled libclang-cpp14 ships: bindgen cannot use it.
    touch(root.path(), "/usr/lib/llvm-14/lib/libclang-cpp.so.14");
    touch(root.path(), "/usr/lib/x86_64-linux-gnu/libclang-cpp.so.14");
    let c = check(root.path(), None);
    assert!(!c.ok, "check passed without a libclang:\n{}", c.stderr);
    assert!(c.names("libclang-dev"), "libclang-dev not named:\n{}", c.stderr);
}

#[test]
fn each_file_name_bindgen_opens_counts_as_libclang() {
    for lib in [
        "/usr/lib/llvm-14/lib/libclang.so",
        "/usr/lib/llvm-14/lib/libclang.so.1",
        "/usr/lib/x86_64-linux-gnu/libclang-14.so.14",
        "/usr/lib/llvm-16/lib/libclang-16.0.6.so",
        "/usr/local/lib/libclang.so.13.0.1",
    ] {
        let root = tempfile::tempdir().unwrap();
        touch(root.path(), "/usr/lib/llvm-14/lib/libclang-cpp.so.14");
        touch(root.path(), lib);
        let c = check(root.path(), None);
        assert!(!c.names("libclang-dev"), "{lib} not accepted:\n{}", c.stderr);
    }
}

#[test]
fn libclang_path_is_searched_like_bindgen_does() {
    let root = tempfile::tempdir().unwrap();
    let custom = tempfile::tempdir().unwrap();
    touch(custom.path(), "libclang-15.so.1");
    let out = Command::new("/bin/bash")
        .arg(repo_root().join("tools/setup.sh"))
        .arg("--check")
        .env("TASKER_SETUP_ROOT", root.path())
        .env("LIBCLANG_PATH", custom.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("libclang-dev"), "LIBCLANG_PATH ignored:\n{stderr}");
}

#[test]
fn postgresql_needs_initdb_and_pg_ctl_of_version_15_or_later() {
    let root = tempfile::tempdir().unwrap();
    assert!(check(root.path(), None).names("postgresql"));
    touch(root.path(), "/usr/lib/postgresql/14/bin/initdb");
    touch(root.path(), "/usr/lib/postgresql/14/bin/pg_ctl");
    assert!(check(root.path(), None).names("postgresql"), "PostgreSQL 14 accepted");
    touch(root.path(), "/usr/lib/postgresql/15/bin/initdb");
    assert!(
        check(root.path(), None).names("postgresql"),
        "initdb without pg_ctl accepted"
    );
    touch(root.path(), "/usr/lib/postgresql/15/bin/pg_ctl");
    assert!(!check(root.path(), None).names("postgresql"));
}

#[test]
fn ruby_headers_are_required_not_just_ruby() {
    // With the real ruby on PATH (or none), a root without ruby.h must ask for ruby-dev.
    let root = tempfile::tempdir().unwrap();
    assert!(check(root.path(), None).names("ruby-dev"));
}

#[test]
fn chromium_is_the_executable_the_browser_tests_launch() {
    let root = tempfile::tempdir().unwrap();
    let c = check(root.path(), None);
    assert!(c.names("chromium"), "{}", c.stderr);
    // A directory or a non-executable file of that name is not a browser.
    std::fs::create_dir_all(root.path().join("usr/bin/chromium")).unwrap();
    assert!(check(root.path(), None).names("chromium"));
    std::fs::remove_dir(root.path().join("usr/bin/chromium")).unwrap();
    let file = touch(root.path(), "/usr/bin/chromium");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(check(root.path(), None).names("chromium"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = check(root.path(), None);
    assert!(!c.names("chromium"), "{}", c.stderr);
}

#[test]
fn tools_missing_from_path_are_each_named() {
    let root = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    // Only what the script itself needs: no python3, ruby, gem, rspec, node, npm, psql, cargo-make.
    for tool in ["bash", "cut", "sort", "grep", "cat"] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} not found on this machine"));
        std::os::unix::fs::symlink(found, bin.path().join(tool)).unwrap();
    }
    let c = check(root.path(), Some(bin.path()));
    assert!(!c.ok);
    for package in [
        "postgresql-client",
        "python3-venv",
        "ruby-dev",
        "ruby",
        "ruby-rspec",
        "nodejs",
        "npm",
        "prometheus",
    ] {
        assert!(c.names(package), "{package} not named:\n{}", c.stderr);
    }
    assert!(c.stderr.contains("promtool on PATH"), "{}", c.stderr);
    assert!(c.stderr.contains("missing cargo-make"), "{}", c.stderr);
    assert!(c.stderr.contains("missing cargo-fuzz"), "{}", c.stderr);
}
