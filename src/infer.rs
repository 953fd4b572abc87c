//! `lcl infer`: one LCL episode (support images with labels, one query image) through a
//! Shikra/LCL checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{DType, Device, Tensor, TensorData};
use lcl_model::{ClipVisionConfig, GenerationConfig, LclModel};
use serde::Serialize;

use crate::image::preprocess_file;
use crate::template::{Segment, evaluation_prompt, prompt_ids};
use crate::tokenizer::{IMAGE_PATCH, LclTokenizer};

/// A support image and its label (`IMG=LABEL` on the command line).
#[derive(Debug, Clone, PartialEq)]
pub struct SupportShot {
    /// The image file.
    pub image: PathBuf,
    /// The label shown for it.
    pub label: String,
}

impl std::str::FromStr for SupportShot {
    type Err = String;

    /// Splits at the first `=` whose left side is an existing file, else at the first `=`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let splits: Vec<usize> = text.match_indices('=').map(|(i, _)| i).collect();
        let at = splits
            .iter()
            .copied()
            .find(|&i| Path::new(&text[..i]).is_file())
            .or_else(|| splits.first().copied())
            .ok_or_else(|| format!("expected IMG=LABEL, got {text:?}"))?;
        let (image, label) = (&text[..at], &text[at + 1..]);
        if image.is_empty() || label.is_empty() {
            return Err(format!("expected IMG=LABEL with both parts, got {text:?}"));
        }
        Ok(Self {
            image: PathBuf::from(image),
            label: label.to_string(),
        })
    }
}

/// Precision the weights are loaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// 32-bit floats (the reference numerics).
    F32,
    /// bfloat16.
    Bf16,
    /// float16 (the original's inference dtype).
    F16,
}

impl Precision {
    /// The Burn dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
            Precision::F16 => DType::F16,
        }
    }
}

/// Everything `lcl infer` needs.
#[derive(Debug, Clone)]
pub struct InferRequest {
    /// Shikra/LCL checkpoint folder.
    pub model: PathBuf,
    /// CLIP checkpoint folder, if given.
    pub vision: Option<PathBuf>,
    /// Fine-tuned weights put over the checkpoint's (`lcl train`'s `model.bpk`).
    pub weights: Option<PathBuf>,
    /// Support shots in prompt order.
    pub support: Vec<SupportShot>,
    /// The query image.
    pub query: PathBuf,
    /// Generation settings.
    pub generation: GenerationConfig,
    /// Weight precision.
    pub precision: Precision,
    /// Where to write the next-token logits at the last prompt position.
    pub logits_out: Option<PathBuf>,
}

/// What `lcl infer --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct InferOutput {
    /// Prompt length in tokens (image patches included).
    pub prompt_tokens: usize,
    /// Generated ids (with `</s>` when produced).
    pub generated_ids: Vec<u32>,
    /// Generated text, special tokens removed.
    pub text: String,
}

/// The vision tower folder: `--vision`, else `MODEL/vision`, else the config's
/// `mm_vision_tower` when it is a local folder.
pub fn resolve_vision_dir(model: &Path, vision: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = vision {
        if !dir.join("config.json").is_file() {
            bail!(
                "--vision {}: no config.json there (expected a CLIP checkpoint folder)",
                dir.display()
            );
        }
        return Ok(dir.to_path_buf());
    }
    let inside = model.join("vision");
    if inside.join("config.json").is_file() {
        return Ok(inside);
    }
    let config_path = model.join("config.json");
    let named = std::fs::read_to_string(&config_path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|config| config.get("mm_vision_tower")?.as_str().map(str::to_string));
    if let Some(named) = &named {
        let path = Path::new(named);
        let path = if path.is_relative() {
            model.join(path)
        } else {
            path.to_path_buf()
        };
        if path.join("config.json").is_file() {
            return Ok(path);
        }
    }
    bail!(
        "no CLIP vision tower found: {} does not exist and mm_vision_tower ({}) is not a local folder. \
         Pass --vision DIR with a CLIP checkpoint folder (e.g. a download of openai/clip-vit-large-patch14)",
        inside.display(),
        named.as_deref().unwrap_or("not set")
    )
}

/// The rendered evaluation prompt of a request, without loading any weight.
pub fn render_prompt(
    request: &InferRequest,
) -> Result<(LclTokenizer, ClipVisionConfig, Vec<Segment>)> {
    let tokenizer = LclTokenizer::from_dir(&request.model)?;
    let vision_dir = resolve_vision_dir(&request.model, request.vision.as_deref())?;
    let vision = ClipVisionConfig::from_file(&vision_dir.join("config.json"))?;
    let labels: Vec<String> = request.support.iter().map(|s| s.label.clone()).collect();
    let segments = evaluation_prompt(&tokenizer, &labels, vision.num_patches());
    Ok((tokenizer, vision, segments))
}

/// Loads a checkpoint and its vision tower with a progress bar on stderr.
pub fn load_model(
    model_dir: &Path,
    vision_dir: &Path,
    tokenizer: &LclTokenizer,
    device: &Device,
    precision: Precision,
) -> Result<LclModel> {
    let started = Instant::now();
    eprintln!(
        "loading {} and {} ...",
        model_dir.display(),
        vision_dir.display()
    );
    let bar = crate::progress::bar(
        0,
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    );
    bar.set_message("loading weights");
    let model = LclModel::from_pretrained_with_progress(
        model_dir,
        vision_dir,
        tokenizer.special_id(IMAGE_PATCH)?,
        device,
        precision.dtype(),
        &mut |read, total| {
            bar.set_length(total as u64);
            bar.set_position(read as u64);
        },
    )?;
    bar.finish_and_clear();
    eprintln!("loaded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(model)
}

/// Puts fine-tuned weights (`lcl train`'s `model.bpk`, or `lcl merge-lora`'s output) over
/// `model`'s: every tensor in the file must be one of the model's, in its shape.
pub fn apply_weights(model: LclModel, path: &Path) -> Result<LclModel> {
    let record = burn::store::ModuleRecord::load(path)
        .map_err(|err| anyhow::anyhow!("{}: cannot read the weights: {err}", path.display()))?;
    let adapters = burn_pack::Reader::from_file(path)
        .and_then(burn_pack::Reader::into_tensors)
        .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?
        .iter()
        .filter(|tensor| crate::train::checkpoint::is_adapter(&tensor.name))
        .count();
    if adapters > 0 {
        bail!(
            "{} holds {adapters} LoRA adapter tensors: merge them first with \
             `lcl merge-lora --config CONFIG --weights {} --out merged.bpk`",
            path.display(),
            path.display()
        );
    }
    eprintln!("applying {} ({} tensors)", path.display(), record.len());
    use burn::module::Module;
    model
        .try_load_record(record.allow_partial(true).cast_to_module_dtype())
        .map_err(|err| anyhow::anyhow!("{}: does not fit the model: {err}", path.display()))
}

/// [`load_model`], then fine-tuned `weights` over it when given ([`apply_weights`]).
pub fn load_model_with_weights(
    model_dir: &Path,
    vision_dir: &Path,
    tokenizer: &LclTokenizer,
    device: &Device,
    precision: Precision,
    weights: Option<&Path>,
) -> Result<LclModel> {
    let model = load_model(model_dir, vision_dir, tokenizer, device, precision)?;
    match weights {
        Some(path) => apply_weights(model, path),
        None => Ok(model),
    }
}

/// Runs one episode on `device` and returns the answer.
pub fn run(request: &InferRequest, device: &Device) -> Result<InferOutput> {
    let (tokenizer, vision, segments) = render_prompt(request)?;
    let ids = prompt_ids(&segments);
    let mut files: Vec<&Path> = request.support.iter().map(|s| s.image.as_path()).collect();
    files.push(&request.query);
    let size = vision.image_size as u32;
    let mut pixels = Vec::with_capacity(files.len() * 3 * (size * size) as usize);
    for file in &files {
        pixels.extend(preprocess_file(file, size)?);
    }
    let vision_dir = resolve_vision_dir(&request.model, request.vision.as_deref())?;
    let model = load_model_with_weights(
        &request.model,
        &vision_dir,
        &tokenizer,
        device,
        request.precision,
        request.weights.as_deref(),
    )?;
    let size = size as usize;
    let pixels = Tensor::<4>::from_data(
        TensorData::new(pixels, [files.len(), 3, size, size]),
        device,
    );
    let started = Instant::now();
    let features = model.encode_images(pixels);
    let mut generation = request.generation.clone();
    generation.eos_token_id = tokenizer.eos_id();
    generation.pad_token_id = tokenizer.pad_id();
    let result = model.generate(std::slice::from_ref(&ids), Some(features), &generation)?;
    eprintln!(
        "{} prompt tokens, {} generated in {:.1} s",
        ids.len(),
        result.tokens[0].len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &request.logits_out {
        let logits: Vec<f32> = result
            .prompt_logits
            .clone()
            .into_data()
            .try_into_vec_as::<f32>()
            .context("logits to f32")?;
        crate::npy::write_f32(path, &[logits.len()], &logits)?;
    }
    let generated = result.tokens.into_iter().next().unwrap_or_default();
    Ok(InferOutput {
        prompt_tokens: ids.len(),
        text: tokenizer.decode(&generated, true),
        generated_ids: generated,
    })
}
