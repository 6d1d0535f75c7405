//! `wgpu-forge serve` with a real HTTP client on loopback: the Open Inference Protocol v2
//! endpoints with the `ela` model through the binary (the answer is `infer`'s report), every
//! status, concurrent clients, graceful shutdown on SIGTERM; and, with a stand-in engine whose
//! timing the test controls, a full queue (503), a timeout (504), engine faults (500) after which
//! the server goes on, and a stop that finishes the request in flight.

mod common;
#[path = "common/http.rs"]
mod http;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{bin, tmpdir, write_png};
use http::{get, post, request, v2_body};
use serde_json::{json, Value};
use wgpu_forge::serve::worker::{Answer, Engine, ModelInfo};
use wgpu_forge::serve::{self, Config};
use wgpu_forge::Error;

/// A server process, killed when the test ends, passing or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `serve` with `args` on a free port; the child and its address (read from stderr).
fn start(args: &[&str]) -> (Killed, SocketAddr) {
    let mut child = bin()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve ended before listening").unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Killed(child), addr)
}

fn png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let dir = tmpdir(&format!("serve-png-{w}x{h}-{seed}"));
    let p = dir.join("x.png");
    write_png(&p, w, h, seed);
    let b = std::fs::read(&p).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    b
}

fn output<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no {name}: {answer}"))
}

fn report_of(answer: &Value) -> Value {
    serde_json::from_str(output(answer, "report")["data"][0].as_str().unwrap()).unwrap()
}

fn metric(addr: SocketAddr, line_start: &str) -> f64 {
    let text = get(addr, "/metrics").text();
    text.lines().find_map(|l| l.strip_prefix(line_start)).map_or(0.0, |v| v.trim().parse().unwrap())
}

const INFER: &str = "/v2/models/ela/infer";

#[test]
fn serve_answers_v2_clients_like_infer_and_every_status() {
    let (_server, addr) = start(&["--model", "ela", "--max-body-mb", "1"]);
    assert_eq!(get(addr, "/v2/health/live").json(), json!({"live": true}));
    assert_eq!(get(addr, "/v2/health/ready").json(), json!({"ready": true}));
    let meta = get(addr, "/v2/models/ela").json();
    assert_eq!((meta["name"].as_str(), meta["inputs"][0]["datatype"].as_str()), (Some("ela"), Some("BYTES")));
    assert_eq!(get(addr, "/v2/models/mesorch").status, 404);
    assert_eq!(post(addr, "/v2/models/mesorch/infer", "application/json", b"{}").status, 404);
    assert_eq!(get(addr, "/nothing/here").status, 404);

    // The answer is infer's report of the same image.
    let dir = tmpdir("serve-vs-infer");
    let img = png(40, 30, 3);
    std::fs::write(dir.join("a.png"), &img).unwrap();
    let r = post(addr, INFER, "application/json", &v2_body("a.png", &img, &[]));
    assert_eq!(r.status, 200, "{}", r.text());
    let a = r.json();
    assert_eq!((a["id"].as_str(), a["model_name"].as_str()), (Some("a.png"), Some("ela")));
    let rep = report_of(&a);
    let o = bin()
        .args(["infer", "--model", "ela", "--json", "--out"])
        .arg(dir.join("out"))
        .arg(dir.join("a.png"))
        .output()
        .unwrap();
    let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
    for field in ["width", "height", "model", "score", "verdict", "regions", "marked_pixels", "calibration"] {
        assert_eq!(rep[field], cli[field], "{field}");
    }
    assert_eq!(output(&a, "score")["data"][0], cli["score"]);
    assert_eq!(output(&a, "verdict")["data"][0], cli["verdict"]);
    let regions: Value = serde_json::from_str(output(&a, "regions")["data"][0].as_str().unwrap()).unwrap();
    assert_eq!(regions, cli["regions"]);

    // The binary tensor extension: the JSON header, then the image's raw bytes.
    let head = json!({"id": "bin", "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                               "parameters": {"binary_data_size": img.len()}}]})
    .to_string();
    let body = [head.as_bytes(), &img].concat();
    let len = head.len().to_string();
    let headers = [("Content-Type", "application/octet-stream"), ("Inference-Header-Content-Length", len.as_str())];
    let r = request(addr, "POST", INFER, &headers, &body).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(report_of(&r.json())["score"], cli["score"]);

    // The map, as FP32 and as PNG (v2 outputs, and a raw image/* body with ?prob=png).
    let a = post(addr, INFER, "application/json", &v2_body("m", &img, &["prob", "score"])).json();
    let prob = output(&a, "prob");
    assert_eq!(prob["shape"], json!([30, 40]));
    assert_eq!(prob["data"].as_array().unwrap().len(), 1200);
    assert!(a["outputs"].as_array().unwrap().len() == 2, "only what was asked: {a}");
    let raw = post(addr, &format!("{INFER}?prob=png&id=raw.png"), "image/png", &img);
    assert_eq!(raw.status, 200, "{}", raw.text());
    let raw = raw.json();
    assert_eq!((raw["file"].as_str(), &raw["score"]), (Some("raw.png"), &cli["score"]));
    let png_map = base64::engine::general_purpose::STANDARD.decode(raw["prob_png"].as_str().unwrap()).unwrap();
    assert_eq!(image::load_from_memory(&png_map).unwrap().to_luma8().dimensions(), (40, 30));

    // Bad input: 400 with the decoder's message; 413 over the body limit.
    let r = post(addr, INFER, "image/jpeg", b"\xff\xd8\xff\xe0 not a jpeg");
    assert_eq!(r.status, 400, "{}", r.text());
    let jpeg_start = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/spliced.jpg")).unwrap();
    let r = post(addr, INFER, "application/json", &v2_body("t", &jpeg_start[..jpeg_start.len() / 2], &[]));
    assert!(r.status == 400 && r.json()["error"].as_str().unwrap().contains("truncated JPEG"), "{}", r.text());
    let r = post(addr, INFER, "image/png", b"garbage");
    assert!(r.status == 400 && r.text().contains("unsupported or unrecognised image format"), "{}", r.text());
    let r = post(addr, INFER, "application/json", b"{\"inputs\": [{\"datatype\": \"FP32\"");
    assert!(r.status == 400 && r.text().contains("not JSON"), "{}", r.text());
    let r = post(addr, INFER, "application/json", &v2_body("x", &img, &["mask"]));
    assert!(r.status == 400 && r.text().contains("unknown output 'mask'"), "{}", r.text());
    let r = post(addr, INFER, "image/png", &vec![0u8; (1 << 20) + 1]);
    assert_eq!(r.status, 413, "{}", r.text());

    // Concurrent clients, each with images of its own sizes: every answer is its own image's.
    let threads: Vec<_> = (0..6u32)
        .map(|t| {
            std::thread::spawn(move || {
                for k in 0..3u32 {
                    let (w, h) = (20 + 7 * t + k, 16 + 5 * k + t);
                    let id = format!("t{t}-k{k}");
                    let r = post(addr, INFER, "application/json", &v2_body(&id, &png(w, h, t * 10 + k), &[]));
                    assert_eq!(r.status, 200, "{}", r.text());
                    let a = r.json();
                    let rep = report_of(&a);
                    assert_eq!((a["id"].as_str(), rep["file"].as_str()), (Some(id.as_str()), Some(id.as_str())));
                    assert_eq!((rep["width"].as_u64(), rep["height"].as_u64()), (Some(w as u64), Some(h as u64)));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());

    let ok = metric(addr, "forge_requests_total{route=\"infer\",code=\"200\"} ");
    assert_eq!(ok, 4.0 + 18.0);
    assert_eq!(metric(addr, "forge_requests_total{route=\"infer\",code=\"400\"} "), 5.0);
    assert_eq!(metric(addr, "forge_requests_total{route=\"infer\",code=\"413\"} "), 1.0);
    assert_eq!(
        metric(addr, "forge_request_duration_seconds_count "),
        4.0 + 18.0 + 5.0 + 1.0 + 1.0,
        "404 on infer counted too"
    );
    assert!(metric(addr, "forge_gpu_seconds_total ") > 0.0);
    assert_eq!(metric(addr, "forge_queue_depth "), 0.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigterm_finishes_requests_in_flight_then_exits_zero() {
    let (mut child, addr) = start(&["--model", "ela"]);
    let img = Arc::new(png(384, 384, 5));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let img = img.clone();
            let body = v2_body(&format!("r{i}"), &img, &[]);
            std::thread::spawn(move || request(addr, "POST", INFER, &[("Content-Type", "application/json")], &body))
        })
        .collect();
    let t = Instant::now();
    while metric(addr, "forge_in_flight ") < 2.0 {
        assert!(t.elapsed() < Duration::from_secs(30), "requests never arrived");
        std::thread::sleep(Duration::from_millis(2));
    }
    let kill = std::process::Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
    assert!(kill.success());
    // Those admitted before the signal (at least 2) are answered; a client that connected too late
    // is refused or gets 503, never a cut-off answer.
    let answered: Vec<Option<u16>> = clients.into_iter().map(|c| c.join().unwrap().ok().map(|r| r.status)).collect();
    assert!(answered.iter().filter(|&&s| s == Some(200)).count() >= 2, "{answered:?}");
    assert!(answered.iter().all(|&s| matches!(s, None | Some(200) | Some(503))), "{answered:?}");
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(request(addr, "GET", "/v2/health/live", &[], b"").is_err(), "no longer listening");
}

/// A stand-in engine: "fail" is a GPU error, "panic" panics, "bad" is a bad image, "slow" says it
/// started and waits for the test's go; anything else is answered at once.
struct Fake {
    go: Arc<Mutex<mpsc::Receiver<()>>>,
    started: mpsc::Sender<()>,
    lost: bool,
}

impl Engine for Fake {
    fn infer(&mut self, bytes: &[u8], name: &str, _prob: bool) -> wgpu_forge::Result<Answer> {
        match bytes {
            b"fail" => return Err(Error::gpu("device lost (stand-in)")),
            b"lose" => {
                self.lost = true;
                return Err(Error::gpu("the GPU device was lost (stand-in)"));
            }
            b"panic" => panic!("stand-in panic"),
            b"bad" => return Err(Error::invalid("the decoder says no")),
            b"slow" => {
                let _ = self.started.send(());
                let _ = self.go.lock().unwrap().recv_timeout(Duration::from_secs(20));
            }
            _ => {}
        }
        let report = json!({"file": name, "score": 0.25, "verdict": "clean", "regions": []});
        Ok(Answer { report, prob: None, prob_png: None, gpu_s: 0.001 })
    }

    fn healthy(&self) -> bool {
        !self.lost
    }
}

/// A server over [`Fake`]; the test's go, and the news that a slow job started on the worker.
fn fake_server(queue: usize, timeout: Duration) -> (serve::Server, mpsc::Sender<()>, mpsc::Receiver<()>) {
    let (go_tx, go_rx) = mpsc::channel();
    let (started_tx, started_rx) = mpsc::channel();
    let go = Arc::new(Mutex::new(go_rx));
    let cfg = Config { addr: "127.0.0.1:0".into(), queue, max_body: 1 << 16, timeout, signals: false };
    let server = serve::start(cfg, move |jobs| {
        let info = ModelInfo { name: "ela".into(), version: None, adapter: "stand-in".into() };
        jobs.serve(info, &mut Fake { go, started: started_tx, lost: false });
        Ok(())
    })
    .unwrap();
    (server, go_tx, started_rx)
}

fn wait_start(started: &mpsc::Receiver<()>) {
    started.recv_timeout(Duration::from_secs(20)).expect("the slow job never started on the worker");
}

fn raw(addr: SocketAddr, body: &[u8]) -> http::Reply {
    post(addr, INFER, "application/octet-stream", body)
}

#[test]
fn full_queue_timeouts_and_engine_faults_leave_the_server_serving() {
    let (mut server, go, started) = fake_server(2, Duration::from_secs(3));
    let addr = server.addr;
    for (body, code, says) in
        [(&b"fail"[..], 500, "device lost"), (b"panic", 500, "panicked"), (b"bad", 400, "decoder says no")]
    {
        let r = raw(addr, body);
        assert!(
            r.status == code && r.text().contains(says),
            "{}: {} {}",
            String::from_utf8_lossy(body),
            r.status,
            r.text()
        );
        assert_eq!(raw(addr, b"ok").status, 200, "still serving after {}", String::from_utf8_lossy(body));
    }
    // Two slow requests fill the queue of 2 (one on the worker, one waiting): the third gets 503.
    let slow: Vec<_> = (0..2).map(|_| std::thread::spawn(move || raw(addr, b"slow"))).collect();
    wait_start(&started);
    let t = Instant::now();
    while server.metrics.in_flight.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    }
    let r = raw(addr, b"ok");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| s >= 1), "{:?}", r.headers);
    go.send(()).unwrap();
    wait_start(&started);
    go.send(()).unwrap();
    for s in slow {
        assert_eq!(s.join().unwrap().status, 200);
    }
    // Nobody says go: 504 after the timeout; the abandoned job finishes later, unanswered.
    let t = Instant::now();
    let r = raw(addr, b"slow");
    wait_start(&started);
    assert!(r.status == 504 && t.elapsed() >= Duration::from_secs(3), "{} {}", r.status, r.text());
    go.send(()).unwrap();
    assert_eq!(raw(addr, b"ok").status, 200);
    assert_eq!(server.metrics.count("infer", 504), 1);
    assert_eq!(server.metrics.count("infer", 503), 1);

    assert_eq!(server.metrics.image_errors.load(std::sync::atomic::Ordering::SeqCst), 3);
    // A lost device cannot come back: 500, and the health checks fail so the server is restarted.
    assert_eq!(get(addr, "/v2/health/live").status, 200);
    assert_eq!(raw(addr, b"lose").status, 500);
    assert_eq!((get(addr, "/v2/health/live").status, get(addr, "/v2/health/ready").status), (503, 503));
    server.stop();
    server.wait().unwrap();
}

#[test]
fn stop_finishes_the_request_on_the_worker() {
    let (mut server, go, started) = fake_server(2, Duration::from_secs(10));
    let addr = server.addr;
    let inflight = std::thread::spawn(move || raw(addr, b"slow"));
    wait_start(&started);
    server.stop();
    std::thread::sleep(Duration::from_millis(100));
    assert!(request(addr, "GET", "/v2/health/live", &[], b"").is_err(), "no new connections after stop");
    go.send(()).unwrap();
    assert_eq!(inflight.join().unwrap().status, 200);
    server.wait().unwrap();
}
