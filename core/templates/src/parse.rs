//! From YAML text to a validated [`TaskTemplate`], collecting every problem.
//!
//! The walk always builds a complete template, using placeholders where a
//! value is missing or wrong; the template is returned only when no problem
//! was found.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde_json::Value as Json;
use serde_yaml::Value as Y;

use crate::error::TemplateError;
use crate::graph;
use crate::model::{
    empty_object, Backoff, EnvironmentOverride, HandlerOverride, HandlerSpec, RetryOverride, RetryPolicy, StepOverride,
    StepTemplate, TaskTemplate, MAX_ATTEMPTS_LIMIT, MAX_BACKOFF_LIMIT_MS, MAX_TIMEOUT_SECONDS,
};
use crate::schema;
use crate::yaml::{
    as_map, check_identifier, describe, name_hint, opt_bool, opt_int, opt_str, req_str, string, to_json, Collector,
    Loc, Map,
};

const TOP_KEYS: &[&str] = &[
    "name",
    "namespace_name",
    "version",
    "description",
    "input_schema",
    "steps",
    "environments",
];
const STEP_KEYS: &[&str] = &[
    "name",
    "description",
    "handler",
    "dependencies",
    "retry",
    "timeout_seconds",
];
const HANDLER_KEYS: &[&str] = &["callable", "initialization"];
const RETRY_KEYS: &[&str] = &[
    "retryable",
    "max_attempts",
    "backoff",
    "backoff_base_ms",
    "max_backoff_ms",
];
const ENV_KEYS: &[&str] = &["steps"];
const ENV_STEP_KEYS: &[&str] = &["name", "handler", "retry", "timeout_seconds"];
const ENV_HANDLER_KEYS: &[&str] = &["initialization"];

/// Parses and validates one template.
pub(crate) fn parse_template(source: &str, file: Option<&Path>) -> Result<TaskTemplate, TemplateError> {
    let yaml_error = |e: serde_yaml::Error| TemplateError::Yaml {
        file: file.map(Path::to_path_buf),
        message: e.to_string(),
    };
    if let Err(refused) = crate::limits::check(source) {
        let message = match refused {
            crate::limits::Refused::TooLarge { bytes } => format!(
                "the file is {bytes} bytes; templates are limited to {} bytes",
                crate::limits::MAX_TEMPLATE_BYTES
            ),
            crate::limits::Refused::TooDeep { line } => format!(
                "nesting deeper than {} levels at line {line}",
                crate::limits::MAX_NESTING
            ),
        };
        return Err(TemplateError::Yaml {
            file: file.map(Path::to_path_buf),
            message,
        });
    }
    let mut doc: Y = serde_yaml::from_str(source).map_err(yaml_error)?;
    doc.apply_merge().map_err(yaml_error)?;
    let mut c = Collector::new(file);
    refuse_nul(&mut c, &doc, &Loc::root());
    let template = parse_root(&mut c, &doc);
    let problems = c.finish();
    if problems.is_empty() {
        Ok(template)
    } else {
        Err(TemplateError::Invalid { problems })
    }
}

/// PostgreSQL cannot store U+0000 in text or jsonb: a string (key or value) holding one is a
/// problem here, not a database error at registration.
fn refuse_nul(c: &mut Collector, value: &Y, loc: &Loc) {
    match value {
        Y::String(s) if s.contains('\0') => c.push(loc, "contains a NUL character (U+0000), which cannot be stored"),
        Y::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                refuse_nul(c, item, &loc.index(i));
            }
        }
        Y::Mapping(map) => {
            for (pos, (k, v)) in map.iter().enumerate() {
                let name = k.as_str().unwrap_or("?");
                if name.contains('\0') {
                    c.push(
                        &loc.key(&name.replace('\0', "\\0"), pos),
                        "a key contains a NUL character (U+0000), which cannot be stored",
                    );
                } else {
                    refuse_nul(c, v, &loc.key(name, pos));
                }
            }
        }
        Y::Tagged(t) => refuse_nul(c, &t.value, loc),
        _ => {}
    }
}

/// Where the parts of a step are, for the cross-step checks.
struct StepMeta {
    loc: Loc,
    /// The name is a string (valid or not).
    named: bool,
    name_loc: Loc,
    deps_loc: Loc,
    dep_locs: Vec<Loc>,
}

/// Locations of a parsed retry mapping.
struct RetryLocs {
    map: Loc,
    base: Option<Loc>,
    max: Option<Loc>,
    /// `backoff_base_ms` or `max_backoff_ms` was present but invalid.
    bounds_invalid: bool,
}

fn parse_root(c: &mut Collector, doc: &Y) -> TaskTemplate {
    let root = Loc::root();
    let mut template = TaskTemplate {
        name: String::new(),
        namespace_name: String::new(),
        version: semver::Version::new(0, 0, 0),
        description: None,
        input_schema: None,
        steps: Vec::new(),
        environments: BTreeMap::new(),
    };
    let Some(map) = as_map(c, doc, &root, TOP_KEYS) else {
        return template;
    };
    if let Some((name, loc)) = req_str(c, &map, "name") {
        check_identifier(c, &name, &loc, 63);
        template.name = name;
    }
    if let Some((ns, loc)) = req_str(c, &map, "namespace_name") {
        check_identifier(c, &ns, &loc, 39);
        template.namespace_name = ns;
    }
    template.version = parse_version(c, &map).unwrap_or(template.version);
    template.description = opt_str(c, &map, "description");
    if let Some((v, loc)) = map.get("input_schema") {
        template.input_schema = parse_input_schema(c, v, &loc);
    }
    let metas = match map.get("steps") {
        None => {
            c.push(&map.loc.missing("steps"), "is required");
            Vec::new()
        }
        Some((v, loc)) => parse_steps(c, v, &loc, &mut template.steps),
    };
    check_graph(c, &template.steps, &metas);
    if let Some((v, loc)) = map.get("environments") {
        template.environments = parse_environments(c, v, &loc, &template.steps);
    }
    template
}

fn parse_version(c: &mut Collector, map: &Map<'_>) -> Option<semver::Version> {
    let Some((v, loc)) = map.get("version") else {
        c.push(&map.loc.missing("version"), "is required");
        return None;
    };
    let expectation = "must be a semantic version MAJOR.MINOR.PATCH such as 1.0.0";
    let Some(text) = v.as_str() else {
        let shown = match v {
            Y::Number(n) => format!("{n}"),
            other => describe(other).to_owned(),
        };
        c.push(&loc, format!("{expectation}, found {shown}"));
        return None;
    };
    match semver::Version::parse(text) {
        Ok(version) if version.pre.is_empty() && version.build.is_empty() => Some(version),
        Ok(_) => {
            let msg = format!("{expectation}: `{text}` has a pre-release or build part, which is not allowed");
            c.push(&loc, msg);
            None
        }
        Err(e) => {
            c.push(&loc, format!("{expectation}: `{text}` is invalid ({e})"));
            None
        }
    }
}

fn parse_input_schema(c: &mut Collector, v: &Y, loc: &Loc) -> Option<Json> {
    let json = to_json(c, v, loc)?;
    if !json.is_object() && !json.is_boolean() {
        c.push(loc, format!("must be a JSON Schema (a mapping), found {}", describe(v)));
        return None;
    }
    if let Err(e) = schema::compile(&json) {
        c.push(
            &loc.suffix(&e.dotted_path()),
            format!("invalid JSON Schema: {}", e.message),
        );
        return None;
    }
    Some(json)
}

fn parse_steps(c: &mut Collector, v: &Y, loc: &Loc, steps: &mut Vec<StepTemplate>) -> Vec<StepMeta> {
    let Some(items) = v.as_sequence() else {
        c.push(loc, format!("must be a sequence of steps, found {}", describe(v)));
        return Vec::new();
    };
    if items.is_empty() {
        c.push(loc, "must contain at least one step");
    }
    let mut metas = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let (step, meta) = parse_step(c, item, &loc.index(i));
        steps.push(step);
        metas.push(meta);
    }
    metas
}

fn parse_step(c: &mut Collector, v: &Y, loc: &Loc) -> (StepTemplate, StepMeta) {
    let mut step = StepTemplate {
        name: String::new(),
        description: None,
        handler: HandlerSpec {
            callable: String::new(),
            initialization: empty_object(),
        },
        dependencies: Vec::new(),
        retry: RetryPolicy::default(),
        timeout_seconds: crate::model::DEFAULT_TIMEOUT_SECONDS,
    };
    let mut meta = StepMeta {
        loc: loc.clone(),
        named: false,
        name_loc: loc.missing("name"),
        deps_loc: loc.missing("dependencies"),
        dep_locs: Vec::new(),
    };
    // Name the step in every problem found inside it, whatever the key order.
    let loc = loc.clone().with_step(name_hint(v));
    meta.loc = loc.clone();
    let Some(map) = as_map(c, v, &loc, STEP_KEYS) else {
        return (step, meta);
    };
    if let Some((name, name_loc)) = req_str(c, &map, "name") {
        check_identifier(c, &name, &name_loc, 63);
        step.name = name;
        meta.named = true;
        meta.name_loc = name_loc;
    }
    step.description = opt_str(c, &map, "description");
    match map.get("handler") {
        None => c.push(&map.loc.missing("handler"), "is required"),
        Some((hv, hloc)) => step.handler = parse_handler(c, hv, &hloc),
    }
    if let Some((dv, dloc)) = map.get("dependencies") {
        meta.deps_loc = dloc.clone();
        match dv.as_sequence() {
            None => c.push(
                &dloc,
                format!("must be a sequence of step names, found {}", describe(dv)),
            ),
            Some(items) => {
                for (j, item) in items.iter().enumerate() {
                    let item_loc = dloc.index(j);
                    if let Some(dep) = string(c, item, &item_loc) {
                        step.dependencies.push(dep);
                        meta.dep_locs.push(item_loc);
                    }
                }
            }
        }
    }
    if let Some((rv, rloc)) = map.get("retry") {
        if let Some((over, locs)) = parse_retry(c, rv, &rloc) {
            step.retry.apply(&over);
            if !locs.bounds_invalid {
                check_backoff_bounds(c, &step.retry, &locs, "the default");
            }
        }
    }
    if let Some((t, _)) = opt_int(c, &map, "timeout_seconds", 1, u64::from(MAX_TIMEOUT_SECONDS)) {
        step.timeout_seconds = u32::try_from(t).unwrap_or(MAX_TIMEOUT_SECONDS);
    }
    (step, meta)
}

fn parse_handler(c: &mut Collector, v: &Y, loc: &Loc) -> HandlerSpec {
    let mut handler = HandlerSpec {
        callable: String::new(),
        initialization: empty_object(),
    };
    let Some(map) = as_map(c, v, loc, HANDLER_KEYS) else {
        return handler;
    };
    if let Some((callable, cloc)) = req_str(c, &map, "callable") {
        if callable.trim().is_empty() {
            c.push(&cloc, "must not be empty");
        }
        handler.callable = callable;
    }
    if let Some(init) = parse_initialization(c, &map) {
        handler.initialization = init;
    }
    handler
}

fn parse_initialization(c: &mut Collector, map: &Map<'_>) -> Option<Json> {
    let (v, loc) = map.get("initialization")?;
    if !v.is_mapping() {
        c.push(&loc, format!("must be a mapping, found {}", describe(v)));
        return None;
    }
    to_json(c, v, &loc)
}

fn parse_retry(c: &mut Collector, v: &Y, loc: &Loc) -> Option<(RetryOverride, RetryLocs)> {
    let map = as_map(c, v, loc, RETRY_KEYS)?;
    let mut over = RetryOverride {
        retryable: opt_bool(c, &map, "retryable"),
        ..Default::default()
    };
    let attempts = opt_int(c, &map, "max_attempts", 1, u64::from(MAX_ATTEMPTS_LIMIT));
    over.max_attempts = attempts.and_then(|(n, _)| u32::try_from(n).ok());
    if let Some((bv, bloc)) = map.get("backoff") {
        let name = bv.as_str().unwrap_or_default();
        match Backoff::from_name(name) {
            Some(b) => over.backoff = Some(b),
            None => {
                let found = bv
                    .as_str()
                    .map_or_else(|| describe(bv).to_owned(), |s| format!("`{s}`"));
                c.push(
                    &bloc,
                    format!("must be one of exponential, linear, none; found {found}"),
                );
            }
        }
    }
    let base = opt_int(c, &map, "backoff_base_ms", 0, MAX_BACKOFF_LIMIT_MS);
    let max = opt_int(c, &map, "max_backoff_ms", 0, MAX_BACKOFF_LIMIT_MS);
    let bounds_invalid = (base.is_none() && map.get("backoff_base_ms").is_some())
        || (max.is_none() && map.get("max_backoff_ms").is_some());
    over.backoff_base_ms = base.as_ref().map(|(n, _)| *n);
    over.max_backoff_ms = max.as_ref().map(|(n, _)| *n);
    let locs = RetryLocs {
        map: map.loc.clone(),
        base: base.map(|(_, l)| l),
        max: max.map(|(_, l)| l),
        bounds_invalid,
    };
    Some((over, locs))
}

/// `max_backoff_ms` must not be below `backoff_base_ms`.
/// `absent` describes where a value not written in this mapping comes from.
fn check_backoff_bounds(c: &mut Collector, policy: &RetryPolicy, locs: &RetryLocs, absent: &str) {
    if policy.max_backoff_ms >= policy.backoff_base_ms {
        return;
    }
    let note = |present: bool| {
        if present {
            String::new()
        } else {
            format!(", {absent}")
        }
    };
    let default_note = note(locs.max.is_some());
    let base_note = note(locs.base.is_some());
    let loc = locs.max.clone().unwrap_or_else(|| locs.map.missing("max_backoff_ms"));
    c.push(
        &loc,
        format!(
            "max_backoff_ms ({}{default_note}) must be >= backoff_base_ms ({}{base_note})",
            policy.max_backoff_ms, policy.backoff_base_ms
        ),
    );
}

/// Duplicate names, dependency references and cycles.
fn check_graph(c: &mut Collector, steps: &[StepTemplate], metas: &[StepMeta]) {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, (step, meta)) in steps.iter().zip(metas).enumerate() {
        if !meta.named {
            continue;
        }
        if let Some(&j) = first.get(step.name.as_str()) {
            c.push(
                &meta.name_loc,
                format!("duplicate step name `{}` (first declared at steps[{j}])", step.name),
            );
        } else {
            first.insert(&step.name, i);
        }
    }
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, (step, meta)) in steps.iter().zip(metas).enumerate() {
        let mut seen = HashSet::new();
        for (dep, loc) in step.dependencies.iter().zip(&meta.dep_locs) {
            if meta.named && *dep == step.name {
                c.push(loc, "a step cannot depend on itself");
            } else if !seen.insert(dep.as_str()) {
                c.push(loc, format!("duplicate dependency `{dep}`"));
            } else if let Some(&j) = first.get(dep.as_str()) {
                if first.get(step.name.as_str()) == Some(&i) {
                    edges[i].push(j);
                }
            } else {
                c.push(
                    loc,
                    format!("unknown step `{dep}`: no step of this template has that name"),
                );
            }
        }
    }
    for cycle in graph::cycles(&edges) {
        let names: Vec<&str> = cycle.iter().map(|&i| steps[i].name.as_str()).collect();
        let start = cycle[0];
        let text = format!("dependency cycle: {} -> {}", names.join(" -> "), names[0]);
        c.push(&metas[start].deps_loc, text);
    }
}

fn parse_environments(
    c: &mut Collector,
    v: &Y,
    loc: &Loc,
    steps: &[StepTemplate],
) -> BTreeMap<String, EnvironmentOverride> {
    let mut out = BTreeMap::new();
    let Some(mapping) = v.as_mapping() else {
        c.push(
            loc,
            format!("must be a mapping of environment names, found {}", describe(v)),
        );
        return out;
    };
    for (pos, (k, ev)) in mapping.iter().enumerate() {
        let Some(raw) = k.as_str() else {
            c.push(
                &loc.key("?", pos),
                format!("environment names must be strings, found {}", describe(k)),
            );
            continue;
        };
        let name = raw.strip_prefix(':').unwrap_or(raw);
        let env_loc = loc.key(name, pos);
        if name.is_empty() {
            c.push(&env_loc, "environment name must not be empty");
            continue;
        }
        if out.contains_key(name) {
            c.push(&env_loc, format!("duplicate environment `{raw}`"));
            continue;
        }
        out.insert(name.to_owned(), parse_environment(c, ev, &env_loc, steps));
    }
    out
}

fn parse_environment(c: &mut Collector, v: &Y, loc: &Loc, steps: &[StepTemplate]) -> EnvironmentOverride {
    let mut env = EnvironmentOverride::default();
    if v.is_null() {
        return env;
    }
    let Some(map) = as_map(c, v, loc, ENV_KEYS) else {
        return env;
    };
    let Some((sv, sloc)) = map.get("steps") else {
        return env;
    };
    let Some(items) = sv.as_sequence() else {
        c.push(
            &sloc,
            format!("must be a sequence of step overrides, found {}", describe(sv)),
        );
        return env;
    };
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(over) = parse_step_override(c, item, &sloc.index(i), steps, &mut seen) {
            env.steps.push(over);
        }
    }
    env
}

fn parse_step_override(
    c: &mut Collector,
    v: &Y,
    loc: &Loc,
    steps: &[StepTemplate],
    seen: &mut HashSet<String>,
) -> Option<StepOverride> {
    let loc = loc.clone().with_step(name_hint(v));
    let map = as_map(c, v, &loc, ENV_STEP_KEYS)?;
    let name = req_str(c, &map, "name");
    let target = name.as_ref().and_then(|(n, _)| steps.iter().find(|s| s.name == *n));
    if let Some((n, nloc)) = &name {
        if target.is_none() {
            c.push(
                nloc,
                format!("unknown step `{n}`: overrides must name a step of this template"),
            );
        } else if !seen.insert(n.clone()) {
            c.push(nloc, format!("step `{n}` is already overridden in this environment"));
        }
    }
    let handler = map.get("handler").and_then(|(hv, hloc)| {
        let hmap = as_map(c, hv, &hloc, ENV_HANDLER_KEYS)?;
        Some(HandlerOverride {
            initialization: parse_initialization(c, &hmap),
        })
    });
    let retry = map.get("retry").and_then(|(rv, rloc)| parse_retry(c, rv, &rloc));
    if let (Some(step), Some((over, locs))) = (target, &retry) {
        let touches_bounds = over.backoff_base_ms.is_some() || over.max_backoff_ms.is_some();
        if touches_bounds && !locs.bounds_invalid {
            let mut merged = step.retry.clone();
            merged.apply(over);
            check_backoff_bounds(c, &merged, locs, "the step's value");
        }
    }
    let timeout =
        opt_int(c, &map, "timeout_seconds", 1, u64::from(MAX_TIMEOUT_SECONDS)).and_then(|(t, _)| u32::try_from(t).ok());
    Some(StepOverride {
        name: name.map(|(n, _)| n).unwrap_or_default(),
        handler,
        retry: retry.map(|(over, _)| over),
        timeout_seconds: timeout,
    })
}
