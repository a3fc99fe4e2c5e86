//! Any bytes given as the body of `POST /v1/tasks`: a request or a 4xx naming a field, never a
//! panic, and never a request the database could not store (a NUL in any string or key).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    match tasker_orchestration::request::parse_task_request(data) {
        Ok(req) => {
            let value = serde_json::to_value(&req).expect("a request serialises");
            assert!(!has_nul(&value), "a NUL got through: {value}");
        }
        Err(e) => {
            assert!(e.status.is_client_error(), "{e:?}");
            assert!(e.body.field.is_some(), "no field named: {e:?}");
        }
    }
});
