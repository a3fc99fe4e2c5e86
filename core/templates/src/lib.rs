//! Tasker task templates: parsing, validation and input checking.
//!
//! A task template is a YAML file naming a DAG of steps:
//!
//! ```yaml
//! name: linear_workflow
//! namespace_name: tests_rs
//! version: 1.0.0
//! input_schema: {type: object, required: [even_number]}
//! steps:
//!   - name: step_one
//!     handler: {callable: tests::step_one}
//!   - name: step_two
//!     handler: {callable: tests::step_two, initialization: {factor: 2}}
//!     dependencies: [step_one]
//!     retry: {max_attempts: 5, backoff: linear}
//! environments:
//!   test:
//!     steps:
//!       - name: step_two
//!         timeout_seconds: 5
//! ```
//!
//! * [`TaskTemplate::parse`] / [`TaskTemplate::load_file`] / [`load_dir`] read
//!   templates and report EVERY problem at once ([`TemplateError::Invalid`]),
//!   each with file, step and dotted field path, in document order.
//!   Ruby-era `:colon` keys of the template structure are accepted; the
//!   contents of `input_schema` and `handler.initialization` are kept verbatim.
//! * [`TaskTemplate::for_environment`] applies the overrides of one
//!   `TASKER_ENV` value; [`TaskTemplate::topological_order`] gives the
//!   deterministic execution order.
//! * [`TaskTemplate::compile_input_schema`] gives an [`InputValidator`]
//!   (JSON Schema 2020-12, `format` asserted) whose violations carry JSON
//!   Pointers relative to the input, for the HTTP API.
//! * The model types serialize to the canonical shape and read back with
//!   `serde_json::from_value::<TaskTemplate>`; that path does not validate.

mod error;
mod graph;
mod language;
mod limits;
mod load;
mod model;
mod parse;
mod schema;
mod yaml;

use std::collections::HashMap;
use std::path::Path;

pub use error::{Problem, TemplateError, TemplateErrorKind};
pub use language::{camel_case, generated_yaml, render_for_language, Language};
pub use limits::{MAX_NESTING, MAX_TEMPLATE_BYTES};
pub use load::load_dir;
pub use model::{
    Backoff, EnvironmentOverride, HandlerOverride, HandlerSpec, RetryOverride, RetryPolicy, StepOverride, StepTemplate,
    TaskTemplate, DEFAULT_BACKOFF_BASE_MS, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BACKOFF_MS, DEFAULT_TIMEOUT_SECONDS,
    MAX_ATTEMPTS_LIMIT, MAX_BACKOFF_LIMIT_MS, MAX_TIMEOUT_SECONDS,
};
pub use schema::{InputValidator, InputViolation};

impl TaskTemplate {
    /// Parses and validates a template from YAML text. `file` only labels
    /// the problems.
    ///
    /// # Errors
    /// [`TemplateError::Yaml`] for malformed YAML, [`TemplateError::Invalid`]
    /// listing every problem otherwise.
    pub fn parse(source: &str, file: Option<&Path>) -> Result<TaskTemplate, TemplateError> {
        parse::parse_template(source, file)
    }

    /// Reads and parses a template file.
    ///
    /// # Errors
    /// [`TemplateError::Io`] when the file cannot be read, otherwise as [`TaskTemplate::parse`].
    pub fn load_file(path: &Path) -> Result<TaskTemplate, TemplateError> {
        load::load_file(path)
    }

    /// This template with the overrides of environment `env` applied (a
    /// copy of `self` when there are none). `environments` is kept as is.
    #[must_use]
    pub fn for_environment(&self, env: &str) -> TaskTemplate {
        let mut out = self.clone();
        if let Some(overrides) = self.environments.get(env) {
            for over in &overrides.steps {
                if let Some(step) = out.steps.iter_mut().find(|s| s.name == over.name) {
                    over.apply_to(step);
                }
            }
        }
        out
    }

    /// `namespace/name@version`.
    #[must_use]
    pub fn identity(&self) -> String {
        format!("{}/{}@{}", self.namespace_name, self.name, self.version)
    }

    /// The step named `name`, if any.
    #[must_use]
    pub fn step(&self, name: &str) -> Option<&StepTemplate> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// For each step (in declaration order), the indices of the steps it depends on, ascending
    /// (so in declaration order too), each once. Unknown names and a step naming itself (only
    /// possible in a template built by hand) are left out.
    #[must_use]
    pub fn dependency_indices(&self) -> Vec<Vec<usize>> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            index.entry(step.name.as_str()).or_insert(i);
        }
        self.steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let mut ds: Vec<usize> = step
                    .dependencies
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .filter(|&j| j != i)
                    .collect();
                ds.sort_unstable();
                ds.dedup();
                ds
            })
            .collect()
    }

    /// Steps in dependency order: Kahn's algorithm, ties broken by
    /// declaration order, so the result is deterministic. Unknown
    /// dependency names are ignored; steps on a cycle (only possible in a
    /// template built by hand) come last in declaration order.
    #[must_use]
    pub fn topological_order(&self) -> Vec<&StepTemplate> {
        graph::topological_order(&self.dependency_indices())
            .into_iter()
            .map(|i| &self.steps[i])
            .collect()
    }

    /// Compiles the input schema; a template without one accepts every input.
    ///
    /// # Errors
    /// [`TemplateError::Invalid`] when the schema does not compile (only
    /// possible for a template that did not come from [`TaskTemplate::parse`]).
    pub fn compile_input_schema(&self) -> Result<InputValidator, TemplateError> {
        let Some(schema) = &self.input_schema else {
            return Ok(InputValidator::accept_all());
        };
        InputValidator::new(schema).map_err(|e| {
            let path = e.dotted_path();
            let field = if path.is_empty() {
                "input_schema".to_owned()
            } else {
                format!("input_schema.{path}")
            };
            TemplateError::Invalid {
                problems: vec![Problem {
                    file: None,
                    step: None,
                    field,
                    message: format!("invalid JSON Schema: {}", e.message),
                }],
            }
        })
    }
}
