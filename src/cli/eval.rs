//! `lcl eval`: a suite at several shot counts through a checkpoint, or with no model the
//! default evaluation of the shipped miniature.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use lcl::backend::{backend_name, device};
use lcl::eval::job::evaluate;
use lcl::eval::request::{AblationKind, EvalRequest};
use lcl::eval::run::ScoreMode;
use lcl::model_folder::{Precision, locate_clip, locate_model};

#[derive(Args)]
pub struct EvalArgs {
    /// Shikra/LCL checkpoint folder or Hugging Face repo id (`org/name[@revision]`). Without
    /// it (and without --suite): the default evaluation, the shipped miniature models
    /// (checkpoints/mini) on the generated world (drawn into --data, default runs/mini-world,
    /// when absent): ISEKAI-10, ISEKAI-pair, held-out species and the false-label ablation,
    /// vanilla vs LCL.
    #[arg(long, requires = "suite")]
    model: Option<PathBuf>,
    /// CLIP checkpoint folder or repo id (default: MODEL/vision, else the config's
    /// mm_vision_tower).
    #[arg(long)]
    vision: Option<PathBuf>,
    /// Fine-tuned weights to put over MODEL's (`lcl train`'s model.bpk, or a merged LoRA).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// `isekai-10`, `isekai-pair`, `imagenet-100` (looked up under --data as NAME.jsonl), or
    /// a suite file: ISEKAI JSON lines or an ImageNet-100 test file (lcl test-classes).
    #[arg(long, requires = "model")]
    suite: Option<String>,
    /// Folder holding the named suites.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Folder the suite's image paths are relative to (default: the suite file's folder).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Support images in all (the paper's shot counts), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,2,4,6,8,10,12,14,16")]
    shots: Vec<usize>,
    /// Run an ablation of the paper instead of the plain suite.
    #[arg(long, value_enum)]
    ablation: Option<AblationKind>,
    /// False-label ratios of --ablation false-ratio, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,0.25,0.5,0.75,1")]
    false_ratios: Vec<f64>,
    /// Support size of --ablation position (each position 1..N is corrupted in turn).
    #[arg(long, default_value_t = 16)]
    position_shots: usize,
    /// Output folder: predictions.jsonl (resumed from), results.json, results.md (default:
    /// runs/eval; runs/eval-default for the default evaluation).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Episodes per batch (left-padded).
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Most generated tokens per answer.
    #[arg(long, default_value_t = 20)]
    max_new_tokens: usize,
    /// Seed of support shuffling and ablations.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Precision of the weights.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
    /// Most image features kept on the device (each image used again is not re-encoded).
    #[arg(long, default_value_t = 1024)]
    cached_images: usize,
    /// Re-encode the support set for every query instead of computing it once per support
    /// set (slower; the answers are the same).
    #[arg(long)]
    no_prefix_reuse: bool,
    /// Scoring: `generate` (greedy answer, the original's rule), `likelihood` (the more
    /// likely of the two candidate answers) and/or `prototype` (a vision-only baseline: the
    /// support label whose mean vision feature is nearest the query's; no language model),
    /// comma-separated; each gives its own rows.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "generate")]
    score: Vec<ScoreMode>,
    /// Most episodes per shot column, spread evenly over the suite (default: all; 80 in
    /// the default evaluation).
    #[arg(long)]
    limit: Option<usize>,
    /// The default evaluation's models: a folder with `vanilla/` and `lcl/` (default: the
    /// shipped checkpoints/mini).
    #[arg(long, conflicts_with = "model")]
    checkpoints: Option<PathBuf>,
    /// Discard the predictions in --out when they were made with other inputs (another
    /// model, weights, dtype, suite, seed or answer length), instead of refusing.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let (Some(model), Some(suite)) = (args.model.clone(), args.suite.clone()) else {
        return default_eval(args);
    };
    let request = EvalRequest {
        model: locate_model(&model)?,
        vision: args.vision.as_deref().map(locate_clip).transpose()?,
        weights: args.weights,
        suite,
        data: args.data,
        images: args.images,
        shots: args.shots,
        ablation: args.ablation,
        false_ratios: args.false_ratios,
        position_shots: args.position_shots,
        out: args.out.unwrap_or_else(|| PathBuf::from("runs/eval")),
        batch_size: args.batch_size,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        precision: args.dtype,
        cached_images: args.cached_images,
        prefix_reuse: !args.no_prefix_reuse,
        scores: args.score,
        limit: args.limit,
        overwrite: args.overwrite,
    };
    eprintln!("backend: {}", backend_name());
    let results = evaluate(&request, &device()?)?;
    print!("{}", results.markdown());
    eprintln!("results in {}", request.out.display());
    Ok(())
}

/// `lcl eval` with no model: the shipped miniature, vanilla vs LCL.
fn default_eval(args: EvalArgs) -> Result<()> {
    use lcl::eval::default::{CHECKPOINTS, DefaultEvalRequest, evaluate_default, markdown};
    let checkpoints = match args.checkpoints {
        Some(checkpoints) => checkpoints,
        None => lcl::assets::find(CHECKPOINTS)?,
    };
    let mut request = DefaultEvalRequest::new(&checkpoints, Path::new("runs"));
    if let Some(data) = args.data {
        request.world = data;
    }
    if let Some(out) = args.out {
        request.out = out;
    }
    if let Some(limit) = args.limit {
        request.limit = limit;
    }
    request.batch_size = args.batch_size;
    request.precision = args.dtype;
    request.overwrite = args.overwrite;
    eprintln!(
        "backend: {}; the default evaluation: {} on {}",
        backend_name(),
        request.checkpoints.display(),
        request.world.display()
    );
    let started = std::time::Instant::now();
    let results = evaluate_default(&request, &device()?)?;
    print!("{}", markdown(&request, &results));
    eprintln!(
        "done in {:.0} s; results and plots in {}",
        started.elapsed().as_secs_f64(),
        request.out.display()
    );
    Ok(())
}
