//! What `lcl eval` is asked to do: the model, the suite, the columns and rows, the output.

use std::path::PathBuf;

use crate::eval::run::ScoreMode;
use crate::model_folder::Precision;

/// Which ablation of the paper to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AblationKind {
    /// Replace 0/25/50/75/100% of the support labels with invented ones.
    FalseRatio,
    /// Replace the label at one position (1..16) of a 16-shot support set.
    Position,
}

/// Everything `lcl eval` needs.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    /// Shikra/LCL checkpoint folder.
    pub model: PathBuf,
    /// CLIP checkpoint folder, if given.
    pub vision: Option<PathBuf>,
    /// Fine-tuned weights put over the checkpoint's (`lcl train`'s `model.bpk`).
    pub weights: Option<PathBuf>,
    /// Suite name or file.
    pub suite: String,
    /// Folder the named suites are in.
    pub data: Option<PathBuf>,
    /// Folder image paths are relative to (default: the suite file's folder).
    pub images: Option<PathBuf>,
    /// Support images in all, per column.
    pub shots: Vec<usize>,
    /// Ablation, if any.
    pub ablation: Option<AblationKind>,
    /// False-label ratios of the false-ratio ablation.
    pub false_ratios: Vec<f64>,
    /// Support size of the position ablation.
    pub position_shots: usize,
    /// Output folder.
    pub out: PathBuf,
    /// Episodes per batch.
    pub batch_size: usize,
    /// Most generated tokens per answer.
    pub max_new_tokens: usize,
    /// Seed of support shuffling and ablations.
    pub seed: u64,
    /// Weight precision.
    pub precision: Precision,
    /// Most image features kept on the device.
    pub cached_images: usize,
    /// Encode each support set once for all its queries.
    pub prefix_reuse: bool,
    /// Scoring modes; each gives its own rows (likelihood rows are suffixed ` likelihood`).
    pub scores: Vec<ScoreMode>,
    /// Most episodes per column, spread evenly over the suite (all of them when `None`).
    pub limit: Option<usize>,
    /// Discard the predictions `out` holds when they come from other inputs.
    pub overwrite: bool,
}
