//! The model-folder commands: `lcl init-model`, `lcl export-model`, `lcl train-clip`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lcl::backend::device;
use lcl::model_folder::Precision;
use lcl::train::export::ExportFormat;

#[derive(Args)]
pub struct InitModelArgs {
    /// LLaMA config.json (sizes; mm_hidden_size is taken from the vision tower).
    #[arg(long)]
    llm: PathBuf,
    /// CLIP folder (copied into OUT/vision).
    #[arg(long)]
    vision: PathBuf,
    /// Folder with the LLaMA tokenizer files (copied).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Standard deviation of the fresh weights.
    #[arg(long, default_value_t = 0.02)]
    std: f64,
    /// Seed of the fresh weights.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The model folder to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct ExportModelArgs {
    /// Model folder (or Hugging Face repo id) to export.
    #[arg(long)]
    model: PathBuf,
    /// CLIP folder or repo id (default: MODEL/vision, else the config's mm_vision_tower).
    #[arg(long)]
    vision: Option<PathBuf>,
    /// Fine-tuned weights to fold in (`lcl train`'s model.bpk).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Precision the weights are stored at.
    #[arg(long, value_enum, default_value_t = Precision::F16)]
    dtype: Precision,
    /// Layout of the folder written. With `hf`, a tower trained here goes to OUT/vision as
    /// an HF CLIP folder and a stock one named by repo id stays named; `huggingface-cli
    /// upload` takes the folder as it is.
    #[arg(long, value_enum, default_value_t = ExportFormat::Burn)]
    format: ExportFormat,
    /// With `--format hf`: the largest safetensors file (e.g. 5GB, 500MB); a bigger
    /// checkpoint is sharded, with model.safetensors.index.json.
    #[arg(long, default_value = "5GB", value_parser = lcl::hf_checkpoint::safetensors::parse_size)]
    max_shard_size: u64,
    /// The model folder to write.
    #[arg(long)]
    out: PathBuf,
    /// Where the CLIP folder goes (default: OUT/vision); models can share one.
    #[arg(long)]
    vision_out: Option<PathBuf>,
    /// Deepen the decoder to this many layers: identity blocks (copies of the layer before,
    /// output projections zero, as in LLaMA Pro) spread evenly, so outputs start unchanged.
    #[arg(long)]
    depth: Option<usize>,
}

#[derive(Args)]
pub struct TrainClipArgs {
    /// CLIP config.json with the sizes of both towers.
    #[arg(long)]
    config: PathBuf,
    /// Folder holding the CLIP tokenizer.json (copied into --out).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Image folder: one sub-folder per class.
    #[arg(long)]
    data: PathBuf,
    /// Names file (default: LOC_synset_mapping.txt / names.tsv beside the folder).
    #[arg(long)]
    names: Option<PathBuf>,
    /// Classes to leave out (one id per line).
    #[arg(long)]
    split: Option<PathBuf>,
    /// Optimiser steps.
    #[arg(long, default_value_t = 1500)]
    steps: usize,
    /// Classes per contrastive batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Peak learning rate (5% warm-up, then cosine).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Softmax temperature.
    #[arg(long, default_value_t = 0.07)]
    temperature: f64,
    /// Seed of initialisation and batches.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The CLIP folder to write.
    #[arg(long)]
    out: PathBuf,
}

pub fn init_model(args: InitModelArgs) -> Result<()> {
    let request = lcl::train::init::InitRequest {
        llm: args.llm,
        vision: args.vision,
        tokenizer: args.tokenizer,
        std: args.std,
        seed: args.seed,
        out: args.out,
    };
    lcl::train::init::init_model(&request, &device()?)?;
    eprintln!("{}: fresh model written", request.out.display());
    Ok(())
}

pub fn export_model(args: ExportModelArgs) -> Result<()> {
    let model = lcl::model_folder::locate_model(&args.model)?;
    let vision_repo = lcl::model_folder::tower_repo_id(&model, args.vision.as_deref());
    let request = lcl::train::export::ExportRequest {
        model,
        vision: args
            .vision
            .as_deref()
            .map(lcl::model_folder::locate_clip)
            .transpose()?,
        weights: args.weights,
        precision: args.dtype,
        out: args.out,
        vision_out: args.vision_out,
        depth: args.depth,
        format: args.format,
        max_shard_bytes: args.max_shard_size,
        vision_repo,
    };
    lcl::train::export::export_model(&request, &device()?)?;
    eprintln!("{}: model written", request.out.display());
    Ok(())
}

pub fn train_clip(args: TrainClipArgs) -> Result<()> {
    let config = lcl_model::ClipConfig::from_file(&args.config)?;
    let request = lcl::train::clip::ClipTrainRequest {
        config,
        tokenizer: args.tokenizer,
        data: args.data,
        names: args.names,
        split: args.split,
        steps: args.steps,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        temperature: args.temperature,
        seed: args.seed,
        out: args.out.clone(),
    };
    let summary = lcl::train::clip::train_clip(&request, &device()?)?;
    eprintln!(
        "{}: {} classes, {} steps in {:.1} s; final loss {:.4}; zero-shot naming accuracy {:.1}%",
        args.out.display(),
        summary.classes,
        request.steps,
        summary.seconds,
        summary.final_loss,
        100.0 * summary.naming_accuracy
    );
    Ok(())
}
