//! Writing a model as Hugging Face checkpoint folders that transformers loads: the
//! Shikra/LCL folder (`model.safetensors`, sharded past a size, and `config.json`) and a
//! CLIP folder (`CLIPModel` or `CLIPVisionModel`, with `preprocessor_config.json`).
//! `lcl export-model --format hf` ([`crate::train::export`]) puts them together.

pub mod configs;
pub mod safetensors;

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::DType;
use lcl_model::{
    CheckpointTensor, ClipConfig, ClipModel, ClipVisionTransformer, LclConfig, LclModel,
};
use serde_json::{Map, Value};

/// Sizes of what is written.
pub struct Written {
    /// Tensors written.
    pub tensors: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Weight files (one, or the shards and their index).
    pub files: usize,
}

/// Refuses a folder that already holds weights: a stale shard or `model.bpk` beside the new
/// files would be read in their place.
pub fn ensure_no_weights(dir: &Path) -> Result<()> {
    let existing = safetensors::existing_weights(dir);
    if !existing.is_empty() {
        bail!(
            "{}: already holds weights ({}); export into a new or empty folder",
            dir.display(),
            existing.join(", ")
        );
    }
    Ok(())
}

/// The JSON object of `dir/config.json`, or an empty one when there is none.
pub fn source_config(dir: &Path) -> Result<Map<String, Value>> {
    let path = dir.join("config.json");
    if !path.is_file() {
        return Ok(Map::new());
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => bail!("{}: not a JSON object", path.display()),
    }
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// Writes the tensors with a progress bar.
fn write_weights(
    dir: &Path,
    tensors: &[CheckpointTensor],
    max_shard_bytes: u64,
) -> Result<Written> {
    let bytes: u64 = tensors.iter().map(|t| t.byte_len() as u64).sum();
    let bar = crate::progress::bar(
        bytes,
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    );
    bar.set_message(format!("writing {}", dir.display()));
    let files = safetensors::write_checkpoint(dir, tensors, max_shard_bytes, |n| bar.inc(n))?;
    bar.finish_and_clear();
    Ok(Written {
        tensors: tensors.len(),
        bytes,
        files: files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "safetensors"))
            .count(),
    })
}

/// Writes the projector and LLaMA as a Shikra/LCL checkpoint into `dir`: the weights and
/// `config.json` (from `source`, the original folder's, with the model's sizes and
/// `config.llm.mm_vision_tower`). Tokenizer files are the caller's.
pub fn write_language(
    dir: &Path,
    model: &LclModel,
    config: &LclConfig,
    source: Map<String, Value>,
    special_ids: [u32; 2],
    max_shard_bytes: u64,
) -> Result<Written> {
    let tensors = model.language_checkpoint_tensors(config)?;
    let written = write_weights(dir, &tensors, max_shard_bytes)?;
    let [bos, eos] = special_ids;
    let json = configs::shikra_config(source, &config.llm, model.dtype(), bos, eos);
    write_json(&dir.join("config.json"), &json)?;
    Ok(written)
}

/// The vision side of an exported model: what is written into its CLIP folder.
pub enum TowerExport<'a> {
    /// A whole CLIP model (both towers, as `CLIPModel`), with its original `config.json`.
    Whole(&'a ClipModel, &'a ClipConfig, Map<String, Value>),
    /// The vision tower alone (as `CLIPVisionModel`).
    VisionOnly(&'a ClipVisionTransformer, &'a lcl_model::ClipVisionConfig),
}

/// Writes a CLIP folder: weights, `config.json`, `preprocessor_config.json`.
pub fn write_clip(
    dir: &Path,
    tower: TowerExport,
    dtype: DType,
    max_shard_bytes: u64,
) -> Result<Written> {
    let (tensors, config, image_size) = match tower {
        TowerExport::Whole(model, config, source) => (
            model.checkpoint_tensors(config)?,
            configs::clip_config(source, config, dtype),
            config.vision_config.image_size,
        ),
        TowerExport::VisionOnly(tower, config) => (
            tower.checkpoint_tensors(config)?,
            configs::clip_vision_config(config, dtype),
            config.image_size,
        ),
    };
    let written = write_weights(dir, &tensors, max_shard_bytes)?;
    write_json(&dir.join("config.json"), &config)?;
    write_json(
        &dir.join("preprocessor_config.json"),
        &configs::preprocessor_config(image_size),
    )?;
    Ok(written)
}
