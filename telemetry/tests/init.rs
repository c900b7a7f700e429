//! The process-wide `init` as a binary runs it: log formats, a second `init`, repeated
//! errors, metrics through the global meter, trace context without any exporter. Each case
//! runs in a child process (see `common`) with its own environment.

mod common;

use common::{is_child, run_child};
use dirsync_telemetry::labels::{ObjectAction, ObjectOutcome};
use dirsync_telemetry::{LogFormat, Settings, TelemetryError, init, metrics};
use lapin::types::AMQPValue;

#[test]
fn without_an_endpoint_spans_have_ids_and_travel_in_headers() {
    let child = run_child(
        "child_without_endpoint",
        &[("DIRSYNC_LOG_FORMAT", "json"), ("RUST_LOG", "debug")],
    );
    let line = child.line("published");
    let traceparent = line["traceparent"].as_str().unwrap();
    let trace_id = line["trace_id"].as_str().unwrap();
    let span_id = line["span_id"].as_str().unwrap();
    assert_eq!(traceparent, format!("00-{trace_id}-{span_id}-01"));
    let handled = child.line("handled");
    assert_eq!(handled["trace_id"], trace_id);
    assert_ne!(handled["span_id"], span_id);
    assert_eq!(handled["span"]["name"], "batch.process");
    assert_eq!(child.line("telemetry started")["otlp_traces"], false);
}

#[tokio::test]
#[ignore = "run in a child process"]
async fn child_without_endpoint() {
    if !is_child() {
        return;
    }
    let telemetry = init(Settings::from_env("init-child").unwrap()).unwrap();
    let headers = tracing::info_span!("batch.publish").in_scope(|| {
        let headers = dirsync_telemetry::amqp::inject_current();
        let AMQPValue::LongString(traceparent) = &headers.inner()["traceparent"] else {
            panic!("traceparent is not a long string: {headers:?}");
        };
        let traceparent = String::from_utf8_lossy(traceparent.as_bytes());
        tracing::info!(%traceparent, "published");
        headers
    });
    let span = tracing::info_span!("batch.process");
    dirsync_telemetry::amqp::set_parent_from(&span, Some(&headers));
    span.in_scope(|| tracing::debug!("handled"));
    telemetry.shutdown().await;
}

#[test]
fn a_second_init_is_refused_without_panicking() {
    run_child("child_inits_twice", &[]);
}

#[tokio::test]
#[ignore = "run in a child process"]
async fn child_inits_twice() {
    if !is_child() {
        return;
    }
    let telemetry = init(Settings::from_env("init-child").unwrap()).unwrap();
    let again = init(Settings::from_env("init-child").unwrap());
    assert!(
        matches!(again, Err(TelemetryError::AlreadyInitialised(_))),
        "{again:?}"
    );
    telemetry.shutdown().await;
}

#[test]
fn an_invalid_log_format_is_refused() {
    run_child("child_with_bad_format", &[("DIRSYNC_LOG_FORMAT", "yaml")]);
}

#[test]
#[ignore = "run in a child process"]
fn child_with_bad_format() {
    if !is_child() {
        return;
    }
    let err = Settings::from_env("init-child").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid DIRSYNC_LOG_FORMAT=\"yaml\": expected json or text"
    );
}

#[test]
fn repeated_errors_are_cut_and_counted_by_exit() {
    let child = run_child("child_repeats_an_error", &[("DIRSYNC_LOG_FORMAT", "json")]);
    let lines = child.json_lines();
    let repeats = lines
        .iter()
        .filter(|l| l["message"] == "webex unreachable")
        .count();
    assert_eq!(repeats, 5, "{}", child.stderr);
    let summary = child.line("suppressed 7 repeats within 60s of: webex unreachable");
    assert_eq!(summary["level"], "ERROR");
    assert_eq!(summary["suppressed"], 7);
}

#[tokio::test]
#[ignore = "run in a child process"]
async fn child_repeats_an_error() {
    if !is_child() {
        return;
    }
    let telemetry = init(Settings::from_env("init-child").unwrap()).unwrap();
    for attempt in 0..12 {
        tracing::error!(attempt, "webex unreachable");
    }
    telemetry.shutdown().await;
}

#[test]
fn text_logs_for_people() {
    let child = run_child("child_logs_text", &[("DIRSYNC_LOG_FORMAT", "text")]);
    let started = child
        .stderr
        .lines()
        .find(|l| l.contains("telemetry started"))
        .unwrap_or_else(|| panic!("{}", child.stderr));
    assert!(started.contains(" INFO "), "{started}");
    assert!(!started.starts_with('{'), "{started}");
}

#[tokio::test]
#[ignore = "run in a child process"]
async fn child_logs_text() {
    if !is_child() {
        return;
    }
    let settings = Settings::from_env("init-child").unwrap();
    assert_eq!(settings.log_format, LogFormat::Text);
    init(settings).unwrap().shutdown().await;
}

#[test]
fn the_global_metrics_reach_the_scrape() {
    run_child("child_scrapes_metrics", &[]);
}

#[tokio::test]
#[ignore = "run in a child process"]
async fn child_scrapes_metrics() {
    if !is_child() {
        return;
    }
    let telemetry = init(Settings::from_env("metrics-child").unwrap()).unwrap();
    metrics().objects(ObjectOutcome::Synced, ObjectAction::Update, 2);
    let handle = telemetry.metrics_handle();
    let text = handle.render();
    assert_eq!(text, telemetry.prometheus_text());
    let series = text
        .lines()
        .find(|l| l.starts_with("dirsync_objects_total{"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(series.contains(r#"action="update""#), "{series}");
    assert!(series.contains(r#"outcome="synced""#), "{series}");
    assert!(series.ends_with(" 2"), "{series}");
    assert!(text.contains(r#"service_name="metrics-child""#), "{text}");
    telemetry.shutdown().await;
}
