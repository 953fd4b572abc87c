//! `lcl export-model`: a self-contained model folder at another precision (the miniature's
//! shipped checkpoints are f16: half the bytes; loading casts them back to the dtype asked),
//! optionally with a deeper decoder grown from the trained one, in Burn's format or as a
//! Hugging Face checkpoint that transformers loads ([`crate::hf_checkpoint`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use lcl_model::checkpoint::BURNPACK;
use lcl_model::{ClipConfig, ClipModel, ClipVisionConfig, LclConfig, LclModel, LlamaConfig};

use crate::hf_checkpoint::{self, TowerExport};

use crate::model_folder::{Precision, load_model_with_weights, resolve_vision_dir};
use crate::tokenizer::LclTokenizer;
use crate::train::checkpoint::{Keep, write_record};
use crate::train::init::{TOKENIZER_FILES, copy};
use crate::train::trainer::LclTrainer;

/// The layout of the folder written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ExportFormat {
    /// This project's: `model.bpk` (Burn's burnpack), read by every `lcl` command.
    #[default]
    Burn,
    /// A Hugging Face Shikra/LCL checkpoint: `model.safetensors` (sharded past
    /// `--max-shard-size`), `config.json`, tokenizer files; transformers loads it.
    Hf,
}

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
    /// The layout written.
    pub format: ExportFormat,
    /// Largest safetensors file (`--format hf`); bigger checkpoints are sharded.
    pub max_shard_bytes: u64,
    /// The Hub repo id the tower was named by (`--vision`, or the config's
    /// `mm_vision_tower`), if it was: a Hugging Face export names it rather than copying it.
    pub vision_repo: Option<String>,
}

/// Writes `out/{config.json, weights, tokenizer files}` and the CLIP model in its own
/// folder, every weight at the requested precision: in Burn's format `model.bpk` and the
/// whole CLIP model; as a Hugging Face checkpoint safetensors, and a CLIP folder unless the
/// tower is a stock one the config names by repo id.
pub fn export_model(request: &ExportRequest, device: &Device) -> Result<()> {
    if request.format == ExportFormat::Hf {
        hf_checkpoint::ensure_no_weights(&request.out)?;
    }
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
    let same_tower_folder = || -> Result<bool> {
        Ok(vision_out.exists()
            && std::fs::canonicalize(&vision_dir)? == std::fs::canonicalize(&vision_out)?)
    };
    match request.format {
        ExportFormat::Burn => {
            // Exporting into the CLIP folder the model already uses leaves it as it is.
            if !same_tower_folder()? {
                write_burn_tower(&vision_dir, &vision_out, device, dtype)?;
            }
            llm.mm_vision_tower = Some(relative_to(out, &vision_out)?);
            std::fs::write(out.join("config.json"), serde_json::to_vec_pretty(&llm)?)
                .with_context(|| format!("{}: cannot write config.json", out.display()))?;
            write_record(
                LclTrainer::new(model).into_record(),
                Keep::All,
                &out.join(BURNPACK),
            )?;
        }
        ExportFormat::Hf => {
            let stock = request
                .vision_repo
                .clone()
                .filter(|_| !vision_dir.join(BURNPACK).is_file());
            llm.mm_vision_tower = match stock {
                Some(repo) => Some(repo),
                None if same_tower_folder()? => bail!(
                    "{}: the model's CLIP folder cannot be rewritten in place; \
                     choose another --vision-out",
                    vision_out.display()
                ),
                None => {
                    write_hf_tower(&model, &vision_dir, &vision_out, request.max_shard_bytes)?;
                    Some(relative_to(out, &vision_out)?)
                }
            };
            let config = LclConfig {
                llm,
                vision: ClipVisionConfig::from_file(&vision_dir.join("config.json"))?,
            };
            let written = hf_checkpoint::write_language(
                out,
                &model,
                &config,
                hf_checkpoint::source_config(&request.model)?,
                [tokenizer.bos_id(), tokenizer.eos_id()],
                request.max_shard_bytes,
            )?;
            eprintln!(
                "{}: {} tensors, {:.1} MB in {} safetensors file(s)",
                out.display(),
                written.tensors,
                written.bytes as f64 / 1e6,
                written.files
            );
        }
    }
    copy_present(&request.model, out, &TOKENIZER_FILES)
}

/// Copies those of `names` that `from` holds into `to`.
fn copy_present(from: &Path, to: &Path, names: &[&str]) -> Result<()> {
    for name in names {
        let source = from.join(name);
        if source.is_file() {
            copy(&source, &to.join(name))?;
        }
    }
    Ok(())
}

/// The whole CLIP model of `vision_dir` in Burn's format (both towers) in `vision_out`.
fn write_burn_tower(
    vision_dir: &Path,
    vision_out: &Path,
    device: &Device,
    dtype: burn::tensor::DType,
) -> Result<()> {
    std::fs::create_dir_all(vision_out)
        .with_context(|| format!("{}: cannot create", vision_out.display()))?;
    let clip = ClipModel::from_pretrained(vision_dir, device, dtype)
        .with_context(|| format!("{}: not a whole CLIP model", vision_dir.display()))?;
    clip.save_burnpack(&vision_out.join(BURNPACK))
        .map_err(|err| anyhow::anyhow!("{}: {err}", vision_out.display()))?;
    copy_present(vision_dir, vision_out, &["config.json", "tokenizer.json"])
}

/// The tower as a Hugging Face CLIP folder in `vision_out`: the whole CLIP model of
/// `vision_dir` when it holds one (with its tokenizer), else the model's vision tower alone.
fn write_hf_tower(
    model: &LclModel,
    vision_dir: &Path,
    vision_out: &Path,
    max_shard_bytes: u64,
) -> Result<()> {
    std::fs::create_dir_all(vision_out)
        .with_context(|| format!("{}: cannot create", vision_out.display()))?;
    hf_checkpoint::ensure_no_weights(vision_out)?;
    let dtype = model.dtype();
    let config_path = vision_dir.join("config.json");
    let whole = ClipConfig::from_file(&config_path).and_then(|config| {
        let clip = ClipModel::from_pretrained(vision_dir, &model.device(), dtype)?;
        Ok((config, clip))
    });
    let written = match whole {
        Ok((config, clip)) => {
            let source = hf_checkpoint::source_config(vision_dir)?;
            let written = hf_checkpoint::write_clip(
                vision_out,
                TowerExport::Whole(&clip, &config, source),
                dtype,
                max_shard_bytes,
            )?;
            copy_present(vision_dir, vision_out, &["tokenizer.json"])?;
            written
        }
        Err(err) => {
            eprintln!(
                "{}: not a whole CLIP model ({err}); writing the vision tower alone",
                vision_dir.display()
            );
            let config = ClipVisionConfig::from_file(&config_path)?;
            hf_checkpoint::write_clip(
                vision_out,
                TowerExport::VisionOnly(&model.vision, &config),
                dtype,
                max_shard_bytes,
            )?
        }
    };
    eprintln!(
        "{}: CLIP, {} tensors, {:.1} MB",
        vision_out.display(),
        written.tensors,
        written.bytes as f64 / 1e6
    );
    Ok(())
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
