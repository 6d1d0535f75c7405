//! `GET /metrics`: counters and a latency histogram in Prometheus' text format (version 0.0.4),
//! written by hand: four families do not need a metrics crate.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the latency histogram's buckets, in seconds.
pub const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// What the server counts. Shared by the HTTP side and the GPU worker.
#[derive(Default)]
pub struct Metrics {
    /// (route, status code) -> requests answered.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// Inference requests' latency: per-bucket counts (not cumulative), sum in microseconds, count.
    buckets: [AtomicU64; BUCKETS.len()],
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
    /// Jobs waiting for the GPU worker (not yet started).
    pub queued: AtomicI64,
    /// Inference requests admitted and not yet answered (queued, running, or being read).
    pub in_flight: AtomicI64,
    /// Seconds the worker spent on images (decode, GPU, report), in microseconds, and on the GPU.
    pub worker_us: AtomicU64,
    pub gpu_us: AtomicU64,
    /// Images the worker analysed, and those it failed.
    pub images: AtomicU64,
    pub image_errors: AtomicU64,
    /// The engine can no longer answer (its device was lost): the health checks fail.
    pub broken: std::sync::atomic::AtomicBool,
}

impl Metrics {
    /// Count one answered request; `latency_s` for inference requests.
    pub fn answered(&self, route: &'static str, code: u16, latency_s: Option<f64>) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route, code)).or_insert(0) += 1;
        }
        if let Some(s) = latency_s {
            let i = BUCKETS.iter().position(|&b| s <= b).unwrap_or(BUCKETS.len());
            if let Some(b) = self.buckets.get(i) {
                b.fetch_add(1, Ordering::Relaxed);
            }
            self.latency_sum_us.fetch_add((s * 1e6) as u64, Ordering::Relaxed);
            self.latency_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests answered with `code` on `route` so far.
    pub fn count(&self, route: &'static str, code: u16) -> u64 {
        self.requests.lock().map(|m| m.get(&(route, code)).copied().unwrap_or(0)).unwrap_or(0)
    }

    /// The text of `GET /metrics`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        s.push_str("# HELP forge_requests_total HTTP requests answered, by route and status code.\n");
        s.push_str("# TYPE forge_requests_total counter\n");
        for ((route, code), n) in self.requests.lock().map(|m| m.clone()).unwrap_or_default() {
            let _ = writeln!(s, "forge_requests_total{{route=\"{route}\",code=\"{code}\"}} {n}");
        }
        s.push_str("# HELP forge_request_duration_seconds Latency of inference requests, from arrival to answer.\n");
        s.push_str("# TYPE forge_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (b, c) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += load(c);
            let _ = writeln!(s, "forge_request_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = load(&self.latency_count);
        let _ = writeln!(s, "forge_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(s, "forge_request_duration_seconds_sum {}", load(&self.latency_sum_us) as f64 / 1e6);
        let _ = writeln!(s, "forge_request_duration_seconds_count {count}");
        let gauges = [
            ("forge_queue_depth", "Inference jobs waiting for the GPU worker.", self.queued.load(Ordering::Relaxed)),
            (
                "forge_in_flight",
                "Inference requests admitted and not yet answered.",
                self.in_flight.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let counters = [
            (
                "forge_gpu_seconds_total",
                "Seconds of GPU work (timed around the model's run).",
                load(&self.gpu_us) as f64 / 1e6,
            ),
            (
                "forge_worker_seconds_total",
                "Seconds the worker spent per image: decode, GPU, report.",
                load(&self.worker_us) as f64 / 1e6,
            ),
            ("forge_images_total", "Images the worker analysed.", load(&self.images) as f64),
            (
                "forge_image_errors_total",
                "Images the worker failed (bad image, model or GPU error).",
                load(&self.image_errors) as f64,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_by_status() {
        let m = Metrics::default();
        m.answered("infer", 200, Some(0.003));
        m.answered("infer", 200, Some(0.3));
        m.answered("infer", 503, Some(100.0));
        m.answered("health", 200, None);
        let t = m.render();
        assert!(t.contains("forge_requests_total{route=\"infer\",code=\"200\"} 2\n"), "{t}");
        assert!(t.contains("forge_requests_total{route=\"infer\",code=\"503\"} 1\n"), "{t}");
        assert!(t.contains("forge_request_duration_seconds_bucket{le=\"0.005\"} 1\n"), "{t}");
        assert!(t.contains("forge_request_duration_seconds_bucket{le=\"0.5\"} 2\n"), "{t}");
        assert!(t.contains("forge_request_duration_seconds_bucket{le=\"30\"} 2\n"), "{t}");
        assert!(t.contains("forge_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"), "{t}");
        assert!(t.contains("forge_request_duration_seconds_count 3\n"), "{t}");
        assert_eq!(m.count("health", 200), 1);
    }
}
