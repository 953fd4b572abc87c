//! `lcl infer`: one LCL episode (support images with labels, one query image) through a
//! Shikra/LCL checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::{Device, Tensor, TensorData};
use lcl_model::{ClipVisionConfig, GenerationConfig};
use serde::Serialize;

use crate::image::preprocess_file;
use crate::model_folder::{Precision, load_model_with_weights, resolve_vision_dir};
use crate::template::{Segment, evaluation_prompt, prompt_ids};
use crate::tokenizer::LclTokenizer;

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
