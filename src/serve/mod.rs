//! `lcl serve`: the model behind an OpenAI-compatible chat endpoint, with a web page to try
//! link-context learning in a browser. An episode is a conversation: each support shot a
//! user turn with an image followed by an assistant turn with its label; the last user
//! turn's image is the query. The prompt is the original template, as `lcl infer` renders it.

pub mod answer;
pub mod data_url;
pub mod engine;
pub mod error;
pub mod examples;
pub mod http;
pub mod request;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow};
use burn::tensor::Device;
use lcl_model::ClipVisionConfig;
use serde_json::json;

use crate::model_folder::{Precision, load_model_with_weights, resolve_vision_dir};
use crate::serve::engine::WorkerConfig;
use crate::serve::error::ApiError;
use crate::serve::http::Shared;
use crate::serve::request::Limits;
use crate::tokenizer::LclTokenizer;

/// Example episodes the page offers with the miniature.
const EXAMPLES: usize = 6;

/// What to serve and how.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Shikra/LCL model folder.
    pub model: PathBuf,
    /// CLIP folder, if not the model's own.
    pub vision: Option<PathBuf>,
    /// Fine-tuned weights over the model's.
    pub weights: Option<PathBuf>,
    /// Weight precision.
    pub precision: Precision,
    /// The id clients name the model by.
    pub model_id: String,
    /// Whether this is the shipped miniature (the page then offers its world's examples).
    pub miniature: bool,
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free one).
    pub address: String,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most images per request.
    pub max_images: usize,
    /// Most tokens a request may generate, and the default.
    pub max_tokens: usize,
    /// Most tokens of prompt and answer together (LLaMA's RoPE runs past its trained
    /// context, and a 16-shot LCL prompt of ViT-L/14 images is about 4,900 tokens).
    pub max_context: usize,
    /// Most requests answered together.
    pub max_batch: usize,
    /// Most requests waiting for the model.
    pub max_queue: usize,
    /// Most requests handled at once (waiting ones included).
    pub max_connections: usize,
}

/// A running server.
pub struct RunningServer {
    /// Where it listens.
    pub address: SocketAddr,
    server: Arc<tiny_http::Server>,
    accept: JoinHandle<()>,
    worker: JoinHandle<()>,
}

/// Ends a running server from another thread (a Ctrl-C handler).
#[derive(Clone)]
pub struct Stopper(Arc<tiny_http::Server>);

impl Stopper {
    /// Stops taking requests; those being answered finish.
    pub fn stop(&self) {
        self.0.unblock();
    }
}

impl RunningServer {
    /// `http://address`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A handle that stops the server.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.server.clone())
    }

    /// Blocks until the server is stopped and every request taken is answered.
    pub fn wait(self) -> Result<()> {
        self.accept
            .join()
            .map_err(|_| anyhow!("the request thread panicked"))?;
        self.worker
            .join()
            .map_err(|_| anyhow!("the model thread panicked"))
    }

    /// Stops the server and waits for it.
    pub fn stop(self) -> Result<()> {
        self.stopper().stop();
        self.wait()
    }
}

/// Loads the model, binds the address and starts answering.
pub fn start(options: &ServeOptions, device: &Device) -> Result<RunningServer> {
    let tokenizer = Arc::new(LclTokenizer::from_dir(&options.model)?);
    let vision_dir = resolve_vision_dir(&options.model, options.vision.as_deref())?;
    let vision = ClipVisionConfig::from_file(&vision_dir.join("config.json"))?;
    let server = tiny_http::Server::http(&options.address)
        .map_err(|err| anyhow!("cannot listen on {}: {err}", options.address))?;
    let address = server
        .server_addr()
        .to_ip()
        .context("the server is not on an IP address")?;
    let model = load_model_with_weights(
        &options.model,
        &vision_dir,
        &tokenizer,
        device,
        options.precision,
        options.weights.as_deref(),
    )?;
    let limits = Limits {
        max_body_bytes: options.max_body_bytes,
        max_images: options.max_images,
        max_tokens: options.max_tokens,
        max_context: options.max_context,
    };
    let (engine, worker) = engine::start(
        model,
        tokenizer,
        vision.num_patches(),
        vision.image_size as u32,
        device.clone(),
        WorkerConfig {
            max_batch: options.max_batch,
            max_queue: options.max_queue,
            max_context: limits.max_context,
        },
    );
    let examples = if options.miniature {
        examples::miniature_examples(EXAMPLES)?
    } else {
        Vec::new()
    };
    let info = json!({
        "model": options.model_id,
        "checkpoint": options.model.display().to_string(),
        "vision": vision_dir.display().to_string(),
        "weights": options.weights.as_ref().map(|w| w.display().to_string()),
        "miniature": options.miniature,
        "backend": crate::backend::backend_name(),
        "image_size": vision.image_size,
        "patches_per_image": vision.num_patches(),
        "limits": {
            "max_body_bytes": limits.max_body_bytes,
            "max_images": limits.max_images,
            "max_tokens": limits.max_tokens,
            "max_context": limits.max_context,
            "max_batch": options.max_batch,
            "max_queue": options.max_queue,
        },
    });
    let shared = Arc::new(Shared::new(
        engine,
        options.model_id.clone(),
        info,
        json!({"examples": examples}),
        limits,
        options.max_connections,
    ));
    let server = Arc::new(server);
    let accept = {
        let server = server.clone();
        std::thread::Builder::new()
            .name("lcl-http".into())
            .spawn(move || accept(&server, shared))
            .context("cannot start the request thread")?
    };
    Ok(RunningServer {
        address,
        server,
        accept,
        worker,
    })
}

/// Hands each request to a thread of its own, up to the connection limit.
fn accept(server: &tiny_http::Server, shared: Arc<Shared>) {
    let mut handlers: Vec<JoinHandle<()>> = Vec::new();
    for request in server.incoming_requests() {
        handlers.retain(|h| !h.is_finished());
        if shared.active.load(Ordering::SeqCst) >= shared.max_connections {
            let error = ApiError::new(
                429,
                "too_many_connections",
                format!(
                    "{} requests are being handled (--max-connections): try again shortly",
                    shared.max_connections
                ),
            );
            http::respond_error(request, &error);
            continue;
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        let handler = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("lcl-request".into())
            .spawn(move || {
                http::handle(request, &handler);
                handler.active.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(handle) => handlers.push(handle),
            Err(err) => {
                shared.active.fetch_sub(1, Ordering::SeqCst);
                eprintln!("serve: cannot start a request thread: {err}");
            }
        }
    }
    // answer what was taken before the model's queue closes
    for handle in handlers {
        let _ = handle.join();
    }
}
