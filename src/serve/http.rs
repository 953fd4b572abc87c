//! The HTTP side: routes, body limits, JSON answers and server-sent events. Every request
//! runs on its own thread; nothing a client sends can stop the server.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response};

use crate::serve::engine::{Engine, Event, Outcome};
use crate::serve::error::ApiError;
use crate::serve::request::{Limits, parse};

/// The web page, served as it is (no build step, nothing fetched).
const PAGE: &str = include_str!("page.html");

/// What every request handler reads.
pub struct Shared {
    /// The model's queue.
    pub engine: Engine,
    /// The id `/v1/models` lists.
    pub model_id: String,
    /// `GET /v1/lcl/info`.
    pub info: Value,
    /// `GET /v1/lcl/examples`.
    pub examples: Value,
    /// Request limits.
    pub limits: Limits,
    /// Most requests handled at once.
    pub max_connections: usize,
    /// When the server started (seconds since the epoch).
    pub created: u64,
    /// Handlers running.
    pub active: AtomicUsize,
    next_id: AtomicU64,
}

impl Shared {
    /// The state of a server serving `model_id` through `engine`.
    pub fn new(
        engine: Engine,
        model_id: String,
        info: Value,
        examples: Value,
        limits: Limits,
        max_connections: usize,
    ) -> Self {
        Self {
            engine,
            model_id,
            info,
            examples,
            limits,
            max_connections,
            created: now(),
            active: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
        }
    }
}

/// Answers one request (on the calling thread) and logs it.
pub fn handle(request: Request, shared: &Shared) {
    let started = Instant::now();
    let method = request.method().clone();
    let url = request.url().to_string();
    let path = url.split('?').next().unwrap_or("").to_string();
    let status = match (&method, path.as_str()) {
        (Method::Get, "/") => respond(
            request,
            200,
            "text/html; charset=utf-8",
            PAGE.as_bytes().to_vec(),
        ),
        (Method::Get, "/health") => {
            let body = json!({"status": "ok", "model": shared.model_id, "waiting": shared.engine.waiting()});
            respond_json(request, 200, &body)
        }
        (Method::Get, "/v1/models") => respond_json(
            request,
            200,
            &json!({"object": "list", "data": [model_card(shared)]}),
        ),
        (Method::Get, p) if p.strip_prefix("/v1/models/") == Some(shared.model_id.as_str()) => {
            respond_json(request, 200, &model_card(shared))
        }
        (Method::Get, p) if p.starts_with("/v1/models/") => {
            let error = ApiError::new(
                404,
                "model_not_found",
                format!("this server serves {:?} only", shared.model_id),
            );
            respond_error(request, &error)
        }
        (Method::Get, "/v1/lcl/info") => respond_json(request, 200, &shared.info),
        (Method::Get, "/v1/lcl/examples") => respond_json(request, 200, &shared.examples),
        (Method::Post, "/v1/chat/completions") => chat(request, shared),
        (
            _,
            "/"
            | "/health"
            | "/v1/models"
            | "/v1/lcl/info"
            | "/v1/lcl/examples"
            | "/v1/chat/completions",
        ) => respond_error(
            request,
            &ApiError::new(
                405,
                "method_not_allowed",
                format!("{method} is not served on {path}"),
            ),
        ),
        _ => respond_error(
            request,
            &ApiError::new(
                404,
                "not_found",
                format!("no {path} here (try /v1/chat/completions, /v1/models, /health or /)"),
            ),
        ),
    };
    eprintln!(
        "serve: {method} {path} {status} {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
}

fn model_card(shared: &Shared) -> Value {
    json!({"id": shared.model_id, "object": "model", "created": shared.created, "owned_by": "lcl"})
}

/// `POST /v1/chat/completions`.
fn chat(mut request: Request, shared: &Shared) -> u16 {
    let body = match read_body(&mut request, shared.limits.max_body_bytes) {
        Ok(body) => body,
        Err(error) => return respond_error(request, &error),
    };
    let parsed = match parse(&body, &shared.model_id, &shared.limits) {
        Ok(parsed) => parsed,
        Err(error) => return respond_error(request, &error),
    };
    let (stream, include_usage) = (parsed.stream, parsed.include_usage);
    let (sender, events) = std::sync::mpsc::channel();
    let queued = shared
        .engine
        .prepare(parsed, sender)
        .and_then(|job| shared.engine.submit(job));
    if let Err(error) = queued {
        return respond_error(request, &error);
    }
    let reply = Reply {
        id: format!(
            "chatcmpl-lcl-{}",
            shared.next_id.fetch_add(1, Ordering::SeqCst)
        ),
        created: now(),
        model: shared.model_id.clone(),
    };
    if stream {
        stream_answer(request, events, &reply, include_usage)
    } else {
        whole_answer(request, events, &reply)
    }
}

/// The body, refused past `limit` bytes.
fn read_body(request: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            413,
            "request_too_large",
            format!("the body is over this server's limit of {limit} bytes (--max-body-mb)"),
        )
    };
    if request.body_length().is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|err| {
            ApiError::new(
                400,
                "unreadable_body",
                format!("cannot read the body: {err}"),
            )
        })?;
    if body.len() > limit {
        return Err(too_large());
    }
    Ok(body)
}

/// Identity of one completion.
struct Reply {
    id: String,
    created: u64,
    model: String,
}

impl Reply {
    fn completion(&self, outcome: &Outcome) -> Value {
        let mut body = json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": outcome.text, "refusal": null},
                "logprobs": null,
                "finish_reason": outcome.finish.as_str(),
            }],
            "usage": usage(outcome),
        });
        if let Some(names) = &outcome.names {
            body["lcl"] = json!({"names": names});
        }
        body
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    }
}

fn usage(outcome: &Outcome) -> Value {
    json!({
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
    })
}

fn whole_answer(request: Request, events: Receiver<Event>, reply: &Reply) -> u16 {
    for event in events {
        match event {
            Event::Delta(_) => {}
            Event::Done(outcome) => return respond_json(request, 200, &reply.completion(&outcome)),
            Event::Failed(error) => return respond_error(request, &error),
        }
    }
    respond_error(
        request,
        &ApiError::new(
            500,
            "model_error",
            "the model thread ended without an answer",
        ),
    )
}

/// Server-sent events: a first chunk with the role, one per piece of text, a last one with
/// the finish reason (and the names' scores), `usage` when asked, then `[DONE]`.
fn stream_answer(
    request: Request,
    events: Receiver<Event>,
    reply: &Reply,
    include_usage: bool,
) -> u16 {
    let version = request.http_version();
    let chunked = (version.0, version.1) >= (1, 1);
    let head = if chunked {
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
    } else {
        "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
    };
    let mut out = Sse {
        writer: request.into_writer(),
        chunked,
    };
    if out.raw(head.as_bytes()).is_err() {
        return 200;
    }
    let mut first = reply.chunk(json!({"role": "assistant", "content": ""}), None);
    if include_usage {
        first["usage"] = Value::Null;
    }
    if out.event(&first).is_err() {
        return 200;
    }
    for event in events {
        let sent = match event {
            // a client gone: dropping `events` makes the worker stop its row
            Event::Delta(text) => {
                let mut chunk = reply.chunk(json!({"content": text}), None);
                if include_usage {
                    chunk["usage"] = Value::Null;
                }
                out.event(&chunk)
            }
            Event::Done(outcome) => {
                let mut last = reply.chunk(json!({}), Some(outcome.finish.as_str()));
                if let Some(names) = &outcome.names {
                    last["lcl"] = json!({"names": names});
                }
                if include_usage {
                    last["usage"] = Value::Null;
                }
                let _ = out.event(&last);
                if include_usage {
                    let mut tail = reply.chunk(json!({}), None);
                    tail["choices"] = json!([]);
                    tail["usage"] = usage(&outcome);
                    let _ = out.event(&tail);
                }
                let _ = out.done();
                return 200;
            }
            Event::Failed(error) => {
                let _ = out.event(&error.body());
                let _ = out.done();
                return error.status;
            }
        };
        if sent.is_err() {
            return 200;
        }
    }
    let _ = out.done();
    200
}

/// An event stream written straight to the socket, flushed per event.
struct Sse {
    writer: Box<dyn Write + Send>,
    chunked: bool,
}

impl Sse {
    fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    fn data(&mut self, payload: &str) -> std::io::Result<()> {
        let event = format!("data: {payload}\n\n");
        if self.chunked {
            self.writer
                .write_all(format!("{:x}\r\n", event.len()).as_bytes())?;
            self.writer.write_all(event.as_bytes())?;
            self.writer.write_all(b"\r\n")?;
            self.writer.flush()
        } else {
            self.raw(event.as_bytes())
        }
    }

    fn event(&mut self, value: &Value) -> std::io::Result<()> {
        self.data(&value.to_string())
    }

    fn done(&mut self) -> std::io::Result<()> {
        self.data("[DONE]")?;
        if self.chunked {
            self.raw(b"0\r\n\r\n")?;
        }
        Ok(())
    }
}

fn respond(request: Request, status: u16, content_type: &str, body: Vec<u8>) -> u16 {
    let header =
        Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()).expect("a valid header");
    let response = Response::from_data(body)
        .with_status_code(status)
        .with_header(header);
    let _ = request.respond(response);
    status
}

fn respond_json(request: Request, status: u16, body: &Value) -> u16 {
    respond(
        request,
        status,
        "application/json",
        body.to_string().into_bytes(),
    )
}

/// Answers with `error`'s status and JSON body; returns the status.
pub fn respond_error(request: Request, error: &ApiError) -> u16 {
    respond_json(request, error.status, &error.body())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
