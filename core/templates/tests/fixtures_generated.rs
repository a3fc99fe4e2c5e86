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
