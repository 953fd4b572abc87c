//! `lcl init-model`: a model folder with fresh random LLaMA and projector weights over a
//! given vision tower, to train from scratch (the miniature's captioner starts here).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::{DType, Device};
use lcl_model::checkpoint::BURNPACK;
use lcl_model::{ClipVisionConfig, LclConfig, LclModel, LlamaConfig};

use crate::tokenizer::{IMAGE_PATCH, LclTokenizer};
use crate::train::checkpoint::{Keep, write_record};
use crate::train::trainer::LclTrainer;

/// Tokenizer files copied into the model folder when present.
pub(crate) const TOKENIZER_FILES: [&str; 5] = [
    "tokenizer.model",
    "tokenizer.json",
    "added_tokens.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
];

/// Everything `lcl init-model` needs.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// LLaMA sizes (a `config.json`; `mm_hidden_size` is set from the vision tower).
    pub llm: PathBuf,
    /// CLIP folder (copied to `out/vision`).
    pub vision: PathBuf,
    /// Folder holding the LLaMA tokenizer files (copied).
    pub tokenizer: PathBuf,
    /// Standard deviation of the fresh weights.
    pub std: f64,
    /// Seed of the fresh weights.
    pub seed: u64,
    /// The model folder to write.
    pub out: PathBuf,
}

/// Writes `out/{config.json, model.bpk, tokenizer files, vision/}`.
pub fn init_model(request: &InitRequest, device: &Device) -> Result<()> {
    let mut llm = LlamaConfig::from_file(&request.llm)?;
    let vision = ClipVisionConfig::from_file(&request.vision.join("config.json"))?;
    llm.mm_hidden_size = Some(vision.hidden_size);
    llm.mm_vision_tower = Some("vision".into());
    let tokenizer = LclTokenizer::from_dir(&request.tokenizer)?;
    let patch = tokenizer.special_id(IMAGE_PATCH)?;
    if patch as usize >= llm.vocab_size {
        bail!(
            "{}: vocab_size {} is too small for the tokenizer in {} (<im_patch> is id {patch})",
            request.llm.display(),
            llm.vocab_size,
            request.tokenizer.display()
        );
    }
    let out = &request.out;
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    for name in TOKENIZER_FILES {
        let source = request.tokenizer.join(name);
        if source.is_file() {
            copy(&source, &out.join(name))?;
        }
    }
    copy_folder(&request.vision, &out.join("vision"))?;
    std::fs::write(out.join("config.json"), serde_json::to_vec_pretty(&llm)?)
        .with_context(|| format!("{}: cannot write config.json", out.display()))?;
    device.seed(request.seed);
    let config = LclConfig { llm, vision };
    let model = LclModel::init(&config, patch, request.std, device, DType::F32);
    write_record(
        LclTrainer::new(model).into_record(),
        Keep::All,
        &out.join(BURNPACK),
    )?;
    Ok(())
}

pub(crate) fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(|_| ())
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

fn copy_folder(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("{}: cannot create", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("{}: cannot read", from.display()))?
    {
        let path = entry?.path();
        if path.is_file() {
            copy(
                &path,
                &to.join(path.file_name().expect("a file has a name")),
            )?;
        }
    }
    Ok(())
}

/// Makes `out` a model folder of trained `weights` (a full fine-tune's `model.bpk`) over
/// `base`: its config (pointing `mm_vision_tower` at `vision`) and tokenizer files, and the
/// weights (hard-linked when the file system allows, else copied).
pub fn write_model_folder(base: &Path, vision: &Path, weights: &Path, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let mut llm = LlamaConfig::from_file(&base.join("config.json"))?;
    let vision = std::path::absolute(vision)
        .with_context(|| format!("{}: cannot resolve", vision.display()))?;
    llm.mm_vision_tower = Some(vision.to_string_lossy().into_owned());
    std::fs::write(out.join("config.json"), serde_json::to_vec_pretty(&llm)?)
        .with_context(|| format!("{}: cannot write config.json", out.display()))?;
    for name in TOKENIZER_FILES {
        let source = base.join(name);
        if source.is_file() {
            copy(&source, &out.join(name))?;
        }
    }
    let target = out.join(BURNPACK);
    let _ = std::fs::remove_file(&target);
    if std::fs::hard_link(weights, &target).is_err() {
        copy(weights, &target)?;
    }
    Ok(())
}
