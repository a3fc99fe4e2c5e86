//! Validation of a task's input against the template's JSON Schema.
//!
//! The schema is always compiled as JSON Schema 2020-12 (a `$schema` at its
//! root is ignored), `format` is asserted, and defaults are never injected.
//! Violations use JSON Pointers relative to the input; a missing required
//! property points at the property itself.

use std::fmt;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, ValidationError, Validator};
use serde::Serialize;
use serde_json::Value;

/// Longest rendering of a schema value (enum options, const) kept in a message.
const MAX_SHOWN_VALUE: usize = 120;

/// A compiled input schema. Compile once, reuse from any thread.
pub struct InputValidator {
    schema: Option<Value>,
    validator: Option<Validator>,
}

impl fmt::Debug for InputValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputValidator")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// One way in which an input breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputViolation {
    /// JSON Pointer relative to the input, e.g. `/payment_info/token`.
    pub field: String,
    /// The JSON Schema keyword that failed (`required`, `type`, `format`, ...).
    pub keyword: String,
    /// Short English message naming the expectation.
    pub message: String,
}

/// Why a schema does not compile, located inside the schema.
#[derive(Debug, Clone)]
pub(crate) struct SchemaError {
    /// JSON Pointer into the schema (empty for the root).
    pub pointer: String,
    pub message: String,
}

impl SchemaError {
    /// The pointer as a dotted suffix, e.g. `properties.age.type`.
    pub fn dotted_path(&self) -> String {
        self.pointer
            .split('/')
            .skip(1)
            .map(|seg| seg.replace("~1", "/").replace("~0", "~"))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Compiles `schema` as JSON Schema 2020-12 with format assertion.
pub(crate) fn compile(schema: &Value) -> Result<Validator, SchemaError> {
    let mut schema = schema.clone();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
    }
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| SchemaError {
            pointer: e.instance_path().as_str().to_owned(),
            message: e.to_string(),
        })
}

impl InputValidator {
    /// A validator that accepts every input (template without a schema).
    #[must_use]
    pub fn accept_all() -> InputValidator {
        InputValidator {
            schema: None,
            validator: None,
        }
    }

    /// Compiles `schema`; the error message says what is wrong and where.
    pub(crate) fn new(schema: &Value) -> Result<InputValidator, SchemaError> {
        Ok(InputValidator {
            schema: Some(schema.clone()),
            validator: Some(compile(schema)?),
        })
    }

    /// The schema this validator enforces, if any.
    #[must_use]
    pub fn schema(&self) -> Option<&Value> {
        self.schema.as_ref()
    }

    /// Checks `input`; on failure returns every violation, sorted by field
    /// then keyword, without duplicates.
    pub fn validate(&self, input: &Value) -> Result<(), Vec<InputViolation>> {
        let Some(validator) = &self.validator else {
            return Ok(());
        };
        let mut out = Vec::new();
        for error in validator.iter_errors(input) {
            violations_of(&error, &mut out);
        }
        if out.is_empty() {
            return Ok(());
        }
        out.sort_by(|a, b| (&a.field, &a.keyword, &a.message).cmp(&(&b.field, &b.keyword, &b.message)));
        out.dedup();
        Err(out)
    }
}

/// Escapes one JSON Pointer segment (RFC 6901).
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn violations_of(error: &ValidationError<'_>, out: &mut Vec<InputViolation>) {
    let path = error.instance_path().as_str();
    let kind = error.kind();
    let keyword = kind.keyword().to_owned();
    let at = |message: String| InputViolation {
        field: path.to_owned(),
        keyword: keyword.clone(),
        message,
    };
    let each_property = |names: &[String], what: &str, out: &mut Vec<InputViolation>| {
        for name in names {
            out.push(InputViolation {
                field: format!("{path}/{}", escape(name)),
                keyword: keyword.clone(),
                message: format!("{name} {what}"),
            });
        }
    };
    match kind {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
            out.push(InputViolation {
                field: format!("{path}/{}", escape(&name)),
                keyword,
                message: format!("{name} is required"),
            });
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            each_property(unexpected, "is not an allowed property", out);
        }
        ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            each_property(unexpected, "is not an allowed property", out);
        }
        ValidationErrorKind::FalseSchema => out.push(InputViolation {
            field: path.to_owned(),
            keyword: "false".to_owned(),
            message: "is not allowed here".to_owned(),
        }),
        other => out.push(at(message_for(other, error))),
    }
}

fn message_for(kind: &ValidationErrorKind, error: &ValidationError<'_>) -> String {
    use ValidationErrorKind as K;
    match kind {
        K::Type { kind } => {
            let names: Vec<String> = match kind {
                TypeKind::Single(t) => vec![t.to_string()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
            };
            format!("must be of type {}", names.join(" or "))
        }
        K::Minimum { limit } => format!("must be >= {limit}"),
        K::Maximum { limit } => format!("must be <= {limit}"),
        K::ExclusiveMinimum { limit } => format!("must be > {limit}"),
        K::ExclusiveMaximum { limit } => format!("must be < {limit}"),
        K::MultipleOf { multiple_of } => format!("must be a multiple of {multiple_of}"),
        K::MinLength { limit } => format!("must be at least {limit} characters long"),
        K::MaxLength { limit } => format!("must be at most {limit} characters long"),
        K::MinItems { limit } => format!("must have at least {limit} items"),
        K::MaxItems { limit } => format!("must have at most {limit} items"),
        K::MinProperties { limit } => format!("must have at least {limit} properties"),
        K::MaxProperties { limit } => format!("must have at most {limit} properties"),
        K::UniqueItems => "must not contain duplicate items".to_owned(),
        K::Format { format } => format!("must be a valid {format}"),
        K::Pattern { pattern } => format!("must match the pattern {pattern}"),
        K::Enum { options } => match options.as_array() {
            Some(items) => shorten(
                &format!("must be one of: {}", join_values(items)),
                "must be one of the allowed values",
            ),
            None => "must be one of the allowed values".to_owned(),
        },
        K::Constant { expected_value } => shorten(
            &format!("must be equal to {expected_value}"),
            "must be equal to the expected constant",
        ),
        K::Contains => "must contain at least one matching item".to_owned(),
        K::AnyOf { .. } => "must match at least one of the allowed schemas".to_owned(),
        K::OneOfNotValid { .. } => "must match exactly one of the allowed schemas".to_owned(),
        K::OneOfMultipleValid { .. } => "must match exactly one of the allowed schemas, but matches several".to_owned(),
        K::Not { .. } => "must not match the disallowed schema".to_owned(),
        K::AdditionalItems { limit } => format!("must have at most {limit} items"),
        K::UnevaluatedItems { .. } => "must not have unevaluated items".to_owned(),
        K::PropertyNames { error } => {
            format!("has an invalid property name: {}", error.masked_with("name"))
        }
        K::ContentEncoding { content_encoding } => {
            format!("must be valid {content_encoding}-encoded content")
        }
        K::ContentMediaType { content_media_type } => {
            format!("must be valid {content_media_type} content")
        }
        K::Custom { message, .. } => message.clone(),
        K::Referencing(_) => "could not be checked: a schema reference cannot be resolved".to_owned(),
        K::BacktrackLimitExceeded { .. } | K::RegexEngineFailure { .. } => {
            "could not be checked against the pattern".to_owned()
        }
        _ => error.masked().to_string(),
    }
}

fn join_values(items: &[Value]) -> String {
    items.iter().map(Value::to_string).collect::<Vec<_>>().join(", ")
}

/// `text` when it is short enough, otherwise `fallback`.
fn shorten(text: &str, fallback: &str) -> String {
    if text.chars().count() <= MAX_SHOWN_VALUE {
        text.to_owned()
    } else {
        fallback.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_error_pointer_becomes_a_dotted_path() {
        let e = SchemaError {
            pointer: "/properties/a~1b/type".into(),
            message: String::new(),
        };
        assert_eq!(e.dotted_path(), "properties.a/b.type");
        let root = SchemaError {
            pointer: String::new(),
            message: String::new(),
        };
        assert_eq!(root.dotted_path(), "");
    }

    #[test]
    fn pointer_segments_are_escaped_per_rfc_6901() {
        assert_eq!(escape("a/b~c"), "a~1b~0c");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn invalid_schema_does_not_compile() {
        let err = compile(&json!({"properties": {"n": {"minimum": "ten"}}})).unwrap_err();
        assert_eq!(err.pointer, "/properties/n/minimum");
    }

    #[test]
    fn type_violation_lists_every_allowed_type() {
        let v = InputValidator::new(&json!({"type": ["string", "null"]})).unwrap();
        let got = v.validate(&json!(3)).unwrap_err();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].keyword, "type");
        assert!(got[0].message.starts_with("must be of type "), "{}", got[0].message);
        assert!(got[0].message.contains(" or "), "{}", got[0].message);
    }

    #[test]
    fn composite_keywords_get_readable_messages() {
        let v = InputValidator::new(&json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})).unwrap();
        let got = v.validate(&json!(1.5)).unwrap_err();
        assert_eq!(got[0].keyword, "anyOf");
        assert_eq!(got[0].message, "must match at least one of the allowed schemas");
    }
}
