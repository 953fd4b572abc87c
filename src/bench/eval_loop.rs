//! The evaluation loop on the tiny default model (the shipped LCL checkpoint): ISEKAI-10
//! episodes at 8 shots through `lcl eval`'s own code, with and without support-set reuse.

use std::path::Path;

use burn::tensor::Device;

use crate::eval::default::{CHECKPOINTS, DefaultEvalRequest, ensure_world, sub_request};
use crate::eval::job::evaluate;
use crate::eval::request::EvalRequest;

/// Episodes per timed run.
pub const EPISODES: usize = 40;

/// Runs of `EPISODES` episodes (each into a fresh folder, so nothing is resumed); returns
/// the seconds of each.
pub fn run(reuse: bool, device: &Device, runs: usize) -> anyhow::Result<Vec<f64>> {
    let mut default =
        DefaultEvalRequest::new(&crate::assets::find(CHECKPOINTS)?, Path::new("runs"));
    default.limit = EPISODES;
    ensure_world(&default.world)?;
    let model = default.checkpoints.join("lcl");
    let out = std::env::temp_dir().join(format!("lcl-bench-eval-{}", std::process::id()));
    let request = EvalRequest {
        out: out.clone(),
        prefix_reuse: reuse,
        ..sub_request(&default, &model, "isekai-10", &[8], None)
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
