//! The HTTP side: tiny_http on 127.0.0.1, a thread per request, JSON in and out, every error a
//! 4xx (the request's fault) or 500 (ours) with `{"error": message}`.

use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response, Server};

use super::jobs::{Jobs, Refused};
use super::{api, catalog};
use crate::demo::Engine;
use crate::error::{Error, Result};

/// The largest request body read (bigger ones get 413).
pub const MAX_BODY: usize = 64 * 1024;
/// Requests handled at once (more get 503).
const IN_FLIGHT: usize = 32;

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/style.css");

/// A reply: status and body.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
        }
    }

    fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, &json!({ "error": message.into() }))
    }

    fn asset(content_type: &'static str, text: &str) -> Self {
        Self {
            status: 200,
            content_type,
            body: text.as_bytes().to_vec(),
        }
    }
}

/// The status for a library error: the request's fault unless the device failed.
fn status_of(e: &Error) -> u16 {
    match e {
        Error::NoAdapter(_)
        | Error::RequestDevice(_)
        | Error::DeviceLimit { .. }
        | Error::HostAllocation { .. }
        | Error::Plot { .. }
        | Error::Checkpoint(_) => 500,
        _ => 400,
    }
}

fn from_result(r: Result<Value>) -> Reply {
    match r {
        Ok(v) => Reply::json(200, &v),
        Err(e) => Reply::error(status_of(&e), e.to_string()),
    }
}

struct State {
    engine: Arc<dyn Engine>,
    device: String,
    jobs: Jobs,
    in_flight: AtomicUsize,
}

/// The playground's server, bound and ready: [`Playground::run`] serves.
pub struct Playground {
    server: Arc<Server>,
    state: Arc<State>,
}

impl Playground {
    /// Listens on 127.0.0.1:`port` (0: any free port), running optimizers on `engine`.
    pub fn bind(port: u16, engine: Arc<dyn Engine>) -> Result<Self> {
        let server = Server::http(("127.0.0.1", port))
            .map_err(|e| Error::Argument(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
        let device = engine.describe();
        Ok(Self {
            server: Arc::new(server),
            state: Arc::new(State {
                engine,
                device,
                jobs: Jobs::default(),
                in_flight: AtomicUsize::new(0),
            }),
        })
    }

    /// The address to open: `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        match self.server.server_addr().to_ip() {
            Some(a) => format!("http://{a}/"),
            None => "http://127.0.0.1/".into(),
        }
    }

    /// Serves until the process ends: each request on a thread of its own.
    pub fn run(self) {
        for request in self.server.incoming_requests() {
            let state = self.state.clone();
            if state.in_flight.fetch_add(1, Ordering::SeqCst) >= IN_FLIGHT {
                state.in_flight.fetch_sub(1, Ordering::SeqCst);
                respond(request, Reply::error(503, "the server is busy; try again"));
                continue;
            }
            std::thread::spawn(move || {
                handle(&state, request);
                state.in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }
}

fn respond(request: Request, reply: Reply) {
    let mut response = Response::from_data(reply.body).with_status_code(reply.status);
    for (k, v) in [
        ("Content-Type", reply.content_type),
        ("Cache-Control", "no-store"),
    ] {
        if let Ok(h) = Header::from_bytes(k, v) {
            response.add_header(h);
        }
    }
    // A client that went away is not the server's problem.
    let _ = request.respond(response);
}

fn handle(state: &State, mut request: Request) {
    let method = request.method().clone();
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let body = match read_body(&mut request) {
        Ok(b) => b,
        Err(reply) => return respond(request, reply),
    };
    // A bug must not take the server down: a panic becomes a 500 and the server goes on.
    let reply = std::panic::catch_unwind(AssertUnwindSafe(|| {
        route(state, &method, path, query, &body)
    }))
    .unwrap_or_else(|_| Reply::error(500, "internal error (the server goes on)"));
    respond(request, reply);
}

fn read_body(request: &mut Request) -> std::result::Result<Vec<u8>, Reply> {
    let too_big = || Reply::error(413, format!("the request body is over {MAX_BODY} bytes"));
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| Reply::error(400, format!("cannot read the request body: {e}")))?;
    if body.len() > MAX_BODY {
        return Err(too_big());
    }
    Ok(body)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::Argument(format!("malformed request: {e}")))
}

fn query_usize(query: &str, key: &str) -> std::result::Result<usize, Reply> {
    for pair in query.split('&') {
        if let Some((k, v)) = pair.split_once('=')
            && k == key
        {
            return v
                .parse()
                .map_err(|_| Reply::error(400, format!("{key}={v} is not a count")));
        }
    }
    Ok(0)
}

fn route(state: &State, method: &Method, path: &str, query: &str, body: &[u8]) -> Reply {
    let engine = &*state.engine;
    let job_id = path.strip_prefix("/api/jobs/").map(str::parse::<u64>);
    match (method, path) {
        (Method::Get, "/" | "/index.html") => Reply::asset("text/html; charset=utf-8", INDEX),
        (Method::Get, "/app.js") => Reply::asset("text/javascript; charset=utf-8", SCRIPT),
        (Method::Get, "/style.css") => Reply::asset("text/css; charset=utf-8", STYLE),
        (Method::Get, "/api/catalog") => Reply::json(200, &catalog::catalog(&state.device)),
        (Method::Get, p) if p.starts_with("/api/surfaces/") => {
            from_result(api::surface_info(&p["/api/surfaces/".len()..]).and_then(to_json))
        }
        (Method::Post, "/api/surface") => from_result(
            parse::<api::SurfaceRequest>(body)
                .and_then(|r| api::surface(engine, &r))
                .and_then(to_json),
        ),
        (Method::Post, "/api/schedule") => from_result(
            parse::<api::ScheduleTraceRequest>(body)
                .and_then(|r| api::schedule(engine, &r))
                .and_then(to_json),
        ),
        (Method::Post, "/api/lr-finder") => from_result(
            parse::<api::FinderRequest>(body)
                .and_then(|r| api::lr_finder(engine, &r))
                .and_then(to_json),
        ),
        (Method::Post, "/api/train") => job_reply(
            parse::<api::TrainRequest>(body)
                .map_err(Refused::Error)
                .and_then(|r| state.jobs.train(state.engine.clone(), &r)),
        ),
        (Method::Post, "/api/sweep") => job_reply(
            parse::<api::SweepRequest>(body)
                .map_err(Refused::Error)
                .and_then(|r| state.jobs.sweep(state.engine.clone(), &r)),
        ),
        (Method::Get, _) if job_id.is_some() => {
            let from = match query_usize(query, "from") {
                Ok(f) => f,
                Err(reply) => return reply,
            };
            match job_id
                .and_then(|r| r.ok())
                .and_then(|id| state.jobs.poll(id, from))
            {
                Some(v) => Reply::json(200, &v),
                None => Reply::error(404, format!("no job {path}")),
            }
        }
        (Method::Delete, _) if job_id.is_some() => {
            match job_id
                .and_then(|r| r.ok())
                .filter(|&id| state.jobs.cancel(id))
            {
                Some(id) => Reply::json(200, &json!({ "cancelled": id })),
                None => Reply::error(404, format!("no job {path}")),
            }
        }
        (_, "/" | "/index.html" | "/app.js" | "/style.css" | "/api/catalog") => {
            Reply::error(405, format!("{path} takes GET"))
        }
        (_, "/api/surface" | "/api/schedule" | "/api/lr-finder" | "/api/train" | "/api/sweep") => {
            Reply::error(405, format!("{path} takes POST with a JSON body"))
        }
        _ => Reply::error(404, format!("nothing at {path}")),
    }
}

fn to_json<T: serde::Serialize>(t: T) -> Result<Value> {
    serde_json::to_value(t).map_err(|e| Error::Argument(e.to_string()))
}

fn job_reply(r: std::result::Result<u64, Refused>) -> Reply {
    match r {
        Ok(id) => Reply::json(202, &json!({ "id": id, "poll": format!("/api/jobs/{id}") })),
        Err(Refused::Busy(message)) => Reply::error(429, message),
        Err(Refused::Error(e)) => Reply::error(status_of(&e), e.to_string()),
    }
}
