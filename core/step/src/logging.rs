//! One log format for every Tasker process (`TASKER_LOG_FORMAT=json`): one JSON object per line
//! with `timestamp`, `level`, `target`, `message`, the top-level correlation keys of spec §5.1
//! ([`CORRELATION_KEYS`], null when a line is about no step), the fields of every enclosing span
//! (a worker's step span carries the correlation fields; a server request span its
//! `request_id`), and the event's own fields. A `fields` value holding a JSON object (what
//! `context.logger` passes) is written as that object.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The keys every JSON log line carries at the top level (spec §5.1 "Correlation").
pub const CORRELATION_KEYS: [&str; 5] = ["correlation_id", "task_uuid", "step_uuid", "step_name", "namespace"];

/// The event format of `TASKER_LOG_FORMAT=json`; use with [`JsonFields`] as the field format,
/// so span fields are stored as JSON.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

struct Fields<'a>(&'a mut Map<String, Value>);

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let value = match (field.name(), value) {
            ("fields", Value::String(s)) => match serde_json::from_str::<Value>(&s) {
                Ok(object @ Value::Object(_)) => object,
                _ => Value::String(s),
            },
            (_, v) => v,
        };
        self.0.insert(field.name().to_string(), value);
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(
            field,
            serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number),
        );
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        for key in CORRELATION_KEYS {
            line.insert(key.into(), Value::Null);
        }
        // Outermost span first: inner spans and the event itself win.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(stored) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(stored) {
                    // `otel.*` fields only name and classify the span for trace export.
                    line.extend(fields.into_iter().filter(|(k, _)| !k.starts_with("otel.")));
                }
            }
        }
        event.record(&mut Fields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// A layer added beside the log output (the OpenTelemetry exporter of `tasker-telemetry`).
pub type ExtraLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// The subscriber of every Tasker process: `filter`, stderr, and either JSON lines
/// ([`JsonLines`]) or text (colours only on a terminal without `NO_COLOR`). Installs it; an
/// error if one was installed already.
pub fn install(filter: tracing_subscriber::EnvFilter, json: bool) -> Result<(), String> {
    install_with(filter, json, vec![])
}

/// [`install`] with `extra` layers seeing the same spans and events. `filter` applies to the log
/// output only: each extra layer brings its own filter (so `RUST_LOG=warn` quiets the log without
/// dropping the spans a trace exporter needs).
pub fn install_with(filter: tracing_subscriber::EnvFilter, json: bool, extra: Vec<ExtraLayer>) -> Result<(), String> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(!json && std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    let mut layers: Vec<ExtraLayer> = vec![if json {
        fmt.fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .with_filter(filter)
            .boxed()
    } else {
        fmt.with_filter(filter).boxed()
    }];
    layers.extend(extra);
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn lines_are_json_with_the_correlation_keys_at_the_top() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(answer = 42, "no step here");
            let span = tracing::info_span!(
                "step",
                correlation_id = "c-1",
                task_uuid = "t",
                step_uuid = "s",
                step_name = "charge",
                namespace = "ecommerce_rs"
            );
            let _in = span.enter();
            tracing::warn!(fields = %r#"{"gateway":"stripe"}"#, "charged");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        for key in CORRELATION_KEYS {
            assert!(lines[0].get(key).is_some_and(Value::is_null), "{key} in {}", lines[0]);
        }
        assert_eq!(
            (&lines[0]["message"], &lines[0]["answer"], &lines[0]["level"]),
            (&"no step here".into(), &42.into(), &"INFO".into())
        );
        let l = &lines[1];
        assert_eq!(
            [
                &l["correlation_id"],
                &l["task_uuid"],
                &l["step_uuid"],
                &l["step_name"],
                &l["namespace"]
            ],
            [
                &Value::from("c-1"),
                &"t".into(),
                &"s".into(),
                &"charge".into(),
                &"ecommerce_rs".into()
            ]
        );
        assert_eq!(l["fields"], serde_json::json!({"gateway": "stripe"}));
        assert_eq!(l["message"], "charged");
    }
}
