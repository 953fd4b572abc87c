//! The evaluation loop on the tiny default model (the shipped LCL checkpoint): ISEKAI-10
//! episodes at 8 shots through `lcl eval`'s own code, with and without support-set reuse.

use std::path::Path;

use burn::tensor::Device;

use crate::eval::default::{CHECKPOINTS, ensure_world};
use crate::eval::job::{EvalRequest, evaluate};
use crate::eval::run::ScoreMode;
use crate::infer::Precision;

/// Episodes per timed run.
pub const EPISODES: usize = 40;

/// Runs of `EPISODES` episodes (each into a fresh folder, so nothing is resumed); returns
/// the seconds of each.
pub fn run(reuse: bool, device: &Device, runs: usize) -> anyhow::Result<Vec<f64>> {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let world = Path::new("runs/mini-world");
    ensure_world(world)?;
    let out = std::env::temp_dir().join(format!("lcl-bench-eval-{}", std::process::id()));
    let request = EvalRequest {
        model: repository.join(CHECKPOINTS).join("lcl"),
        vision: None,
        weights: None,
        suite: "isekai-10".into(),
        data: Some(world.to_path_buf()),
        images: None,
        shots: vec![8],
        ablation: None,
        false_ratios: Vec::new(),
        position_shots: 16,
        out: out.clone(),
        batch_size: 8,
        max_new_tokens: 16,
        seed: 42,
        precision: Precision::F32,
        cached_images: 1024,
        prefix_reuse: reuse,
        scores: vec![ScoreMode::Generate],
        limit: Some(EPISODES),
    };
    let mut times = Vec::new();
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(&out);
        let started = std::time::Instant::now();
        evaluate(&request, device)?;
        device.sync().map_err(|err| anyhow::anyhow!("{err:?}"))?;
        times.push(started.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(times)
}
