//! Parsing, validation, environments, ordering and loading of task templates.

use std::path::{Path, PathBuf};

use tasker_templates::{load_dir, Backoff, Problem, RetryPolicy, TaskTemplate, TemplateError, TemplateErrorKind};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// A valid template whose steps section is `steps` (indented by two spaces).
fn with_steps(steps: &str) -> String {
    format!("name: sample\nnamespace_name: tests\nversion: 1.0.0\nsteps:\n{steps}")
}

fn step(name: &str, deps: &str) -> String {
    format!("  - name: {name}\n    handler: {{callable: t::{name}}}\n    dependencies: [{deps}]\n")
}

fn problems(source: &str) -> Vec<Problem> {
    match TaskTemplate::parse(source, Some(Path::new("t.yaml"))) {
        Ok(t) => panic!("expected problems, parsed {t:?}"),
        Err(TemplateError::Invalid { problems }) => problems,
        Err(other) => panic!("expected Invalid, got {other}"),
    }
}

/// The only problem of `source`.
fn single_problem(source: &str) -> Problem {
    let mut all = problems(source);
    assert_eq!(all.len(), 1, "expected exactly one problem, got {all:#?}");
    all.remove(0)
}

#[test]
fn valid_template_file_loads_with_defaults_filled_in() {
    let t = TaskTemplate::load_file(&data("linear_workflow.yaml")).unwrap();
    assert_eq!(t.identity(), "tests_rs/linear_workflow@1.0.0");
    assert_eq!(t.steps.len(), 4);
    let first = &t.steps[0];
    assert_eq!(first.handler.callable, "tests::linear_step_1");
    assert_eq!(first.handler.initialization, serde_json::json!({"operation": "square"}));
    assert_eq!(first.retry, RetryPolicy::default());
    assert_eq!(first.timeout_seconds, 30);
    assert!(first.dependencies.is_empty());
    assert_eq!(t.steps[1].retry.backoff, Backoff::Linear);
    assert_eq!(t.steps[1].retry.max_attempts, 5);
    assert_eq!(t.steps[2].timeout_seconds, 120);
    assert_eq!(t.steps[3].handler.initialization, serde_json::json!({}));
}

#[test]
fn template_round_trips_through_json_and_canonical_yaml() {
    for file in ["linear_workflow.yaml", "nested/ruby_diamond.yml"] {
        let t = TaskTemplate::load_file(&data(file)).unwrap();
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["version"], serde_json::json!(t.version.to_string()));
        let back: TaskTemplate = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
        let yaml = serde_yaml::to_string(&t).unwrap();
        assert!(!yaml.contains("\n:"), "canonical YAML has no colon keys:\n{yaml}");
        assert_eq!(TaskTemplate::parse(&yaml, None).unwrap(), t);
    }
}

#[test]
fn colon_keys_are_stripped_in_the_structure_but_kept_in_user_data() {
    let t = TaskTemplate::load_file(&data("nested/ruby_diamond.yml")).unwrap();
    assert_eq!(t.identity(), "tests_rb/diamond_workflow@2.1.0");
    assert_eq!(
        t.steps[0].handler.initialization,
        serde_json::json!({":symbol_key": "kept verbatim"})
    );
    let schema = t.input_schema.as_ref().unwrap();
    assert!(schema["properties"].get(":keep_colon").is_some());
    assert!(!t.steps[3].retry.retryable);
    assert_eq!(t.steps[3].retry.backoff, Backoff::None);
    assert_eq!(t.steps[3].dependencies, ["diamond_branch_c", "diamond_branch_b"]);
    assert!(t.environments.contains_key("development"));
}

#[test]
fn only_one_leading_colon_is_stripped() {
    let p = problems(&with_steps(&step("a", "")).replace("name: sample", "::name: sample"));
    let got: Vec<_> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(got, ["name", ":name"]);
    assert_eq!(p[0].message, "is required");
    assert!(p[1].message.starts_with("unknown key `::name`"), "{}", p[1].message);
}

#[test]
fn unknown_keys_are_reported_with_their_path_and_step() {
    let src =
        with_steps("  - name: a\n    handler: {callable: t::a, extra: 1}\n    retry: {attempts: 2}\n    colour: red\n")
            + "owner: me\nenvironments:\n  test:\n    stepz: []\n";
    let p = problems(&src);
    let fields: Vec<_> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "steps[0].handler.extra",
            "steps[0].retry.attempts",
            "steps[0].colour",
            "owner",
            "environments.test.stepz"
        ]
    );
    assert!(p.iter().all(|p| p.message.starts_with("unknown key")));
    assert_eq!(p[0].step.as_deref(), Some("a"));
    assert_eq!(p[3].step, None);
    assert_eq!(p[0].file.as_deref(), Some(Path::new("t.yaml")));
}

#[test]
fn unknown_keys_inside_user_data_are_allowed() {
    let src = with_steps(
        "  - name: a\n    handler:\n      callable: t::a\n      initialization: {anything: {\":goes\": here}}\n",
    ) + "input_schema: {type: object, x-custom: 1}\n";
    TaskTemplate::parse(&src, None).unwrap();
}

#[test]
fn duplicate_step_name_is_reported_on_the_second_step() {
    let p = single_problem(&with_steps(&(step("a", "") + &step("a", ""))));
    assert_eq!((p.field.as_str(), p.step.as_deref()), ("steps[1].name", Some("a")));
    assert!(p.message.contains("duplicate step name `a`"), "{}", p.message);
}

#[test]
fn dependency_on_a_missing_step_is_reported() {
    let p = single_problem(&with_steps(&(step("a", "") + &step("b", "a, ghost"))));
    assert_eq!(
        (p.field.as_str(), p.step.as_deref()),
        ("steps[1].dependencies[1]", Some("b"))
    );
    assert!(p.message.contains("unknown step `ghost`"), "{}", p.message);
}

#[test]
fn self_dependency_is_reported() {
    let p = single_problem(&with_steps(&step("a", "a")));
    assert_eq!(p.field, "steps[0].dependencies[0]");
    assert!(p.message.contains("cannot depend on itself"), "{}", p.message);
}

#[test]
fn duplicate_dependency_is_reported() {
    let p = single_problem(&with_steps(&(step("a", "") + &step("b", "a, a"))));
    assert_eq!(p.field, "steps[1].dependencies[1]");
    assert!(p.message.contains("duplicate dependency `a`"), "{}", p.message);
}

#[test]
fn two_step_cycle_is_named() {
    let p = single_problem(&with_steps(&(step("a", "b") + &step("b", "a"))));
    assert_eq!(p.message, "dependency cycle: a -> b -> a");
    assert_eq!(
        (p.field.as_str(), p.step.as_deref()),
        ("steps[0].dependencies", Some("a"))
    );
}

#[test]
fn three_step_cycle_is_named_from_its_first_declared_step() {
    let steps = step("root", "") + &step("c", "a") + &step("a", "b, root") + &step("b", "c");
    let p = single_problem(&with_steps(&steps));
    assert_eq!(p.message, "dependency cycle: c -> a -> b -> c");
}

#[test]
fn bad_versions_are_rejected() {
    let base = with_steps(&step("a", ""));
    for (version, needle) in [
        ("1.0", "is invalid"),
        ("v1.0.0", "is invalid"),
        ("1.0.0-beta.1", "pre-release"),
        ("1.0.0+build5", "pre-release or build"),
        ("01.0.0", "is invalid"),
    ] {
        let p = single_problem(&base.replace("1.0.0", &format!("\"{version}\"")));
        assert_eq!(p.field, "version");
        assert!(p.message.contains(needle), "{version}: {}", p.message);
    }
    let p = single_problem(&base.replace("version: 1.0.0", "version: 1.5"));
    assert!(p.message.contains("found 1.5"), "{}", p.message);
}

#[test]
fn retry_values_out_of_range_are_rejected() {
    let p = single_problem(&with_steps(
        "  - name: a\n    handler: {callable: t::a}\n    retry: {max_attempts: 0}\n",
    ));
    assert_eq!(
        (p.field.as_str(), p.step.as_deref()),
        ("steps[0].retry.max_attempts", Some("a"))
    );
    assert!(p.message.contains("between 1 and 100"), "{}", p.message);
    let p = problems(&with_steps(
        "  - name: a\n    handler: {callable: t::a}\n    retry: {max_attempts: 101, backoff_base_ms: -1}\n    timeout_seconds: 0\n",
    ));
    let fields: Vec<_> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "steps[0].retry.max_attempts",
            "steps[0].retry.backoff_base_ms",
            "steps[0].timeout_seconds"
        ]
    );
}

#[test]
fn max_backoff_below_base_is_rejected() {
    let p = single_problem(&with_steps(
        "  - name: a\n    handler: {callable: t::a}\n    retry: {backoff_base_ms: 5000, max_backoff_ms: 100}\n",
    ));
    assert_eq!(p.field, "steps[0].retry.max_backoff_ms");
    assert_eq!(p.message, "max_backoff_ms (100) must be >= backoff_base_ms (5000)");
    // The default cap (30 s) counts too.
    let p = single_problem(&with_steps(
        "  - name: a\n    handler: {callable: t::a}\n    retry: {backoff_base_ms: 60000}\n",
    ));
    assert_eq!(p.field, "steps[0].retry.max_backoff_ms");
    assert!(p.message.contains("30000, the default"), "{}", p.message);
}

#[test]
fn unknown_backoff_name_is_rejected() {
    let p = single_problem(&with_steps(
        "  - name: a\n    handler: {callable: t::a}\n    retry: {backoff: fibonacci}\n",
    ));
    assert_eq!(p.field, "steps[0].retry.backoff");
    assert_eq!(p.message, "must be one of exponential, linear, none; found `fibonacci`");
}

#[test]
fn empty_or_missing_steps_are_rejected() {
    let p = single_problem(&with_steps("  []\n").replace("steps:\n  []", "steps: []"));
    assert_eq!(
        (p.field.as_str(), p.message.as_str()),
        ("steps", "must contain at least one step")
    );
    let p = single_problem("name: sample\nnamespace_name: tests\nversion: 1.0.0\n");
    assert_eq!((p.field.as_str(), p.message.as_str()), ("steps", "is required"));
}

#[test]
fn invalid_names_and_missing_handler_fields_are_rejected() {
    let src = "name: Sample\nnamespace_name: tests\nversion: 1.0.0\nsteps:\n  - name: step-one\n    handler: {callable: ''}\n  - handler: {}\n";
    let p = problems(src);
    let got: Vec<_> = p.iter().map(|p| (p.field.as_str(), p.step.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("name", None),
            ("steps[0].name", Some("step-one")),
            ("steps[0].handler.callable", Some("step-one")),
            ("steps[1].name", None),
            ("steps[1].handler.callable", None),
        ]
    );
}

#[test]
fn several_problems_are_reported_at_once_in_document_order() {
    let src = "\
version: 1.0.0-rc.1
name: sample
steps:
  - name: b
    handler: {callable: t::b}
    dependencies: [a]
    retry: {max_attempts: 0, backoff: sometimes}
  - name: a
    handler: {callable: t::a}
    dependencies: [b, nope]
";
    let p = problems(src);
    let got: Vec<_> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        got,
        [
            "namespace_name",
            "version",
            "steps[0].dependencies",
            "steps[0].retry.max_attempts",
            "steps[0].retry.backoff",
            "steps[1].dependencies[1]",
        ]
    );
    assert_eq!(p[2].message, "dependency cycle: b -> a -> b");
    let err = TaskTemplate::parse(src, Some(Path::new("t.yaml"))).unwrap_err();
    assert_eq!(err.kind(), TemplateErrorKind::Invalid);
    let text = err.to_string();
    assert!(text.starts_with("invalid template: 6 problems"), "{text}");
    assert!(
        text.contains("\n  - t.yaml: step `b`: steps[0].retry.max_attempts: must be an integer"),
        "{text}"
    );
}

#[test]
fn problem_display_omits_absent_parts() {
    let p = Problem {
        file: None,
        step: None,
        field: "version".into(),
        message: "bad".into(),
    };
    assert_eq!(p.to_string(), "version: bad");
    let p = Problem {
        file: Some("x.yaml".into()),
        step: Some("s".into()),
        ..p
    };
    assert_eq!(p.to_string(), "x.yaml: step `s`: version: bad");
}

#[test]
fn malformed_yaml_is_a_yaml_error_with_line_and_column() {
    let err = TaskTemplate::parse("name: [unclosed\nsteps: 1\n", Some(Path::new("bad.yaml"))).unwrap_err();
    assert_eq!(err.kind(), TemplateErrorKind::Yaml);
    let text = err.to_string();
    assert!(text.starts_with("bad.yaml: invalid YAML: "), "{text}");
    assert!(text.contains("line 2 column"), "{text}");
}

#[test]
fn missing_file_is_an_io_error() {
    let err = TaskTemplate::load_file(&data("does_not_exist.yaml")).unwrap_err();
    assert_eq!(err.kind(), TemplateErrorKind::Io);
}

#[test]
fn environment_overrides_are_applied_only_for_their_environment() {
    let t = TaskTemplate::load_file(&data("linear_workflow.yaml")).unwrap();
    let test = t.for_environment("test");
    assert_eq!(test.steps[1].retry.max_attempts, 1);
    assert_eq!(
        test.steps[1].retry.backoff,
        Backoff::Linear,
        "keys not overridden are kept"
    );
    assert_eq!(test.steps[1].timeout_seconds, 5);
    assert_eq!(test.environments, t.environments);
    assert_eq!(t.for_environment("production"), t);

    let ruby = TaskTemplate::load_file(&data("nested/ruby_diamond.yml")).unwrap();
    let dev = ruby.for_environment("development");
    assert_eq!(
        dev.steps[3].handler.initialization,
        serde_json::json!({"verbose": true})
    );
    assert_eq!(dev.steps[3].handler.callable, "DiamondWorkflow::EndHandler");
}

#[test]
fn environment_overrides_must_name_existing_steps_and_keep_retry_consistent() {
    let src = with_steps("  - name: a\n    handler: {callable: t::a}\n    retry: {backoff_base_ms: 500}\n")
        + "environments:\n  test:\n    steps:\n      - name: ghost\n      - name: a\n        retry: {max_backoff_ms: 100}\n        handler: {callable: x}\n";
    let p = problems(&src);
    let got: Vec<_> = p.iter().map(|p| (p.field.as_str(), p.step.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("environments.test.steps[0].name", Some("ghost")),
            ("environments.test.steps[1].retry.max_backoff_ms", Some("a")),
            ("environments.test.steps[1].handler.callable", Some("a")),
        ]
    );
    assert!(
        p[1].message.contains("backoff_base_ms (500, the step's value)"),
        "{}",
        p[1].message
    );
}

#[test]
fn topological_order_is_deterministic_by_declaration_order() {
    let steps = step("d", "b, c") + &step("c", "a") + &step("b", "a") + &step("a", "") + &step("e", "");
    let t = TaskTemplate::parse(&with_steps(&steps), None).unwrap();
    let names: Vec<_> = t.topological_order().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "c", "b", "d", "e"]);
    for _ in 0..5 {
        let again: Vec<_> = t.topological_order().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(again, names);
    }
}

#[test]
fn dependency_indices_follow_declaration_order_whatever_order_they_are_listed_in() {
    let steps = step("d", "b, c") + &step("c", "a") + &step("b", "a") + &step("a", "") + &step("e", "");
    let t = TaskTemplate::parse(&with_steps(&steps), None).unwrap();
    let want: Vec<Vec<usize>> = vec![vec![1, 2], vec![3], vec![3], vec![], vec![]];
    assert_eq!(t.dependency_indices(), want);
}

#[test]
fn load_dir_loads_every_template_sorted_by_path() {
    let all = load_dir(&data("")).unwrap();
    let files: Vec<_> = all
        .iter()
        .map(|(p, _)| p.strip_prefix(data("")).unwrap().to_path_buf())
        .collect();
    assert_eq!(
        files,
        [
            PathBuf::from("linear_workflow.yaml"),
            PathBuf::from("nested/ruby_diamond.yml")
        ]
    );
    assert_eq!(all[1].1.name, "diamond_workflow");
}

#[test]
fn load_dir_reports_the_problems_of_every_bad_file() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("load_dir_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let good = with_steps(&step("a", ""));
    std::fs::write(dir.join("a_good.yaml"), &good).unwrap();
    std::fs::write(
        dir.join("b_bad.yml"),
        good.replace("1.0.0", "2.0.0").replace("[]", "[zz]"),
    )
    .unwrap();
    std::fs::write(dir.join("sub/c_broken.yaml"), "name: [\n").unwrap();
    std::fs::write(dir.join("sub/d_same_identity.yaml"), &good).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a template").unwrap();
    let err = load_dir(&dir).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    let p = err.problems();
    let got: Vec<_> = p
        .iter()
        .map(|p| {
            (
                p.file.as_ref().unwrap().file_name().unwrap().to_str().unwrap(),
                p.field.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("b_bad.yml", "steps[0].dependencies[0]"),
            ("c_broken.yaml", ""),
            ("d_same_identity.yaml", "name")
        ]
    );
    assert!(p[1].message.starts_with("invalid YAML"), "{}", p[1].message);
    assert!(
        p[2].message.contains("tests/sample@1.0.0 is already defined"),
        "{}",
        p[2].message
    );
}

#[test]
fn load_dir_of_a_missing_directory_is_an_io_error() {
    assert_eq!(
        load_dir(&data("no_such_dir")).unwrap_err().kind(),
        TemplateErrorKind::Io
    );
}

#[test]
fn invalid_input_schema_is_reported_at_its_location() {
    let src = with_steps(&step("a", "")) + "input_schema:\n  type: object\n  properties:\n    age: {type: integr}\n";
    let p = single_problem(&src);
    assert!(p.field.starts_with("input_schema"), "{}", p.field);
    assert!(p.message.starts_with("invalid JSON Schema"), "{}", p.message);
}

#[test]
fn nul_characters_are_refused_where_they_stand() {
    let source = "name: linear\nnamespace_name: ns\nversion: 1.0.0\nsteps:\n  - name: a\n    handler: {callable: \"x\\0y\", initialization: {\"k\\0\": 1}}\n";
    let e = TaskTemplate::parse(source, None).unwrap_err();
    let problems = e.into_problems();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"steps[0].handler.callable"), "{problems:?}");
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("steps[0].handler.initialization.k")),
        "{problems:?}"
    );
    assert!(problems.iter().all(|p| p.message.contains("NUL")), "{problems:?}");
}

#[test]
fn a_30000_step_chain_with_one_cycle_and_deep_nesting_are_refused_quickly() {
    let mut chain = String::from("name: chain\nnamespace_name: ns\nversion: 1.0.0\nsteps:\n");
    for i in 0..30_000 {
        let dep = if i == 0 { 1 } else { i - 1 };
        chain.push_str(&format!(
            "  - name: s{i}\n    handler: {{callable: c}}\n    dependencies: [s{dep}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let problems = TaskTemplate::parse(&chain, None).unwrap_err().into_problems();
    assert_eq!(problems.len(), 1, "{:?}", &problems[..problems.len().min(3)]);
    assert!(
        problems[0].message.contains("dependency cycle: s0 -> s1 -> s0"),
        "{:?}",
        problems[0]
    );
    let deep = format!(
        "name: x\nnamespace_name: ns\nversion: 1.0.0\nsteps: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let e = TaskTemplate::parse(&deep, None).unwrap_err();
    assert!(e.to_string().contains("nesting deeper than 64 levels at line 4"), "{e}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn every_kept_fuzz_input_is_refused_with_problems_not_a_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/template_parse");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let started = std::time::Instant::now();
        let outcome = TaskTemplate::parse(&text, Some(&path));
        assert!(outcome.is_err(), "{} was accepted", path.display());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{} took {:?}",
            path.display(),
            started.elapsed()
        );
        seen += 1;
    }
    assert!(seen >= 3, "no regression inputs found in {}", dir.display());
}
