//! `lcl train` (fine-tuning with Burn's Learner, resumable) and `lcl merge-lora`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use lcl::backend::{backend_name, device};
use lcl::config::{Overrides, RunConfig};

#[derive(Args)]
pub struct TrainArgs {
    /// Run config (TOML): [model] [data] [sampler] [mix] [training] [validation].
    #[arg(long)]
    config: PathBuf,
    /// Run folder: checkpoint/, steps.jsonl, validation.jsonl, Burn's logs, model.bpk.
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// Continue the run in --out from its last complete checkpoint.
    #[arg(long)]
    resume: bool,
    /// Checkpoint folder or Hugging Face repo id to start from (overrides [model] base).
    #[arg(long)]
    model: Option<PathBuf>,
    /// CLIP checkpoint folder or repo id (overrides [model] vision).
    #[arg(long)]
    vision: Option<PathBuf>,
    /// Folder the class file's images are relative to (overrides [data] image_root).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Per-class file (overrides [data] class_file).
    #[arg(long)]
    class_file: Option<PathBuf>,
    /// Longest invented name, in letters (overrides [sampler] label_letters).
    #[arg(long)]
    label_letters: Option<usize>,
    /// Passes over the episodes (overrides [training] epochs).
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many optimiser steps in all, as an interruption (resume later).
    #[arg(long)]
    stop_after: Option<usize>,
}

#[derive(Args)]
pub struct MergeLoraArgs {
    /// The LoRA run's config (its [model] and [training.lora]).
    #[arg(long)]
    config: PathBuf,
    /// The run's adapters (model.bpk or checkpoint/model-N.bpk).
    #[arg(long)]
    weights: PathBuf,
    /// The merged weights file to write.
    #[arg(long)]
    out: PathBuf,
}

pub fn train(args: TrainArgs) -> Result<()> {
    let overrides = Overrides {
        model: args.model,
        vision: args.vision,
        image_root: args.data,
        class_file: args.class_file,
        label_letters: args.label_letters,
        epochs: args.epochs,
    };
    let config = RunConfig::from_file(&args.config)?
        .apply(&overrides)
        .with_context(|| format!("{}: invalid with the overrides", args.config.display()))?;
    let request = lcl::train::TrainRequest {
        config,
        out: args.out,
        resume: args.resume,
        stop_after: args.stop_after,
    };
    let device = device()?;
    eprintln!("training on {} ({device:?})", backend_name());
    let summary = lcl::train::train(&request, &device)?;
    eprintln!(
        "{} optimiser steps done; {} episodes in {:.1} s ({:.3} episodes/s); last checkpoint: {}",
        summary.steps,
        summary.episodes,
        summary.seconds,
        summary.episodes as f64 / summary.seconds.max(1e-9),
        summary
            .last_checkpoint
            .map_or("none".to_string(), |n| n.to_string())
    );
    match summary.weights {
        Some(weights) => eprintln!("trained weights: {}", weights.display()),
        None => eprintln!(
            "stopped before the end: continue with --resume --out {}",
            request.out.display()
        ),
    }
    Ok(())
}

pub fn merge_lora(args: MergeLoraArgs) -> Result<()> {
    let config = RunConfig::from_file(&args.config)?;
    let device = device()?;
    let count = lcl::train::lora::merge_file(&config, &args.weights, &args.out, &device)?;
    eprintln!("{}: {count} merged tensors", args.out.display());
    Ok(())
}
