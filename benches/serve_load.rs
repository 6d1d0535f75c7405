//! A bounded load test of `wgpu-forge serve` on loopback: C clients send N v2 inference requests
//! (each with its own id) as fast as they are answered, then the test checks that every id was
//! answered exactly once, with its own report, and that the server counted exactly N answers;
//! it prints throughput and p50 / p99 latency.
//!
//! `cargo bench --bench serve_load` (env: LOAD_N requests, default 200; LOAD_C clients, default
//! 4; LOAD_IMAGE a photo, default examples/spliced.jpg; LOAD_MODEL, default ela; LOAD_MAX_S a
//! time bound, default 300). It stops by itself: after N requests or LOAD_MAX_S seconds.

#[path = "../tests/common/http.rs"]
mod http;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and `cargo test --benches` ask what is here
    }
    let n: usize = env("LOAD_N", 200);
    let c: usize = env("LOAD_C", 4);
    let max_s: f64 = env("LOAD_MAX_S", 300.0);
    let model: String = env("LOAD_MODEL", "ela".to_string());
    let image_path: String =
        env("LOAD_IMAGE", concat!(env!("CARGO_MANIFEST_DIR"), "/examples/spliced.jpg").to_string());
    let image = Arc::new(std::fs::read(&image_path).expect("LOAD_IMAGE"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgpu-forge"))
        .args(["serve", "--addr", "127.0.0.1:0", "--model", &model, "--queue", &(2 * c).to_string()])
        .env("NODEVICE_SELECT", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines.next().expect("serve ended before listening").unwrap();
        eprintln!("{line}");
        if let Some(rest) = line.split("http://").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let path = format!("/v2/models/{model}/infer");
    // One warm-up request, not counted.
    let warm = http::post(addr, &path, "application/json", &http::v2_body("warm-up", &image, &[]));
    assert_eq!(warm.status, 200, "{}", warm.text());

    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Vec::new())); // (id sent, id answered, latency s, retries)
    let t0 = Instant::now();
    let clients: Vec<_> = (0..c)
        .map(|_| {
            let (next, results, image, path) = (next.clone(), results.clone(), image.clone(), path.clone());
            std::thread::spawn(move || loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= n || t0.elapsed().as_secs_f64() > max_s {
                    return;
                }
                let id = format!("req-{k}");
                let body = http::v2_body(&id, &image, &["score", "report"]);
                let (t, mut retries) = (Instant::now(), 0);
                let answered = loop {
                    let r = http::post(addr, &path, "application/json", &body);
                    match r.status {
                        200 => {
                            let v = r.json();
                            let rep: serde_json::Value = serde_json::from_str(
                                v["outputs"].as_array().unwrap().iter().find(|o| o["name"] == "report").unwrap()
                                    ["data"][0]
                                    .as_str()
                                    .unwrap(),
                            )
                            .unwrap();
                            assert_eq!(rep["file"], v["id"], "the report is this request's");
                            break v["id"].as_str().unwrap().to_string();
                        }
                        503 => {
                            retries += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        s => panic!("{id}: {s} {}", r.text()),
                    }
                };
                results.lock().unwrap().push((id, answered, t.elapsed().as_secs_f64(), retries));
            })
        })
        .collect();
    clients.into_iter().for_each(|t| t.join().unwrap());
    let wall = t0.elapsed().as_secs_f64();
    let results = std::mem::take(&mut *results.lock().unwrap());

    let mut answers: HashMap<&str, usize> = HashMap::new();
    for (sent, got, _, _) in &results {
        assert_eq!(sent, got, "answered with another request's id");
        *answers.entry(got.as_str()).or_default() += 1;
    }
    let done = results.len();
    assert!(answers.values().all(|&k| k == 1), "an id answered twice");
    let metrics = http::get(addr, "/metrics").text();
    let served: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("forge_requests_total{route=\"infer\",code=\"200\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert_eq!(served, done + 1, "the server answered 200 exactly once per request (+ the warm-up)");
    let mut lat: Vec<f64> = results.iter().map(|r| r.2).collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    let retries: usize = results.iter().map(|r| r.3).sum();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    let uptime = Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "serve_load: model {model}, image {image_path} ({} bytes), {c} clients: {done} of {n} requests in {wall:.2} s: \
         {:.2} req/s, latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {retries} retries after 503; every id answered \
         exactly once (server counted {served} incl. warm-up); server exit {:?}; uptime: {uptime}",
        image.len(),
        done as f64 / wall,
        q(0.5) * 1e3,
        q(0.99) * 1e3,
        lat.last().unwrap() * 1e3,
        status.code(),
    );
    assert_eq!(done, n, "stopped by the time bound before all requests were sent");
}
