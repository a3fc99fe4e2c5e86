//! Distributed traces: OpenTelemetry spans from `tracing` spans (`tracing-opentelemetry`),
//! exported over OTLP/HTTP, and W3C Trace Context carried from `POST /v1/tasks` through the task
//! to each step attempt and to the tasks a handler delegates to.
//!
//! Configured only by the standard variables: export is on when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not `true`, nor
//! `OTEL_TRACES_EXPORTER` `none`); `OTEL_EXPORTER_OTLP_PROTOCOL` picks `http/protobuf` (the
//! default) or `http/json`; `OTEL_SERVICE_NAME` names the process (default: `tasker-server`,
//! `tasker-worker-<language>`); `OTEL_TRACES_SAMPLER` / `_ARG` sample; `OTEL_BSP_*` tune the
//! batch exporter. With export off no layer is installed: spans cost what they cost before, and
//! a task's `traceparent` is still passed through to its handlers unchanged.

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tasker_step::logging::ExtraLayer;
use tasker_step::TraceContext;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

/// Whether the environment asks for trace export.
pub fn export_configured() -> bool {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim().eq_ignore_ascii_case("none"));
    !disabled && (env_set("OTEL_EXPORTER_OTLP_ENDPOINT") || env_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The OpenTelemetry layer for this process when the environment asks for export (else
/// `Ok(None)`), named `default_service` unless `OTEL_SERVICE_NAME` says otherwise. An error
/// names a setting the exporter refused (a `grpc` protocol, say: only OTLP/HTTP is built in).
pub fn layer(default_service: &str) -> Result<Option<ExtraLayer>, String> {
    if !export_configured() {
        return Ok(None);
    }
    use opentelemetry_otlp::WithExportConfig;
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http();
    if !env_set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") && !env_set("OTEL_EXPORTER_OTLP_PROTOCOL") {
        // The OTLP default (the crate would pick JSON since both encodings are built in).
        builder = builder.with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
    }
    let exporter = builder
        .build()
        .map_err(|e| format!("OpenTelemetry trace exporter: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !env_set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name(default_service.to_string());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("tasker");
    let _ = PROVIDER.set(provider);
    // Tasker's own spans (requests, step attempts) and the events inside them, whatever
    // `RUST_LOG` keeps in the log; never the exporter's own HTTP client.
    let targets = tracing_subscriber::filter::Targets::new().with_targets(
        [
            "tasker_orchestration",
            "tasker_worker",
            "tasker_engine",
            "tasker_step",
            "tasker_host",
        ]
        .map(|t| (t, tracing::Level::INFO)),
    );
    Ok(Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(targets)
            .boxed(),
    ))
}

/// Exports every span ended so far and stops the exporter (at process exit). A no-op when
/// export is off.
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        let _ = p.force_flush();
        let _ = p.shutdown();
    }
}

/// Exports every span ended so far (a worker stopping inside a host process that goes on).
pub fn flush() {
    if let Some(p) = PROVIDER.get() {
        let _ = p.force_flush();
    }
}

/// A trace context from `traceparent` / `tracestate` header values, if the `traceparent` is a
/// valid W3C one (an invalid one is ignored, as the W3C recommendation requires: a new trace
/// starts instead).
pub fn parse(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<TraceContext> {
    let traceparent = traceparent?.trim();
    if !well_formed(traceparent) {
        return None;
    }
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_string(), traceparent.to_string());
    if let Some(state) = tracestate {
        carrier.insert("tracestate".to_string(), state.trim().to_string());
    }
    let cx = TraceContextPropagator::new().extract(&carrier);
    from_otel(&cx)
}

/// The W3C field widths, which the propagator checks less strictly (it pads a short trace id):
/// `version-trace_id-parent_id-flags`, lowercase hex of 2, 32, 16 and 2 digits; version `ff`
/// is invalid, and version `00` has exactly these four fields.
fn well_formed(traceparent: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let parts: Vec<&str> = traceparent.split('-').collect();
    parts.len() >= 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && (parts[0] != "00" || parts.len() == 4)
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
}

fn from_otel(cx: &opentelemetry::Context) -> Option<TraceContext> {
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    Some(TraceContext {
        traceparent: carrier.remove("traceparent")?,
        tracestate: carrier.remove("tracestate").filter(|s| !s.is_empty()),
    })
}

fn to_otel(trace: &TraceContext) -> opentelemetry::Context {
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_string(), trace.traceparent.clone());
    if let Some(state) = &trace.tracestate {
        carrier.insert("tracestate".to_string(), state.clone());
    }
    TraceContextPropagator::new().extract(&carrier)
}

/// Makes `span` a child of `parent` (a remote span: the client's, or the span a task was
/// created in). Call before the span is entered. A no-op when export is off or `parent` is None.
pub fn set_parent(span: &tracing::Span, parent: Option<&TraceContext>) {
    if let (Some(parent), Some(_)) = (parent, PROVIDER.get()) {
        let _ = span.set_parent(to_otel(parent));
    }
}

/// Where `span` sits in its trace, when traces are exported and the span is recorded; else
/// `fallback` (the context received, passed through unchanged).
pub fn context_of(span: &tracing::Span, fallback: Option<TraceContext>) -> Option<TraceContext> {
    if PROVIDER.get().is_some() {
        if let Some(own) = from_otel(&span.context()) {
            return Some(own);
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w3c_trace_context_is_parsed_normalised_or_ignored() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = parse(Some(tp), Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(t.traceparent, tp);
        assert_eq!(t.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id(), "00f067aa0ba902b7");
        // Not sampled is still a trace to join.
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert_eq!(parse(Some(unsampled), None).unwrap().traceparent, unsampled);
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(parse(Some(bad), None), None, "{bad:?}");
        }
        assert_eq!(parse(None, Some("a=b")), None);
    }

    #[test]
    fn without_export_a_span_passes_the_received_context_through() {
        let received = parse(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), None);
        let span = tracing::info_span!("step");
        set_parent(&span, received.as_ref());
        assert_eq!(context_of(&span, received.clone()), received);
        assert_eq!(context_of(&span, None), None);
    }
}
