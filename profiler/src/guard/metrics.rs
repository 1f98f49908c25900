//! `--metrics ADDR`: guard's counters for Prometheus, in the text
//! exposition format (`prometheus-client`'s `OpenMetrics` encoder), served
//! at `GET /metrics` by a small responder on the loop's runtime.
//!
//! - `roprof_guard_failed_writes_total{workload,path,operation,errno}`:
//!   failed writes, summed over the workload's containers;
//! - `roprof_guard_events_total`: records received from the kernel;
//! - `roprof_guard_lost_total`: records the kernel could not send (ring
//!   full, tables full, read errors, failed tail calls);
//! - `roprof_guard_engine_errors_total`: engine errors survived;
//! - `roprof_guard_held_dropped_total`: failed-write records of containers
//!   not yet classified that the full hold dropped.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::finding::FindingKey;
use crate::model::Losses;

/// Labels of a failed-write counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailedLabels {
    workload: String,
    path: String,
    operation: String,
    errno: String,
}

/// The counters, shared with the responder.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    failed: Family<FailedLabels, Counter>,
    events: Counter,
    lost: Counter,
    engine_errors: Counter,
    held_dropped: Counter,
    /// What each finding has added to its workload's counter so far.
    added: Arc<Mutex<HashMap<FindingKey, u64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers the counters.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let failed = Family::<FailedLabels, Counter>::default();
        let events = Counter::default();
        let lost = Counter::default();
        let engine_errors = Counter::default();
        let held_dropped = Counter::default();
        registry.register(
            "roprof_guard_failed_writes",
            "Writes of guarded containers that failed with EROFS, or with EACCES below one of their mounts",
            failed.clone(),
        );
        registry.register(
            "roprof_guard_events",
            "Records received from the kernel",
            events.clone(),
        );
        registry.register(
            "roprof_guard_lost",
            "Records the kernel could not send (ring buffer or tables full, read errors)",
            lost.clone(),
        );
        registry.register(
            "roprof_guard_engine_errors",
            "Container engine errors survived",
            engine_errors.clone(),
        );
        registry.register(
            "roprof_guard_held_dropped",
            "Failed-write records of containers not yet classified dropped because the hold was full",
            held_dropped.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            failed,
            events,
            lost,
            engine_errors,
            held_dropped,
            added: Arc::default(),
        }
    }

    /// Finding `f` of `workload` has counted `total` failures.
    pub fn failed(&self, workload: &str, f: &FindingKey, total: u64) {
        let Ok(mut added) = self.added.lock() else {
            return;
        };
        let had = added.entry(f.clone()).or_default();
        if total > *had {
            self.failed
                .get_or_create(&FailedLabels {
                    workload: workload.to_owned(),
                    path: f.path.display(),
                    operation: serde_json::to_value(f.op)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    errno: f.errno.as_str().to_owned(),
                })
                .inc_by(total - *had);
            *had = total;
        }
    }

    /// One held record dropped.
    pub fn held_dropped(&self) {
        self.held_dropped.inc();
    }

    /// One record received.
    pub fn event(&self) {
        self.events.inc();
    }

    /// One engine error survived.
    pub fn engine_error(&self) {
        self.engine_errors.inc();
    }

    /// The tracer's loss counters now (they only grow).
    pub fn losses(&self, l: &Losses) {
        let total =
            l.ringbuf_drops + l.traced_full + l.files_full + l.read_errors + l.tail_call_fails;
        let had = self.lost.get();
        if total > had {
            self.lost.inc_by(total - had);
        }
    }

    /// The exposition text.
    #[must_use]
    pub fn text(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }

    /// Serves `GET /metrics` on `addr` from now on (bound before this
    /// returns, so a taken port is an error at start).
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let me = self.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let me = me.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut n = 0;
                    // The request line and headers; the body is ignored.
                    while n < buf.len() {
                        match conn.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(k) => n += k,
                        }
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let req = String::from_utf8_lossy(&buf[..n]);
                    let path = req.split_whitespace().nth(1).unwrap_or_default();
                    let (status, ctype, body) = if req.starts_with("GET ")
                        && (path == "/metrics" || path.starts_with("/metrics?"))
                    {
                        (
                            "200 OK",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            me.text(),
                        )
                    } else {
                        (
                            "404 Not Found",
                            "text/plain; charset=utf-8",
                            "roprof guard serves GET /metrics\n".to_owned(),
                        )
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(body.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Ok(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        guard::finding::Errno,
        model::{CPath, Op},
    };

    #[test]
    fn counters_follow_the_findings_totals() {
        let m = Metrics::new();
        let f = FindingKey {
            container: "c1".into(),
            path: CPath::from("/srv/f"),
            op: Op::Create,
            errno: Errno::Erofs,
        };
        m.failed("web", &f, 1);
        m.failed("web", &f, 1000);
        m.failed("web", &f, 3); // never down
        let g = FindingKey {
            container: "c2".into(),
            ..f.clone()
        };
        m.failed("web", &g, 5); // a second replica adds to the workload's
        m.event();
        m.losses(&Losses {
            ringbuf_drops: 2,
            ..Losses::default()
        });
        let text = m.text();
        assert!(
            text.contains(
                r#"roprof_guard_failed_writes_total{workload="web",path="/srv/f",operation="create",errno="EROFS"} 1005"#
            ),
            "{text}"
        );
        assert!(text.contains("roprof_guard_events_total 1"), "{text}");
        assert!(text.contains("roprof_guard_lost_total 2"), "{text}");
    }
}
