//! `lcl serve`: an OpenAI-compatible chat endpoint and a web page over one model.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use clap::Args;
use lcl::backend::{backend_name, device};
use lcl::eval::default::CHECKPOINTS;
use lcl::model_folder::{Precision, locate_clip, locate_model};
use lcl::serve::{ServeOptions, start};

#[derive(Args)]
pub struct ServeArgs {
    /// Shikra/LCL checkpoint folder or Hugging Face repo id. Default: the shipped miniature
    /// LCL model (checkpoints/mini/lcl), which knows only its generated world.
    #[arg(long)]
    model: Option<PathBuf>,
    /// CLIP folder or repo id. Default: MODEL/vision, else the config's mm_vision_tower.
    #[arg(long)]
    vision: Option<PathBuf>,
    /// Fine-tuned weights over MODEL's (`lcl train`'s model.bpk, or a merged LoRA).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Precision of the weights.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
    /// The model's id in the API (`/v1/models`). Default: the --model argument as given.
    #[arg(long)]
    model_name: Option<String>,
    /// Address to listen on; 0.0.0.0 opens the server to the network (it has no
    /// authentication).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one and prints it).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Largest request body in MiB (the images come inside it, base64).
    #[arg(long, default_value_t = 32)]
    max_body_mb: usize,
    /// Most images per request, support shots and query together.
    #[arg(long, default_value_t = 33)]
    max_images: usize,
    /// Most tokens a request may generate; also what a request without max_tokens gets.
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Most tokens of prompt and answer together; longer requests are refused with 400.
    #[arg(long, default_value_t = 8192)]
    max_context: usize,
    /// Most requests answered in one batch.
    #[arg(long, default_value_t = 8)]
    max_batch: usize,
    /// Most requests waiting for the model; more are refused with 429.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Most requests handled at once, waiting ones included; more are refused with 429.
    #[arg(long, default_value_t = 128)]
    max_connections: usize,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let miniature = args.model.is_none();
    let (model, model_name) = match &args.model {
        Some(spec) => (locate_model(spec)?, spec.display().to_string()),
        None => (
            lcl::assets::find(&format!("{CHECKPOINTS}/lcl"))?,
            "lcl-miniature".to_string(),
        ),
    };
    let options = ServeOptions {
        model,
        vision: args.vision.as_deref().map(locate_clip).transpose()?,
        weights: args.weights,
        precision: args.dtype,
        model_id: args.model_name.unwrap_or(model_name),
        miniature,
        address: format!("{}:{}", args.host, args.port),
        max_body_bytes: args.max_body_mb << 20,
        max_images: args.max_images,
        max_tokens: args.max_tokens,
        max_context: args.max_context,
        max_batch: args.max_batch,
        max_queue: args.max_queue,
        max_connections: args.max_connections,
    };
    let device = device()?;
    eprintln!("backend: {}", backend_name());
    let server = start(&options, &device)?;
    let stopper = server.stopper();
    let interrupted = AtomicBool::new(false);
    ctrlc::set_handler(move || {
        if interrupted.swap(true, Ordering::SeqCst) {
            eprintln!("serve: stopping now");
            std::process::exit(130);
        }
        eprintln!("serve: stopping: answering the requests taken (Ctrl-C again to quit now)");
        stopper.stop();
    })?;
    println!(
        "serving {} at {} (the page), {}/v1/chat/completions (OpenAI chat API); Ctrl-C stops",
        options.model_id,
        server.url(),
        server.url()
    );
    server.wait()?;
    eprintln!("serve: stopped");
    Ok(())
}
