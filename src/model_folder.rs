//! A model folder on disk and how it is loaded: the Shikra/LCL checkpoint (Hugging Face
//! weights or Burn's `model.bpk`), its CLIP folder, fine-tuned weights put over it, and the
//! precision. `infer`, `eval`, `train`, `merge-lora` and `export-model` all load through here.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{DType, Device};
use lcl_model::{LclModel, LoadOptions};

use crate::hub::{self, FolderKind};
use crate::tokenizer::{IMAGE_PATCH, LclTokenizer};

/// Precision the weights are loaded in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats (the reference numerics).
    #[default]
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

/// A model folder as given (`--model`, a config's `base`): a local folder, or a Hub repo id
/// resolved to its cached snapshot, fetched when needed ([`crate::hub`]).
pub fn locate_model(spec: &Path) -> Result<PathBuf> {
    hub::locate(spec, FolderKind::Lcl)
}

/// A CLIP folder as given (`--vision`, `--clip`), likewise.
pub fn locate_clip(spec: &Path) -> Result<PathBuf> {
    hub::locate(spec, FolderKind::Clip)
}

/// The vision tower folder: `--vision` (a folder or a repo id), else `MODEL/vision`, else
/// the config's `mm_vision_tower` (a folder, relative to the model's, or a repo id).
pub fn resolve_vision_dir(model: &Path, vision: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = vision {
        let dir = locate_clip(dir)?;
        if !dir.join("config.json").is_file() {
            bail!(
                "--vision {}: no config.json there (expected a CLIP checkpoint folder)",
                dir.display()
            );
        }
        return Ok(dir);
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
        if hub::RepoId::parse(named).is_some() {
            return locate_clip(Path::new(named)).with_context(|| {
                format!(
                    "no CLIP vision tower found: {} does not exist, and the config's \
                     mm_vision_tower {named} could not be had. Pass --vision with a CLIP \
                     checkpoint folder or repo id",
                    inside.display()
                )
            });
        }
    }
    bail!(
        "no CLIP vision tower found: {} does not exist and mm_vision_tower ({}) is not a local folder. \
         Pass --vision with a CLIP checkpoint folder or repo id (e.g. openai/clip-vit-large-patch14)",
        inside.display(),
        named.as_deref().unwrap_or("not set")
    )
}

/// The Hub repo id the vision tower is named by, if it is: `--vision` given as a repo id,
/// else (no `MODEL/vision`) the config's `mm_vision_tower` when it is one rather than a
/// local folder. A Hugging Face export names such a stock tower instead of copying it.
pub fn tower_repo_id(model: &Path, vision: Option<&Path>) -> Option<String> {
    let as_repo_id = |spec: &str, local: &Path| {
        (!local.exists() && hub::RepoId::parse(spec).is_some()).then(|| spec.to_string())
    };
    if let Some(spec) = vision {
        return as_repo_id(spec.to_str()?, spec);
    }
    if model.join("vision").join("config.json").is_file() {
        return None;
    }
    let text = std::fs::read_to_string(model.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    let named = config.get("mm_vision_tower")?.as_str()?;
    as_repo_id(named, &model.join(named))
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
    let mut progress = |read: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(read as u64);
    };
    let options = LoadOptions {
        dtype: precision.dtype(),
        image_patch_id: Some(tokenizer.special_id(IMAGE_PATCH)?),
        progress: Some(&mut progress),
    };
    let model = LclModel::from_pretrained(model_dir, vision_dir, device, options)?;
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
        .filter(|tensor| is_adapter(&tensor.name))
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

/// Whether a record path is a LoRA factor.
pub fn is_adapter(name: &str) -> bool {
    name.split('.').any(|part| part == "lora")
}
