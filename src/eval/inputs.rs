//! The inputs an evaluation folder's predictions come from, recorded as `DIR/inputs.json`:
//! the model and CLIP folders and the weights put over them (by content), the weight
//! precision, the answer length, the seed, the suite file (by content) and its image folder,
//! and the project's version. A folder holding predictions of other inputs is refused,
//! naming what differs, unless `--overwrite` discards them. (Batch size, image cache and
//! prefix reuse change no answer; the scoring mode, the shots and the ablation are part of
//! each prediction's key, so one folder holds several.)

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::eval::request::EvalRequest;
use crate::eval::suite::Suite;
use crate::identity::{FileIdentity, differences, file_identity, folder_identity};
use crate::model_folder::resolve_vision_dir;

/// The file in an evaluation folder that records its inputs.
pub const INPUTS_FILE: &str = "inputs.json";

/// What an evaluation folder's results are made of, besides `inputs.json`.
const RESULT_FILES: [&str; 6] = [
    "predictions.jsonl",
    "results.json",
    "results.md",
    "accuracy.png",
    "false-ratio.png",
    "position.png",
];

/// Everything the predictions depend on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalInputs {
    /// The `lcl` version that wrote the predictions.
    pub lcl_version: String,
    /// The files of the model folder.
    pub model: Vec<FileIdentity>,
    /// The files of the CLIP folder.
    pub vision: Vec<FileIdentity>,
    /// The fine-tuned weights put over the model's (`--weights`).
    pub weights: Option<FileIdentity>,
    /// Weight precision.
    pub dtype: String,
    /// Most generated tokens per answer.
    pub max_new_tokens: usize,
    /// Seed of support shuffling and ablations.
    pub seed: u64,
    /// The suite file.
    pub suite: FileIdentity,
    /// The folder the suite's image paths are relative to.
    pub images: PathBuf,
}

/// Where the inputs were read from: recorded for the reader, not compared (the same files
/// moved elsewhere give the same answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputFolders {
    /// The model folder.
    pub model: PathBuf,
    /// The CLIP folder.
    pub vision: PathBuf,
    /// The `--weights` file.
    pub weights: Option<PathBuf>,
    /// The suite file.
    pub suite: PathBuf,
}

/// `inputs.json`: the inputs, and where they were read from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputsRecord {
    /// What is compared.
    pub inputs: EvalInputs,
    /// Where from.
    pub folders: InputFolders,
}

impl InputsRecord {
    /// The inputs of `request` on `suite` (hashing the model, CLIP and suite files).
    pub fn of(request: &EvalRequest, suite: &Suite) -> Result<Self> {
        let vision = resolve_vision_dir(&request.model, request.vision.as_deref())?;
        let inputs = EvalInputs {
            lcl_version: env!("CARGO_PKG_VERSION").to_string(),
            model: folder_identity(&request.model)?,
            vision: folder_identity(&vision)?,
            weights: request.weights.as_deref().map(file_identity).transpose()?,
            dtype: format!("{:?}", request.precision).to_lowercase(),
            max_new_tokens: request.max_new_tokens,
            seed: request.seed,
            suite: file_identity(&suite.file)?,
            images: absolute(&suite.image_root),
        };
        let folders = InputFolders {
            model: absolute(&request.model),
            vision: absolute(&vision),
            weights: request.weights.as_deref().map(absolute),
            suite: absolute(&suite.file),
        };
        Ok(Self { inputs, folders })
    }

    /// Makes `dir` the folder of these inputs: checks them against the predictions it holds
    /// (refusing a mismatch unless `overwrite`, which discards them) and records them.
    pub fn claim(&self, dir: &Path, overwrite: bool) -> Result<()> {
        let inputs_path = dir.join(INPUTS_FILE);
        let predictions = dir.join("predictions.jsonl");
        let has_predictions = std::fs::metadata(&predictions).is_ok_and(|m| m.len() > 0);
        if has_predictions && !overwrite {
            let mismatch = match std::fs::read_to_string(&inputs_path) {
                Err(_) => Some(format!(
                    "it has no {INPUTS_FILE} saying what they were made with (written by an \
                     older lcl)"
                )),
                Ok(text) => {
                    let recorded: InputsRecord =
                        serde_json::from_str(&text).with_context(|| {
                            format!("{}: not an inputs record", inputs_path.display())
                        })?;
                    let found = differences(
                        &serde_json::to_value(&recorded.inputs)?,
                        &serde_json::to_value(&self.inputs)?,
                        5,
                    );
                    (!found.is_empty())
                        .then(|| format!("they were made with other inputs ({})", found.join("; ")))
                }
            };
            if let Some(why) = mismatch {
                bail!(
                    "{} holds predictions of another evaluation: {why}. Choose another --out, \
                     or pass --overwrite to discard them",
                    dir.display()
                );
            }
        }
        if overwrite {
            for name in RESULT_FILES {
                let path = dir.join(name);
                if path.exists() {
                    std::fs::remove_file(&path)
                        .with_context(|| format!("{}: cannot remove", path.display()))?;
                }
            }
        }
        std::fs::write(&inputs_path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("{}: cannot write", inputs_path.display()))
    }
}

fn absolute(path: &Path) -> PathBuf {
    path.canonicalize()
        .unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}
