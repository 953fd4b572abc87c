//! `lcl infer`: one LCL episode through a checkpoint.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lcl::backend::{backend_name, device};
use lcl::infer::{InferRequest, SupportShot, render_prompt};
use lcl::model_folder::{Precision, locate_clip, locate_model};
use lcl_model::GenerationConfig;

#[derive(Args)]
pub struct InferArgs {
    /// Shikra/LCL checkpoint: a folder (config.json, weights, tokenizer.model or
    /// tokenizer.json, added_tokens.json) or a Hugging Face repo id, `org/name[@revision]`,
    /// read from the HF cache or fetched into it.
    #[arg(long)]
    model: PathBuf,
    /// CLIP checkpoint folder or repo id. Default: MODEL/vision, else the config's
    /// mm_vision_tower (a folder or a repo id).
    #[arg(long)]
    vision: Option<PathBuf>,
    /// Fine-tuned weights to put over MODEL's (`lcl train`'s model.bpk, or a merged LoRA).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// A support shot IMG=LABEL; repeat it, in prompt order (the first gets the system text).
    #[arg(long = "support", value_name = "IMG=LABEL")]
    support: Vec<SupportShot>,
    /// The query image.
    #[arg(long)]
    query: PathBuf,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// Precision of the weights.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
    /// Sampling temperature; 0 = greedy, as the original evaluates.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus sampling mass (with --temperature > 0).
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Sampling seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print prompt token count, generated ids and text as JSON.
    #[arg(long)]
    json: bool,
    /// Write the next-token logits at the last prompt position as a float32 .npy vector.
    #[arg(long, value_name = "FILE.npy")]
    logits_out: Option<PathBuf>,
    /// Print the rendered prompt segments and their token ids as JSON, and exit without
    /// loading weights.
    #[arg(long)]
    print_prompt: bool,
}

pub fn run(args: InferArgs) -> Result<()> {
    let request = InferRequest {
        model: locate_model(&args.model)?,
        vision: args.vision.as_deref().map(locate_clip).transpose()?,
        weights: args.weights,
        support: args.support,
        query: args.query,
        generation: GenerationConfig {
            max_new_tokens: args.max_new_tokens,
            temperature: args.temperature,
            top_p: args.top_p,
            seed: args.seed,
            ..GenerationConfig::default()
        },
        precision: args.dtype,
        logits_out: args.logits_out,
    };
    if args.print_prompt {
        let (_, _, segments) = render_prompt(&request)?;
        println!("{}", serde_json::to_string_pretty(&segments)?);
        return Ok(());
    }
    let device = device()?;
    eprintln!("backend: {}", backend_name());
    let output = lcl::infer::run(&request, &device)?;
    if args.json {
        println!("{}", serde_json::to_string(&output)?);
    } else {
        println!("{}", output.text);
    }
    Ok(())
}
