//! `/metrics`: Prometheus text, rendered from what the crates record through
//! the `metrics` facade, plus gauges read at scrape time (the database pool,
//! the push and scan queues, the process's memory and open files).

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::AppState;

/// Seconds: from a millisecond to ten seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Messages per stored batch.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The process's recorder, installed on first use (one per process: the
/// facade has one global recorder).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("ieum_store_batch_messages".into()),
                    BATCH_BUCKETS,
                )
            })
            .and_then(|b| b.install_recorder())
            .expect("the metrics recorder is installed once");
        // Histograms keep their samples until upkeep folds them in.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread for metrics upkeep");
        handle
    })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let (open, idle) = state.store.pool_connections();
    metrics::gauge!("ieum_db_pool_connections", "state" => "in_use")
        .set(f64::from(open.saturating_sub(idle)));
    metrics::gauge!("ieum_db_pool_connections", "state" => "idle").set(f64::from(idle));
    metrics::gauge!("ieum_db_pool_max_connections").set(f64::from(state.store.pool_max()));
    match state.store.queue_depths().await {
        Ok((push, scan)) => {
            metrics::gauge!("ieum_queue_depth", "queue" => "push_outbox").set(push as f64);
            metrics::gauge!("ieum_queue_depth", "queue" => "scan").set(scan as f64);
            metrics::gauge!("ieum_database_up").set(1.0);
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the queue depths could not be read");
            metrics::gauge!("ieum_database_up").set(0.0);
        }
    }
    if let Some(rss) = resident_bytes() {
        metrics::gauge!("ieum_process_resident_memory_bytes").set(rss as f64);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("ieum_process_open_fds").set(fds.count() as f64);
    }
    let h = handle();
    h.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(h.render())
}

/// VmRSS of /proc/self/status, in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
