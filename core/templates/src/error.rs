//! Errors: I/O, YAML syntax, and the full list of validation problems.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One validation problem, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// File the template came from, when known.
    pub file: Option<PathBuf>,
    /// Name of the step the problem is in, when it is inside a step.
    pub step: Option<String>,
    /// Dotted path like `steps[2].retry.max_attempts` or `version`
    /// (empty for problems about a whole file, such as a YAML syntax error).
    pub field: String,
    /// What is wrong, in plain English.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if let Some(step) = &self.step {
            write!(f, "step `{step}`: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Coarse classification of a [`TemplateError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateErrorKind {
    /// A file or directory could not be read.
    Io,
    /// The text is not valid YAML.
    Yaml,
    /// The YAML is well formed but the template is not valid.
    Invalid,
}

/// Why a template could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML; `message` includes line and column.
    #[error("{}invalid YAML: {message}", file_prefix(file.as_ref()))]
    Yaml {
        /// File the text came from, when known.
        file: Option<PathBuf>,
        /// Parser message with line and column.
        message: String,
    },
    /// Every problem found, in document order.
    #[error("{}", format_problems(problems))]
    Invalid {
        /// The problems; never empty.
        problems: Vec<Problem>,
    },
}

impl TemplateError {
    /// The kind of this error.
    #[must_use]
    pub fn kind(&self) -> TemplateErrorKind {
        match self {
            TemplateError::Io { .. } => TemplateErrorKind::Io,
            TemplateError::Yaml { .. } => TemplateErrorKind::Yaml,
            TemplateError::Invalid { .. } => TemplateErrorKind::Invalid,
        }
    }

    /// The problems of an `Invalid` error; empty for the other kinds.
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        match self {
            TemplateError::Invalid { problems } => problems,
            _ => &[],
        }
    }

    /// This error as a list of problems (I/O and YAML errors become one
    /// file-level problem each), used to merge the errors of several files.
    #[must_use]
    pub fn into_problems(self) -> Vec<Problem> {
        match self {
            TemplateError::Invalid { problems } => problems,
            TemplateError::Io { path, source } => vec![Problem {
                file: Some(path),
                step: None,
                field: String::new(),
                message: format!("cannot read file: {source}"),
            }],
            TemplateError::Yaml { file, message } => vec![Problem {
                file,
                step: None,
                field: String::new(),
                message: format!("invalid YAML: {message}"),
            }],
        }
    }
}

fn file_prefix(file: Option<&PathBuf>) -> String {
    file.map(|f| format!("{}: ", f.display())).unwrap_or_default()
}

fn format_problems(problems: &[Problem]) -> String {
    match problems {
        [one] => format!("invalid template: {one}"),
        many => {
            let mut out = format!("invalid template: {} problems", many.len());
            for p in many {
                out.push_str("\n  - ");
                out.push_str(&p.to_string());
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_variants() {
        let io = TemplateError::Io {
            path: "x".into(),
            source: std::io::ErrorKind::NotFound.into(),
        };
        assert_eq!(io.kind(), TemplateErrorKind::Io);
        let yaml = TemplateError::Yaml {
            file: None,
            message: "bad at line 1 column 2".into(),
        };
        assert_eq!(yaml.kind(), TemplateErrorKind::Yaml);
        assert_eq!(yaml.to_string(), "invalid YAML: bad at line 1 column 2");
        let invalid = TemplateError::Invalid { problems: Vec::new() };
        assert_eq!(invalid.kind(), TemplateErrorKind::Invalid);
    }

    #[test]
    fn io_and_yaml_errors_become_file_level_problems() {
        let io = TemplateError::Io {
            path: "a.yaml".into(),
            source: std::io::ErrorKind::NotFound.into(),
        };
        let p = io.into_problems();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].file.as_deref(), Some(std::path::Path::new("a.yaml")));
        assert_eq!(p[0].field, "");
        assert!(p[0].to_string().starts_with("a.yaml: cannot read file: "), "{}", p[0]);
    }

    #[test]
    fn a_single_problem_is_shown_inline() {
        let problem = Problem {
            file: None,
            step: Some("s".into()),
            field: "f".into(),
            message: "m".into(),
        };
        let err = TemplateError::Invalid {
            problems: vec![problem],
        };
        assert_eq!(err.to_string(), "invalid template: step `s`: f: m");
    }
}
