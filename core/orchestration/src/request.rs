//! Reading requests with serde: a body, a query string or a path that does not fit its type is a
//! 400 whose `field` is the JSON Pointer of the offending part (serde_path_to_error tracks it).

use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The JSON Pointer of a serde path (`tags[0]` → `/tags/0`; the root is ``).
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{}", key.replace('~', "~0").replace('/', "~1"))),
            Segment::Enum { variant } => out.push_str(&format!("/{variant}")),
            Segment::Unknown => {}
        }
    }
    out
}

/// serde's message without its position suffix, and the pointer it really concerns: a missing or
/// unknown field is reported by serde at its parent, but it is the field that is to blame.
fn describe(path: String, message: &str) -> (String, String) {
    let message = match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => &message[..i],
        _ => message,
    };
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string)
    };
    if let Some(name) = quoted("missing field `") {
        return (format!("{path}/{name}"), format!("{name} is required"));
    }
    if let Some(name) = quoted("duplicate field `") {
        return (format!("{path}/{name}"), format!("{name} is given more than once"));
    }
    if let Some(name) = quoted("unknown field `") {
        let field = if path.ends_with(&format!("/{name}")) {
            path
        } else {
            format!("{path}/{name}")
        };
        let expected = message.split_once(", expected ").map(|(_, e)| e).unwrap_or("");
        return (field, format!("unknown field {name}; expected {expected}"));
    }
    let what = if path.is_empty() {
        "request".to_string()
    } else {
        path.clone()
    };
    (path, format!("{what}: {message}"))
}

/// A JSON request body: `application/json` required (415 otherwise), then parsed into `T`.
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" && !(essence.starts_with("application/") && essence.ends_with("+json")) {
        let shown = if content_type.is_empty() { "none" } else { content_type };
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            format!("the request body must be application/json (Content-Type was {shown})"),
        ));
    }
    json_value(body)
}

/// A JSON body (any content type) parsed into `T`.
fn json_value<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Parsed as JSON first: serde would also read a struct from an array, positionally.
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        let (_, message) = describe(String::new(), &e.to_string());
        ApiError::invalid("", format!("malformed JSON: {message}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::invalid("", "the request body must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let (field, message) = describe(pointer(e.path()), &e.inner().to_string());
        ApiError::invalid(&field, message)
    })
}

/// The body of `POST /v1/tasks` read into a request, with every shape rule of spec §0.3 step 1
/// applied: a 400 naming the field, or a request the engine accepts as far as its shape goes.
/// (The fuzz target `create_request` drives this with arbitrary bytes.)
pub fn parse_task_request(body: &[u8]) -> Result<tasker_step::TaskRequest, ApiError> {
    let req: tasker_step::TaskRequest = json_value(body)?;
    tasker_engine::check_task_request(&req).map_err(ApiError::from)?;
    Ok(req)
}

/// A query string parsed into `T` (each parameter's pointer is `/<name>`).
pub fn query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    let raw = raw.unwrap_or("");
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let (field, message) = describe(pointer(e.path()), &e.inner().to_string());
        ApiError::invalid(&field, message)
    })
}

/// A path parameter parsed by `FromStr`, else a 400 naming it.
pub fn path_param<T: std::str::FromStr>(name: &str, raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::invalid(&format!("/{name}"), format!("{raw:?} is not {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        tags: Option<Vec<String>>,
        priority: Option<i32>,
    }

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        h
    }

    fn field_of(body: &str) -> (Option<String>, String) {
        let e = json_body::<Body>(&json_headers(), body.as_bytes()).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.body.code, "INVALID_REQUEST");
        (e.body.field, e.body.message)
    }

    #[test]
    fn body_errors_name_the_field() {
        assert_eq!(field_of(r#"{}"#), (Some("/name".into()), "name is required".into()));
        assert_eq!(field_of(r#"{"name": 5}"#).0.as_deref(), Some("/name"));
        assert_eq!(
            field_of(r#"{"name": "a", "tags": ["x", 1]}"#).0.as_deref(),
            Some("/tags/1")
        );
        let (field, message) = field_of(r#"{"name": "a", "priority": 5000000000}"#);
        assert_eq!(field.as_deref(), Some("/priority"));
        assert!(message.contains("i32"), "{message}");
        let (field, message) = field_of(r#"{"name": "a", "bogus": 1}"#);
        assert_eq!(field.as_deref(), Some("/bogus"));
        assert!(message.starts_with("unknown field bogus; expected"), "{message}");
        let (field, message) = field_of(r#"{"name": "a"} trailing"#);
        assert_eq!(field.as_deref(), Some(""));
        assert!(message.starts_with("malformed JSON"), "{message}");
        assert!(!message.contains(" at line "), "{message}");
        assert_eq!(field_of("[1]").0.as_deref(), Some(""));
    }

    #[test]
    fn body_needs_a_json_content_type() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let e = json_body::<Body>(&h, br#"{"name": "a"}"#).unwrap_err();
        assert_eq!(
            (e.status, e.body.code.as_str()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
        );
        assert!(json_body::<Body>(&HeaderMap::new(), b"{}").is_err());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/merge-patch+json"),
        );
        assert!(json_body::<Body>(&h, br#"{"name": "a"}"#).is_ok());
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<i64>,
        status: Option<tasker_engine::TaskStatus>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let field = |q: &str| query::<Q>(Some(q)).unwrap_err().body.field;
        assert_eq!(field("limit=x").as_deref(), Some("/limit"));
        assert_eq!(field("status=done").as_deref(), Some("/status"));
        assert_eq!(field("stauts=error").as_deref(), Some("/stauts"));
        assert_eq!(field("limit=1&limit=2").as_deref(), Some("/limit"));
        let q = query::<Q>(Some("limit=5&status=waiting_for_retry")).unwrap();
        assert_eq!(
            (q.limit, q.status),
            (Some(5), Some(tasker_engine::TaskStatus::WaitingForRetry))
        );
        assert!(query::<Q>(None).is_ok());
    }
}
