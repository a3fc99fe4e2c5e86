//! What the three language packages declare about themselves agrees with the repository: the
//! same license text, license and version everywhere, a README that shows what users need.

use tasker_e2e::repo_root;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_package_ships_the_repository_license() {
    let root = read("LICENSE");
    assert!(root.starts_with("MIT License"));
    for package in ["workers/python", "workers/ruby", "workers/typescript"] {
        assert_eq!(
            read(&format!("{package}/LICENSE")),
            root,
            "{package}/LICENSE differs from LICENSE"
        );
    }
    assert!(read("Cargo.toml").contains("license = \"MIT\""));
    assert!(read("workers/python/pyproject.toml").contains("license = \"MIT\""));
    assert!(read("workers/ruby/tasker_core.gemspec").contains("spec.license = \"MIT\""));
    assert!(read("workers/typescript/package.json").contains("\"license\": \"MIT\""));
}

#[test]
fn every_package_readme_covers_install_a_handler_the_test_helper_and_the_worker() {
    for (package, test_helper) in [
        ("workers/python", "run_handler"),
        ("workers/ruby", "Testing.run_handler"),
        ("workers/typescript", "runHandler"),
    ] {
        let readme = read(&format!("{package}/README.md"));
        for needed in [
            "## Install",
            "## A handler",
            test_helper,
            "tasker-worker",
            "context.logger",
        ] {
            assert!(readme.contains(needed), "{package}/README.md lacks {needed:?}");
        }
    }
}
