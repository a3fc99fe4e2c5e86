//! Any text given as a template file: parsed and validated or refused with problems, never a
//! panic, and in bounded time (libFuzzer's -timeout catches a stall).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(template) = tasker_templates::TaskTemplate::parse(text, None) {
            let _ = template.topological_order();
            let _ = template.compile_input_schema();
        }
    }
});
