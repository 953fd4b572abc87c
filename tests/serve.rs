//! `lcl serve` over the tiny fixtures: the OpenAI chat format in, the reference greedy
//! answer out (transformers' ids, `tests/fixtures/ref/episode.json`), streamed or whole,
//! batched or alone; bad requests refused with their field named, the server going on.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{device, fixture, ids, json};
use lcl::model_folder::Precision;
use lcl::serve::data_url;
use lcl::serve::{RunningServer, ServeOptions, start};
use lcl::tokenizer::LclTokenizer;
use serde_json::{Value, json};

fn options() -> ServeOptions {
    ServeOptions {
        model: fixture("tiny-lcl"),
        vision: Some(fixture("tiny-clip")),
        weights: None,
        precision: Precision::F32,
        model_id: "tiny-lcl".into(),
        miniature: false,
        address: "127.0.0.1:0".into(),
        max_body_bytes: 256 << 10,
        max_images: 4,
        max_tokens: 10,
        max_context: 1024,
        max_batch: 8,
        max_queue: 16,
        max_connections: 32,
    }
}

fn serve() -> RunningServer {
    start(&options(), &device()).expect("the server starts")
}

/// A status, headers (lower-case names) and body, from a raw HTTP/1.1 exchange.
struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

fn exchange(server: &RunningServer, method: &str, path: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(server.address).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        server.address,
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // a refused body may be left unread: the server can answer before it is all sent
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let headers = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = headers[9..12].parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if headers.contains("transfer-encoding: chunked") {
        body = unchunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size");
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&data[line + 2..line + 2 + size]);
        data = &data[line + 2 + size + 2..];
    }
}

fn post(server: &RunningServer, body: &Value) -> Reply {
    exchange(
        server,
        "POST",
        "/v1/chat/completions",
        body.to_string().as_bytes(),
    )
}

fn image_url(name: &str) -> String {
    let bytes = std::fs::read(fixture(&format!("images/{name}"))).unwrap();
    data_url::encode("image/png", &bytes)
}

fn user(url: &str) -> Value {
    json!({"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]})
}

/// The reference episode: a.png = cactihog, b.jpg = hedgehog, query c.png.
fn episode() -> Value {
    json!({
        "model": "tiny-lcl",
        "messages": [
            user(&image_url("a.png")),
            {"role": "assistant", "content": "cactihog"},
            user(&image_url("b.jpg")),
            {"role": "assistant", "content": "hedgehog"},
            user(&image_url("c.png")),
        ],
        "max_tokens": 10,
    })
}

fn reference_text() -> String {
    let tokenizer = LclTokenizer::from_dir(&fixture("tiny-lcl")).unwrap();
    tokenizer.decode(&ids(&json("ref/episode.json")["greedy_ids"]), true)
}

/// The `data:` payloads of an event stream, in order.
fn events(body: &[u8]) -> Vec<String> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn an_episode_is_answered_with_the_reference_greedy_ids_and_its_names_scored() {
    let server = serve();
    let mut request = episode();
    request["lcl"] = json!({"score_names": true});
    let reply = post(&server, &request);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    let meta = json("ref/episode.json");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "tiny-lcl");
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], reference_text());
    assert_eq!(choice["finish_reason"], "length");
    let prompt_tokens = meta["input_ids"].as_array().unwrap().len();
    assert_eq!(body["usage"]["prompt_tokens"], prompt_tokens);
    assert_eq!(body["usage"]["completion_tokens"], 10);
    assert_eq!(body["usage"]["total_tokens"], prompt_tokens + 10);
    let names = body["lcl"]["names"].as_array().unwrap();
    let shown: Vec<&str> = names.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(shown, ["cactihog", "hedgehog"]);
    let total: f64 = names
        .iter()
        .map(|n| n["probability"].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "probabilities sum to {total}");
    assert!(
        names
            .iter()
            .all(|n| n["log_likelihood"].as_f64().unwrap() < 0.0)
    );
    server.stop().unwrap();
}

#[test]
fn the_same_episode_streamed_gives_the_same_text_then_usage_and_done() {
    let server = serve();
    let mut request = episode();
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let reply = post(&server, &request);
    assert_eq!(reply.status, 200);
    assert!(reply.headers.contains("content-type: text/event-stream"));
    let events = events(&reply.body);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, reference_text());
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("length")]);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"], 10);
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    server.stop().unwrap();
}

#[test]
fn a_stop_string_ends_the_answer_before_it() {
    let server = serve();
    let reference = reference_text();
    let stop: String = reference.chars().skip(3).take(2).collect();
    let mut request = episode();
    request["stop"] = json!([stop]);
    let body = post(&server, &request).json();
    let expected = &reference[..reference.find(&stop).unwrap()];
    assert_eq!(body["choices"][0]["message"]["content"], expected);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    server.stop().unwrap();
}

#[test]
fn concurrent_requests_are_answered_alike_in_batches() {
    let server = serve();
    let request = episode();
    let texts: Vec<Value> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| post(&server, &request).json()))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for body in &texts {
        assert_eq!(body["choices"][0]["message"]["content"], reference_text());
    }
    let ids: std::collections::BTreeSet<&str> =
        texts.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "each completion has its own id");
    server.stop().unwrap();
}

#[test]
fn models_health_info_and_the_page_are_served() {
    let server = serve();
    let models = exchange(&server, "GET", "/v1/models", b"").json();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "tiny-lcl");
    let health = exchange(&server, "GET", "/health", b"").json();
    assert_eq!(health["status"], "ok");
    let info = exchange(&server, "GET", "/v1/lcl/info", b"").json();
    assert_eq!(info["miniature"], false);
    assert_eq!(info["patches_per_image"], 16);
    let page = exchange(&server, "GET", "/", b"");
    assert_eq!(page.status, 200);
    assert!(page.headers.contains("text/html"));
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("Link-context learning") && html.contains("/v1/chat/completions"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page fetches nothing"
    );
    server.stop().unwrap();
}

/// Sends `request` and checks the refusal's status, code and field.
fn assert_refused(
    server: &RunningServer,
    body: &[u8],
    status: u16,
    code: &str,
    param: Option<&str>,
) {
    let reply = exchange(server, "POST", "/v1/chat/completions", body);
    let error = reply.json();
    assert_eq!(reply.status, status, "{error}");
    assert_eq!(error["error"]["code"], code, "{error}");
    if let Some(param) = param {
        assert_eq!(error["error"]["param"], param, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(param)
        );
    }
}

#[test]
fn bad_requests_are_refused_naming_the_field_and_the_server_goes_on() {
    let server = serve();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut request = episode();
        edit(&mut request);
        request.to_string().into_bytes()
    };
    let corrupt = data_url::encode("image/png", b"\x89PNG\r\n\x1a\n not really");
    let url = "messages[0].content[1].image_url.url";
    assert_refused(
        &server,
        &with(&|r| r["messages"][0] = user(&corrupt)),
        400,
        "invalid_image",
        Some(url),
    );
    assert_refused(
        &server,
        &with(&|r| r["messages"][0] = user("https://example.com/cactihog.jpg")),
        400,
        "invalid_image_url",
        Some(url),
    );
    assert_refused(&server, b"{\"messages\": [", 400, "invalid_json", None);
    assert_refused(
        &server,
        &with(&|r| {
            r["messages"].as_array_mut().unwrap().pop();
        }),
        400,
        "missing_query",
        Some("messages"),
    );
    assert_refused(
        &server,
        &with(&|r| r["messages"][1]["role"] = json!("user")),
        400,
        "unexpected_role",
        Some("messages[1].role"),
    );
    assert_refused(
        &server,
        &with(&|r| {
            let turns = r["messages"].as_array_mut().unwrap();
            let shot = turns[..2].to_vec();
            for _ in 0..2 {
                turns.splice(0..0, shot.clone());
            }
        }),
        400,
        "too_many_images",
        Some("messages"),
    );
    assert_refused(
        &server,
        &with(&|r| r["max_tokens"] = json!(11)),
        400,
        "max_tokens_exceeded",
        Some("max_tokens"),
    );
    assert_refused(
        &server,
        &with(&|r| r["tools"] = json!([])),
        400,
        "unsupported_parameter",
        Some("tools"),
    );
    assert_refused(
        &server,
        &with(&|r| r["model"] = json!("gpt-4o")),
        404,
        "model_not_found",
        Some("model"),
    );
    let huge = vec![b' '; (256 << 10) + 1];
    assert_refused(&server, &huge, 413, "request_too_large", None);
    assert_eq!(exchange(&server, "GET", "/v1/nothing", b"").status, 404);
    assert_eq!(
        exchange(&server, "GET", "/v1/chat/completions", b"").status,
        405
    );
    // and it still answers
    let body = post(&server, &episode()).json();
    assert_eq!(body["choices"][0]["message"]["content"], reference_text());
    server.stop().unwrap();
}

#[test]
fn the_miniatures_example_episodes_are_its_worlds_pictures() {
    let examples = lcl::serve::examples::miniature_examples(3).unwrap();
    assert_eq!(examples.len(), 3);
    for example in &examples {
        assert_eq!(example.support.len(), 4);
        let names: std::collections::BTreeSet<&str> =
            example.support.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 2, "a hybrid and its look-alike");
        assert!(names.contains(example.expected.as_str()));
        let query = data_url::decode(&example.query).unwrap();
        let pixels = lcl::image::preprocess_bytes(&query, 32).unwrap();
        assert_eq!(pixels.len(), 3 * 32 * 32);
    }
    assert_ne!(examples[0].query, examples[1].query);
}
