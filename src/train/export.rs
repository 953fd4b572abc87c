//! `lcl export-model`: a self-contained model folder at another precision (the miniature's
//! shipped checkpoints are f16: half the bytes; loading casts them back to the dtype asked),
//! optionally with a deeper decoder grown from the trained one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use lcl_model::checkpoint::BURNPACK;
use lcl_model::{ClipModel, LlamaConfig};

use crate::model_folder::{Precision, load_model_with_weights, resolve_vision_dir};
use crate::tokenizer::LclTokenizer;
use crate::train::checkpoint::{Keep, write_record};
use crate::train::init::{TOKENIZER_FILES, copy};
use crate::train::trainer::LclTrainer;

/// Everything `lcl export-model` needs.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// Model folder to export.
    pub model: PathBuf,
    /// Its CLIP folder (default: as `lcl eval` finds it).
    pub vision: Option<PathBuf>,
    /// Fine-tuned weights to put over the model's first (`lcl train`'s `model.bpk`).
    pub weights: Option<PathBuf>,
    /// Precision the weights are stored at.
    pub precision: Precision,
    /// The model folder to write.
    pub out: PathBuf,
    /// Where the CLIP folder goes (default: `out/vision`); several models can share one.
    pub vision_out: Option<PathBuf>,
    /// Deepen the decoder to this many layers with identity blocks ([`crate::train::grow`]).
    pub depth: Option<usize>,
}

/// Writes `out/{config.json, model.bpk, tokenizer files}` and the whole CLIP model (both
/// towers) in its own folder, every weight at the requested precision.
pub fn export_model(request: &ExportRequest, device: &Device) -> Result<()> {
    let vision_dir = resolve_vision_dir(&request.model, request.vision.as_deref())?;
    let tokenizer = LclTokenizer::from_dir(&request.model)?;
    let dtype = request.precision.dtype();
    let mut llm = LlamaConfig::from_file(&request.model.join("config.json"))?;
    if let Some(depth) = request.depth.filter(|&depth| depth < llm.num_hidden_layers) {
        bail!(
            "--depth {depth}: {} has {} decoder layers; a model can only be deepened",
            request.model.display(),
            llm.num_hidden_layers
        );
    }
    let mut model = load_model_with_weights(
        &request.model,
        &vision_dir,
        &tokenizer,
        device,
        request.precision,
        request.weights.as_deref(),
    )?;
    if let Some(depth) = request.depth {
        model.llm = crate::train::grow::grow(model.llm, depth)?;
        llm.num_hidden_layers = depth;
    }
    let out = &request.out;
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let vision_out = request
        .vision_out
        .clone()
        .unwrap_or_else(|| out.join("vision"));
    std::fs::create_dir_all(&vision_out)
        .with_context(|| format!("{}: cannot create", vision_out.display()))?;
    // Exporting into the CLIP folder the model already uses leaves that folder as it is.
    if std::fs::canonicalize(&vision_dir)? != std::fs::canonicalize(&vision_out)? {
        let clip = ClipModel::from_pretrained(&vision_dir, device, dtype)
            .with_context(|| format!("{}: not a whole CLIP model", vision_dir.display()))?;
        clip.save_burnpack(&vision_out.join(BURNPACK))
            .map_err(|err| anyhow::anyhow!("{}: {err}", vision_out.display()))?;
        for name in ["config.json", "tokenizer.json"] {
            let source = vision_dir.join(name);
            if source.is_file() {
                copy(&source, &vision_out.join(name))?;
            }
        }
    }
    llm.mm_vision_tower = Some(relative_to(out, &vision_out)?);
    std::fs::write(out.join("config.json"), serde_json::to_vec_pretty(&llm)?)
        .with_context(|| format!("{}: cannot write config.json", out.display()))?;
    for name in TOKENIZER_FILES {
        let source = request.model.join(name);
        if source.is_file() {
            copy(&source, &out.join(name))?;
        }
    }
    write_record(
        LclTrainer::new(model).into_record(),
        Keep::All,
        &out.join(BURNPACK),
    )
    .map(|_| ())
}

/// `target` as `mm_vision_tower` of a model in `folder` reads it: `vision` inside it,
/// `../name` beside it, else the absolute path.
fn relative_to(folder: &Path, target: &Path) -> Result<String> {
    let folder = std::path::absolute(folder)?;
    let target = std::path::absolute(target)?;
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned());
    if let Some(name) = name {
        if target.parent() == Some(folder.as_path()) {
            return Ok(name);
        }
        if target.parent() == folder.parent() {
            return Ok(format!("../{name}"));
        }
    }
    Ok(target.to_string_lossy().into_owned())
}
