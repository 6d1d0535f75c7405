//! `wgpu-forge serve`'s HTTP side: the Open Inference Protocol v2 REST endpoints ([`protocol`])
//! on axum, in front of the one GPU worker thread ([`worker`]), and `/metrics` ([`metrics`]).
//!
//! Statuses: 200 an answer; 400 a bad request or an image the decoder refused (its message);
//! 404 an unknown model or endpoint; 413 a body over `max_body` bytes; 503 a full queue (with
//! `Retry-After`) or a server shutting down; 504 a request not answered within `timeout`; 500 a
//! model or GPU error, after which the server goes on serving; once the engine's device is lost
//! for good, `/v2/health/live` and `/ready` answer 503 so that the orchestrator restarts it.
//! Errors are `{"error": "..."}`.
//! The model knows no HTTP and the HTTP side knows no model: it talks to an [`worker::Engine`].

pub mod metrics;
pub mod protocol;
pub mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::sync::{oneshot, Notify};

use crate::error::{Error, ErrorKind, Result};
use metrics::Metrics;
use worker::{Jobs, ModelInfo, Queue};

/// How the server runs.
#[derive(Clone, Debug)]
pub struct Config {
    pub addr: String,
    /// Requests admitted at once (queued, being read, or on the GPU); more get 503.
    pub queue: usize,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Longest time from a request's arrival to its answer.
    pub timeout: Duration,
    /// Shut down gracefully on SIGTERM and Ctrl-C (the command; tests stop through [`Server::stop`]).
    pub signals: bool,
}

struct App {
    queue: Queue,
    model: ModelInfo,
    metrics: Arc<Metrics>,
    cfg: Config,
    draining: AtomicBool,
}

/// A running server: its address, and the handles to stop it and wait for it.
pub struct Server {
    pub addr: SocketAddr,
    pub model: ModelInfo,
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    http: Option<std::thread::JoinHandle<Result<()>>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Begin a graceful shutdown: no new connections, in-flight requests are answered.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Wait until the server has shut down (a signal or [`Server::stop`]) and the worker is done.
    pub fn wait(mut self) -> Result<()> {
        let r = match self.http.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::new(ErrorKind::Io, "the HTTP thread panicked")),
            None => Ok(()),
        };
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        r
    }
}

/// Open the model on the worker (`open` calls [`Jobs::serve`]), bind `cfg.addr`, and serve on a
/// thread of its own; returns once the model is planned and the socket is listening.
pub fn start<F>(cfg: Config, open: F) -> Result<Server>
where
    F: FnOnce(Jobs) -> Result<()> + Send + 'static,
{
    let metrics = Arc::new(Metrics::default());
    let (queue, model, worker) = worker::spawn(cfg.queue, metrics.clone(), open)?;
    let io = |what: &str, e: std::io::Error| Error::new(ErrorKind::Io, format!("{what} {}: {e}", cfg.addr));
    let listener = std::net::TcpListener::bind(&cfg.addr).map_err(|e| io("cannot listen on", e))?;
    listener.set_nonblocking(true).map_err(|e| io("cannot set up", e))?;
    let addr = listener.local_addr().map_err(|e| io("cannot read the address of", e))?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let app =
        Arc::new(App { queue, model: model.clone(), metrics: metrics.clone(), cfg, draining: AtomicBool::new(false) });
    let http = std::thread::Builder::new()
        .name("forge-http".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start the async runtime: {e}")))?;
            rt.block_on(run(listener, app, stop_rx))
        })
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start the HTTP thread: {e}")))?;
    Ok(Server { addr, model, metrics, stop: Some(stop_tx), http: Some(http), worker: Some(worker) })
}

async fn run(listener: std::net::TcpListener, app: Arc<App>, stop: oneshot::Receiver<()>) -> Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot listen: {e}")))?;
    let drain = app.cfg.timeout + Duration::from_secs(5);
    let stopping = Arc::new(Notify::new());
    let signal = {
        let (app, stopping) = (app.clone(), stopping.clone());
        async move {
            wait_for_stop(stop, app.cfg.signals).await;
            app.draining.store(true, Ordering::SeqCst);
            stopping.notify_one();
        }
    };
    let served = axum::serve(listener, router(app)).with_graceful_shutdown(signal);
    // In-flight requests end within their timeout; a connection that lingers past it is cut.
    let bound = async move {
        stopping.notified().await;
        tokio::time::sleep(drain).await;
    };
    tokio::select! {
        r = served => r.map_err(|e| Error::new(ErrorKind::Io, format!("the server failed: {e}"))),
        _ = bound => Ok(()),
    }
}

async fn wait_for_stop(stop: oneshot::Receiver<()>, signals: bool) {
    if !signals {
        let _ = stop.await;
        return;
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = stop => {},
                _ = term.recv() => eprintln!("wgpu-forge: SIGTERM: finishing in-flight requests"),
                _ = tokio::signal::ctrl_c() => eprintln!("wgpu-forge: interrupted: finishing in-flight requests"),
            }
            return;
        }
    }
    tokio::select! {
        _ = stop => {},
        _ = tokio::signal::ctrl_c() => eprintln!("wgpu-forge: interrupted: finishing in-flight requests"),
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/infer", post(infer))
        .route(
            "/metrics",
            get(|State(app): State<Arc<App>>| async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render())
            }),
        )
        .fallback(|uri: Uri| async move { error(StatusCode::NOT_FOUND, format!("no endpoint {}", uri.path())) })
        .layer(middleware::from_fn_with_state(app.clone(), track))
        .with_state(app)
}

/// A JSON body.
struct Json(Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0.to_string()).into_response()
    }
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({"error": message.into()}))).into_response()
}

/// Every request: the timeout, and the metrics.
async fn track(State(app): State<Arc<App>>, req: axum::extract::Request, next: Next) -> Response {
    let t = Instant::now();
    let path = req.uri().path();
    let route = match () {
        _ if path.ends_with("/infer") => "infer",
        _ if path.starts_with("/v2/health") => "health",
        _ if path.starts_with("/v2") => "metadata",
        _ if path == "/metrics" => "metrics",
        _ => "other",
    };
    let resp = match tokio::time::timeout(app.cfg.timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!("no answer within {} s (queued, reading the body, or on the GPU)", app.cfg.timeout.as_secs_f64()),
        ),
    };
    app.metrics.answered(route, resp.status().as_u16(), (route == "infer").then(|| t.elapsed().as_secs_f64()));
    resp
}

async fn server_metadata() -> Json {
    Json(json!({"name": "wgpu-forge", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data"]}))
}

async fn live(State(app): State<Arc<App>>) -> Response {
    if app.metrics.broken.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"live": false}))).into_response();
    }
    Json(json!({"live": true})).into_response()
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.draining.load(Ordering::SeqCst) || app.metrics.broken.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"ready": false}))).into_response();
    }
    Json(json!({"ready": true})).into_response()
}

fn unknown_model(app: &App, name: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("model '{name}' is not served here; this server serves '{}'", app.model.name))
}

async fn model_metadata(State(app): State<Arc<App>>, UrlPath(name): UrlPath<String>) -> Response {
    if name != app.model.name {
        return unknown_model(&app, &name);
    }
    Json(protocol::metadata(&app.model)).into_response()
}

async fn model_ready(State(app): State<Arc<App>>, UrlPath(name): UrlPath<String>) -> Response {
    if name != app.model.name {
        return unknown_model(&app, &name);
    }
    Json(json!({"name": name, "ready": !app.draining.load(Ordering::SeqCst)})).into_response()
}

/// Counts a request in flight while it lives.
struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn infer(
    State(app): State<Arc<App>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    if name != app.model.name {
        return unknown_model(&app, &name);
    }
    if app.draining.load(Ordering::SeqCst) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down");
    }
    let Some(permit) = app.queue.admit() else {
        // About how long the queue takes to drain, from the mean time per image so far.
        let (us, n) = (app.metrics.worker_us.load(Ordering::Relaxed), app.metrics.images.load(Ordering::Relaxed));
        let per_image = if n > 0 { us as f64 / n as f64 / 1e6 } else { 1.0 };
        let wait = (per_image * app.queue.capacity as f64).ceil().clamp(1.0, 60.0) as u64;
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the queue is full ({} requests); retry later", app.queue.capacity),
        );
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return r;
    };
    app.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let _in_flight = InFlight(app.metrics.clone());
    let max = app.cfg.max_body;
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the limit of {max} bytes (--max-body-mb)"),
        )
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(e) if e.to_string().contains("length limit") => return too_large(),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("cannot read the body: {e}")),
    };
    // The binary tensor extension (JSON, then raw bytes) comes as application/octet-stream too.
    let json_len = headers
        .get("inference-header-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let raw = json_len.is_none() && (ctype.starts_with("image/") || ctype.starts_with("application/octet-stream"));
    let parsed = if raw { raw_request(&uri, bytes.to_vec()) } else { protocol::parse(&bytes, json_len) };
    let mut req = match parsed {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.message),
    };
    let (tx, rx) = oneshot::channel();
    let job = worker::Job {
        bytes: std::mem::take(&mut req.image),
        name: req.id.clone().unwrap_or_else(|| "upload".to_string()),
        prob: req.prob(),
        reply: tx,
        permit,
    };
    if let Err(e) = app.queue.send(job) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, e.message);
    }
    match rx.await {
        Ok(Ok(a)) if raw => Json(raw_answer(a)).into_response(),
        Ok(Ok(a)) => Json(protocol::answer(&app.model, &req, &a)).into_response(),
        Ok(Err(e)) => {
            let code =
                if e.kind == ErrorKind::Invalid { StatusCode::BAD_REQUEST } else { StatusCode::INTERNAL_SERVER_ERROR };
            error(code, e.to_string())
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the GPU worker stopped before answering"),
    }
}

/// A raw `image/*` body: the query's `prob=png` or `prob=fp32` asks for the map, `id=` names it.
fn raw_request(uri: &Uri, image: Vec<u8>) -> Result<protocol::Request> {
    let mut req = protocol::Request { id: None, image, outputs: Vec::new() };
    for kv in uri.query().unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        match kv.split_once('=').unwrap_or((kv, "")) {
            ("prob", "png") => req.outputs.push("prob_png".into()),
            ("prob", "fp32") => req.outputs.push("prob".into()),
            ("id", v) => req.id = Some(v.to_string()),
            _ => return Err(Error::invalid(format!("unknown query parameter '{kv}' (prob=png, prob=fp32, id=NAME)"))),
        }
    }
    Ok(req)
}

/// The answer to a raw body: the report itself, with the map when asked for.
fn raw_answer(a: worker::Answer) -> Value {
    let mut r = a.report;
    if let Some(png) = a.prob_png {
        r["prob_png"] = json!(base64::engine::general_purpose::STANDARD.encode(png));
    }
    if let Some(p) = a.prob {
        r["prob"] = json!({"shape": [p.height, p.width], "data": p.data});
    }
    r
}
