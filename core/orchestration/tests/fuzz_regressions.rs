//! Every input kept from fuzzing `create_request` (fuzz/regressions/create_request) holds the
//! target's properties: a request holding no NUL anywhere, or a 4xx naming its field; never a
//! panic.

use serde_json::Value;

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

#[test]
fn kept_fuzz_inputs_give_a_storable_request_or_a_4xx_naming_a_field() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/create_request");
    let (mut accepted, mut refused) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let body = std::fs::read(&path).unwrap();
        match tasker_orchestration::request::parse_task_request(&body) {
            Ok(req) => {
                let value = serde_json::to_value(&req).unwrap();
                assert!(!has_nul(&value), "{}: a NUL got through: {value}", path.display());
                accepted += 1;
            }
            Err(e) => {
                assert!(e.status.is_client_error(), "{}: {e:?}", path.display());
                assert!(e.body.field.is_some(), "{}: {e:?}", path.display());
                refused += 1;
            }
        }
    }
    assert!(
        accepted >= 1 && refused >= 3,
        "{accepted} accepted, {refused} refused in {}",
        dir.display()
    );
}
