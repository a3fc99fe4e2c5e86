//! The input-validation contract used by the HTTP API.

use serde_json::{json, Value};
use tasker_templates::{InputValidator, InputViolation, TaskTemplate, TemplateErrorKind};

fn validator(schema: &Value) -> InputValidator {
    let yaml = format!(
        "name: checkout\nnamespace_name: shop\nversion: 1.0.0\ninput_schema: {schema}\n\
         steps:\n  - name: charge\n    handler: {{callable: shop::charge}}\n"
    );
    TaskTemplate::parse(&yaml, None)
        .unwrap()
        .compile_input_schema()
        .unwrap()
}

fn violations(schema: &Value, input: &Value) -> Vec<InputViolation> {
    validator(schema).validate(input).expect_err("input should be rejected")
}

fn v(field: &str, keyword: &str, message: &str) -> InputViolation {
    InputViolation {
        field: field.into(),
        keyword: keyword.into(),
        message: message.into(),
    }
}

fn payment_schema() -> Value {
    json!({
        "type": "object",
        "required": ["payment_info", "quantity"],
        "properties": {
            "payment_info": {
                "type": "object",
                "required": ["token", "amount"],
                "properties": {
                    "token": {"type": "string", "minLength": 4},
                    "amount": {"type": "number", "exclusiveMinimum": 0}
                }
            },
            "quantity": {"type": "integer", "minimum": 1},
            "email": {"type": "string", "format": "email"},
            "ship_on": {"type": "string", "format": "date"},
            "tags": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[a-z]+$"}},
            "tier": {"enum": ["gold", "silver"]}
        }
    })
}

#[test]
fn missing_nested_required_property_points_at_the_property() {
    let got = violations(
        &payment_schema(),
        &json!({"payment_info": {"amount": 3}, "quantity": 1}),
    );
    assert_eq!(got, [v("/payment_info/token", "required", "token is required")]);
}

#[test]
fn missing_required_property_name_is_escaped_as_a_json_pointer() {
    let schema = json!({"type": "object", "required": ["a/b", "c~d"]});
    let got = violations(&schema, &json!({}));
    assert_eq!(
        got,
        [
            v("/a~1b", "required", "a/b is required"),
            v("/c~0d", "required", "c~d is required")
        ]
    );
}

#[test]
fn type_error_points_at_the_value() {
    let got = violations(
        &payment_schema(),
        &json!({"payment_info": {"token": "tok_1", "amount": 5}, "quantity": "two"}),
    );
    assert_eq!(got, [v("/quantity", "type", "must be of type integer")]);
}

#[test]
fn email_format_is_asserted() {
    let input = json!({"payment_info": {"token": "tok_1", "amount": 5}, "quantity": 1, "email": "not-an-email"});
    assert_eq!(
        violations(&payment_schema(), &input),
        [v("/email", "format", "must be a valid email")]
    );
    let ok = json!({"payment_info": {"token": "tok_1", "amount": 5}, "quantity": 1, "email": "a@example.com"});
    assert_eq!(validator(&payment_schema()).validate(&ok), Ok(()));
}

#[test]
fn date_format_is_asserted() {
    let input = json!({"payment_info": {"token": "tok_1", "amount": 5}, "quantity": 1, "ship_on": "2024-02-30"});
    assert_eq!(
        violations(&payment_schema(), &input),
        [v("/ship_on", "format", "must be a valid date")]
    );
    let ok = json!({"payment_info": {"token": "tok_1", "amount": 5}, "quantity": 1, "ship_on": "2024-02-29"});
    assert_eq!(validator(&payment_schema()).validate(&ok), Ok(()));
}

#[test]
fn format_is_asserted_even_when_the_schema_declares_another_dialect() {
    let schema = json!({"$schema": "http://json-schema.org/draft-07/schema#", "format": "email"});
    assert_eq!(
        violations(&schema, &json!("nope")),
        [v("", "format", "must be a valid email")]
    );
}

#[test]
fn every_violation_is_returned_sorted_by_field_then_keyword() {
    let input = json!({
        "payment_info": {"token": "ab", "amount": 0},
        "quantity": 0,
        "email": "x",
        "tags": [],
        "tier": "bronze"
    });
    let got = violations(&payment_schema(), &input);
    assert_eq!(
        got,
        [
            v("/email", "format", "must be a valid email"),
            v("/payment_info/amount", "exclusiveMinimum", "must be > 0"),
            v("/payment_info/token", "minLength", "must be at least 4 characters long"),
            v("/quantity", "minimum", "must be >= 1"),
            v("/tags", "minItems", "must have at least 1 items"),
            v("/tier", "enum", "must be one of: \"gold\", \"silver\""),
        ]
    );
}

#[test]
fn several_violations_at_one_field_are_ordered_by_keyword() {
    let schema = json!({"type": "string", "minLength": 5, "pattern": "^[0-9]+$"});
    let got = violations(&schema, &json!("abc"));
    let keywords: Vec<_> = got.iter().map(|v| v.keyword.as_str()).collect();
    assert_eq!(keywords, ["minLength", "pattern"]);
    assert_eq!(got[1].message, "must match the pattern ^[0-9]+$");
}

#[test]
fn array_items_are_addressed_by_index() {
    let input = json!({"payment_info": {"token": "tok_1", "amount": 5}, "quantity": 1, "tags": ["ok", "Bad", 3]});
    let got = violations(&payment_schema(), &input);
    let fields: Vec<_> = got.iter().map(|v| (v.field.as_str(), v.keyword.as_str())).collect();
    assert_eq!(fields, [("/tags/1", "pattern"), ("/tags/2", "type")]);
}

#[test]
fn additional_properties_are_allowed_unless_forbidden() {
    let input = json!({"payment_info": {"token": "tok_1", "amount": 5, "extra": true}, "quantity": 1, "note": "hi"});
    assert_eq!(validator(&payment_schema()).validate(&input), Ok(()));
    let closed = json!({"type": "object", "properties": {"a": {}}, "additionalProperties": false});
    assert_eq!(
        violations(&closed, &json!({"a": 1, "b": 2})),
        [v("/b", "additionalProperties", "b is not an allowed property")]
    );
}

#[test]
fn large_values_are_not_copied_into_messages() {
    let options: Vec<String> = (0..200).map(|i| format!("option_number_{i}")).collect();
    let schema = json!({"enum": options});
    let big = "x".repeat(10_000);
    let got = violations(&schema, &json!(big));
    assert_eq!(got, [v("", "enum", "must be one of the allowed values")]);
}

#[test]
fn defaults_are_not_injected() {
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer", "default": 5}}});
    let input = json!({});
    assert_eq!(validator(&schema).validate(&input), Ok(()));
    assert_eq!(input, json!({}));
}

#[test]
fn template_without_schema_accepts_everything() {
    let yaml = "name: t\nnamespace_name: n\nversion: 0.1.0\nsteps:\n  - {name: s, handler: {callable: x}}\n";
    let validator = TaskTemplate::parse(yaml, None).unwrap().compile_input_schema().unwrap();
    assert_eq!(validator.validate(&json!({"anything": [1, 2]})), Ok(()));
    assert_eq!(validator.validate(&json!(null)), Ok(()));
}

#[test]
fn uncompilable_schema_in_a_hand_built_template_is_an_invalid_error() {
    let yaml = "name: t\nnamespace_name: n\nversion: 0.1.0\nsteps:\n  - {name: s, handler: {callable: x}}\n";
    let mut template = TaskTemplate::parse(yaml, None).unwrap();
    template.input_schema = Some(json!({"type": "no_such_type"}));
    let err = template.compile_input_schema().unwrap_err();
    assert_eq!(err.kind(), TemplateErrorKind::Invalid);
    assert!(err.problems()[0].field.starts_with("input_schema"));
}

#[test]
fn validator_is_send_and_sync_and_reusable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<InputValidator>();
    let validator = std::sync::Arc::new(validator(&payment_schema()));
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let validator = std::sync::Arc::clone(&validator);
            std::thread::spawn(move || validator.validate(&json!({"quantity": i})).unwrap_err().len())
        })
        .collect();
    let counts: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(counts, [2, 1]);
}
