//! The per-language templates under `fixtures/task_templates/<language>/` are generated from the
//! canonical workflows in `fixtures/workflows/`. This test fails on any drift; run
//! `cargo make fixtures` (TASKER_BLESS=1) to regenerate after changing a canonical workflow.

use std::path::{Path, PathBuf};

use tasker_templates::{generated_yaml, load_dir, render_for_language, Language, TaskTemplate};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

#[test]
fn language_templates_match_their_canonical_workflows() {
    let canon_dir = fixtures().join("workflows");
    let canonical = load_dir(&canon_dir).unwrap_or_else(|e| panic!("canonical workflows: {e}"));
    assert!(
        !canonical.is_empty(),
        "no canonical workflows under {}",
        canon_dir.display()
    );
    let bless = std::env::var("TASKER_BLESS").is_ok_and(|v| v == "1");
    let mut drift = vec![];
    for (path, t) in &canonical {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let source = format!("fixtures/workflows/{file}");
        for step in &t.steps {
            assert_eq!(
                step.handler.callable,
                Language::Rust.callable(&t.namespace_name, &step.name),
                "{source}: canonical callables use the Rust form"
            );
        }
        for lang in Language::ALL {
            let rendered = render_for_language(t, lang);
            let target = fixtures()
                .join("task_templates")
                .join(lang.dir_name())
                .join("blog")
                .join(&file);
            let want = generated_yaml(&rendered, &source);
            if bless {
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::write(&target, &want).unwrap();
                continue;
            }
            match std::fs::read_to_string(&target) {
                Ok(have) if have == want => {
                    let parsed = TaskTemplate::load_file(&target).unwrap();
                    assert_eq!(
                        parsed,
                        rendered,
                        "{} does not parse back to its rendering",
                        target.display()
                    );
                }
                _ => drift.push(target.display().to_string()),
            }
        }
    }
    assert!(
        drift.is_empty(),
        "generated templates are stale or missing (run `cargo make fixtures`): {drift:#?}"
    );
}

#[test]
fn language_variants_differ_only_in_namespace_suffix_and_callables() {
    let canonical = load_dir(&fixtures().join("workflows")).unwrap();
    for (_, t) in &canonical {
        let variants: Vec<TaskTemplate> = Language::ALL.iter().map(|l| render_for_language(t, *l)).collect();
        for v in &variants {
            let mut stripped = v.clone();
            stripped.namespace_name = t.namespace_name.clone();
            for (s, c) in stripped.steps.iter_mut().zip(&t.steps) {
                s.handler.callable = c.handler.callable.clone();
            }
            assert_eq!(&stripped, t);
        }
    }
}

/// The engine's own test workflows are written by hand per language (their Rust callables do not
/// follow the blog naming rule). Each language's copy must equal the Rust one once the namespace
/// suffix and the handler callables are set aside.
#[test]
fn test_workflow_templates_match_the_rust_ones_but_for_namespace_and_callables() {
    let rust = load_dir(&fixtures().join("task_templates/rust/tests")).unwrap();
    let mut checked = 0;
    for lang in Language::ALL.into_iter().filter(|l| *l != Language::Rust) {
        let dir = fixtures().join("task_templates").join(lang.dir_name()).join("tests");
        assert!(
            dir.exists(),
            "{} is missing: every worker language serves the test workflows",
            dir.display()
        );
        let variants = load_dir(&dir).unwrap();
        assert_eq!(
            variants.len(),
            rust.len(),
            "{}: one file per Rust test workflow",
            dir.display()
        );
        for (path, t) in &variants {
            let file = path.file_name().unwrap();
            let (_, r) = rust
                .iter()
                .find(|(p, _)| p.file_name() == Some(file))
                .unwrap_or_else(|| panic!("{} has no Rust twin", path.display()));
            assert_eq!(t.namespace_name, format!("tasker_tests_{}", lang.suffix()));
            let mut stripped = t.clone();
            stripped.namespace_name = r.namespace_name.clone();
            for (s, rs) in stripped.steps.iter_mut().zip(&r.steps) {
                // `tasker_tests.step_handlers.X`, `TaskerTests::StepHandlers::X`, `TaskerTests.StepHandlers.X`.
                let folded: String = s
                    .handler
                    .callable
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .map(|c| c.to_ascii_lowercase())
                    .collect();
                assert!(folded.starts_with("taskertestsstephandlers"), "{}", s.handler.callable);
                s.handler.callable = rs.handler.callable.clone();
            }
            assert_eq!(&stripped, r, "{} differs from its Rust twin", path.display());
            checked += 1;
        }
    }
    assert!(checked > 0, "no language has test workflow templates yet");
}
