//! The OpenAPI 3.1 document of the REST API, generated from the Rust types and handlers
//! ([`crate::api::ApiDoc`]). A copy is committed as `docs/openapi.json`; a test fails when the
//! two differ (`TASKER_BLESS=1 cargo test -p tasker-orchestration openapi` rewrites the copy).

use std::sync::LazyLock;

use utoipa::OpenApi;

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut doc = serde_json::to_value(crate::api::ApiDoc::openapi()).expect("the OpenAPI document serialises");
    camel_case_links(&mut doc);
    secure(&mut doc);
    serde_json::to_string_pretty(&doc).expect("the OpenAPI document serialises")
});

/// utoipa 5.5 writes a Link object's fields in snake case (`operation_id`); OpenAPI spells them
/// `operationId`, `operationRef` and `requestBody`, and tools ignore the others.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links").and_then(|l| l.as_object_mut()))
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (from, to) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(from) {
                link.insert(to.to_string(), v);
            }
        }
    }
}

/// Operations open to anyone, and those an operator may open (`--open`): every other one
/// needs a token when the server runs with `--auth tokens` (`crate::auth`).
const OPEN: &[&str] = &["getHealth", "getOpenApi"];
const OPENABLE: &[&str] = &["getReady", "getMetrics"];

/// The bearer-token security scheme, required by every operation but the open ones, with the
/// 401 and 403 answers it brings.
fn secure(doc: &mut serde_json::Value) {
    use serde_json::json;
    doc["components"]["securitySchemes"] = json!({"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "An API token (`tasker token create`), as `Authorization: Bearer tkr_...`. Its scopes (`<namespace>:read|write|admin`, `*:...`) decide what it may read and do. Required unless the server runs with `--auth none`."
    }});
    doc["security"] = json!([{"bearer": []}]);
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let error = |description: &str| {
        json!({"description": description,
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
    };
    for op in paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
    {
        let id = op["operationId"].as_str().unwrap_or_default().to_string();
        if OPEN.contains(&id.as_str()) {
            op["security"] = json!([]);
            continue;
        }
        if OPENABLE.contains(&id.as_str()) {
            op["security"] = json!([{}, {"bearer": []}]);
        }
        let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
            continue;
        };
        responses.insert(
            "401".into(),
            error("UNAUTHENTICATED: no token, or one unknown, expired or revoked (with `WWW-Authenticate: Bearer`)"),
        );
        let forbidden = if id == "getMetrics" {
            "FORBIDDEN: closed, `/metrics` needs a `*:read` token; `details` name the scope"
        } else {
            "FORBIDDEN: the token lacks the scope this needs; `details` name it"
        };
        responses.insert("403".into(), error(forbidden));
        // Statuses in ascending order, as the rest of the document.
        let mut sorted: Vec<_> = std::mem::take(responses).into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        responses.extend(sorted);
    }
}

/// The document as served at `GET /v1/openapi.json`.
pub fn document_json() -> &'static str {
    DOCUMENT.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
    }

    #[test]
    fn committed_openapi_document_matches_the_code() {
        let generated = format!("{}\n", document_json());
        let path = committed_path();
        if std::env::var_os("TASKER_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is stale: run `TASKER_BLESS=1 cargo test -p tasker-orchestration openapi` and commit it"
        );
    }

    #[test]
    fn document_is_openapi_3_1_with_typed_responses() {
        let doc: Value = serde_json::from_str(document_json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                assert!(op["operationId"].is_string(), "{method} {path} has no operationId");
                for (status, response) in op["responses"].as_object().unwrap() {
                    let content = response["content"].as_object();
                    let schema = content.and_then(|c| c.values().next()).map(|m| &m["schema"]);
                    assert!(
                        schema.is_some_and(|s| !s.is_null()),
                        "{method} {path} {status} has no schema"
                    );
                    if status.starts_with('4') || status.starts_with('5') {
                        let s = schema.unwrap();
                        let is_error_body = s["$ref"] == "#/components/schemas/ErrorBody"
                            || (path == "/ready" && s["$ref"] == "#/components/schemas/ServiceStatus");
                        assert!(is_error_body, "{method} {path} {status} answers {s}");
                    }
                }
            }
        }
        assert_eq!(operations, 13);
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert_eq!(doc["paths"]["/health"]["get"]["security"], serde_json::json!([]));
        for (path, method) in [
            ("/v1/tasks", "post"),
            ("/v1/tasks/{task_uuid}", "get"),
            ("/v1/events/stream", "get"),
        ] {
            let responses = &doc["paths"][path][method]["responses"];
            assert!(
                responses["401"].is_object() && responses["403"].is_object(),
                "{method} {path}"
            );
        }
        let link = &doc["paths"]["/v1/tasks"]["post"]["responses"]["201"]["links"]["GetCreatedTask"];
        assert_eq!(link["operationId"], "getTask", "{link}");
        let statuses = &doc["components"]["schemas"]["TaskStatus"]["enum"];
        assert_eq!(statuses.as_array().unwrap().len(), 7, "{statuses}");
    }
}
