//! `lcl bench`: this project against PyTorch + transformers on the same machine, in one run,
//! at the real model's shapes (CLIP ViT-L/14, one LLaMA-7B layer at 4,900 tokens) and on the
//! tiny default model (a training step, the evaluation loop), with a large matmul as the
//! machine's reference point. Every item runs in its own process (ours: `lcl bench --item`,
//! PyTorch: `scripts/bench-torch.sh`), so each reports its own peak memory.

pub mod eval_loop;
pub mod items;
pub mod report;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

pub use items::{Measurement, Timing};
pub use report::{Machine, Peaks, Report, Row};

use crate::model_folder::Precision;

/// Every item, in the order they run: (name, what one run is, with a PyTorch counterpart).
pub const ITEMS: [(&str, &str, bool); 14] = [
    ("matmul", "4096x4096 @ 4096x4096 f32", true),
    ("clip-b1", "CLIP ViT-L/14, 1 image, penultimate layer", true),
    ("clip-b16", "CLIP ViT-L/14, 16 images", true),
    (
        "llama-layer-prefill",
        "LLaMA-7B layer, 4,900-token prefill",
        true,
    ),
    (
        "llama-layer-decode",
        "LLaMA-7B layer, 1 token after 4,900",
        true,
    ),
    (
        "llama-7b-prefill",
        "LLaMA-7B, 32 layers, 4,900 tokens",
        true,
    ),
    (
        "llama-7b-decode",
        "LLaMA-7B, 32 layers, 1 token after 4,900",
        false,
    ),
    (
        "llama-7b-train-step",
        "LCL-7B training step, one 4,908-token episode, f32 master weights, checkpointing",
        false,
    ),
    (
        "llama-7b-lora-step",
        "LCL-7B LoRA step (rank 8, every linear layer), the same episode",
        false,
    ),
    (
        "tiny-train-step",
        "tiny model, 4 episodes x 17 images, fwd+bwd+AdamW",
        true,
    ),
    (
        "tiny-generate",
        "tiny model, 8 episodes of 17 images, 12 greedy tokens each",
        true,
    ),
    (
        "tiny-generate-reuse",
        "the same, the 16-image support set prefilled once",
        true,
    ),
    (
        "tiny-eval-reuse",
        "lcl eval: 40 ISEKAI-10 8-shot episodes, shipped model",
        false,
    ),
    (
        "tiny-eval-no-reuse",
        "the same with --no-prefix-reuse",
        false,
    ),
];

/// Host memory the whole 7B model needs on a CPU backend (f32 weights alone are 27 GB).
const LLAMA_7B_BYTES: u64 = 40 << 30;

/// The items that hold the whole 7B model.
const WHOLE_7B: [&str; 4] = [
    "llama-7b-prefill",
    "llama-7b-decode",
    "llama-7b-train-step",
    "llama-7b-lora-step",
];

/// Everything `lcl bench` needs.
#[derive(Debug, Clone)]
pub struct BenchRequest {
    /// Items to run (all of [`ITEMS`] by default).
    pub items: Vec<String>,
    /// Also run the PyTorch side.
    pub torch: bool,
    /// The PyTorch runner (`scripts/bench-torch.sh`).
    pub torch_script: PathBuf,
    /// PyTorch device (`cpu`, or `cuda` next to a GPU backend).
    pub torch_device: String,
    /// How long each item is timed.
    pub timing: Timing,
    /// The dtype of the real-shape items' weights and inputs.
    pub precision: Precision,
    /// The device's dense peak (TFLOP/s in `precision`) and memory bandwidth (TB/s), for
    /// MFU and bandwidth use.
    pub peaks: Option<Peaks>,
    /// The JSON report to write.
    pub out: PathBuf,
}

/// Runs every item of `request` (each in a child process) and returns the report.
pub fn run(request: &BenchRequest, backend: &str) -> Result<Report> {
    for item in &request.items {
        if !ITEMS.iter().any(|(name, ..)| name == item) {
            bail!(
                "unknown benchmark item {item:?}; the items: {}",
                ITEMS.map(|(name, ..)| name).join(", ")
            );
        }
    }
    let machine = Machine::this(backend, request.precision, request.peaks);
    let cpu = matches!(backend, "flex" | "ndarray");
    let mut rows = Vec::new();
    for (name, what, has_torch) in ITEMS {
        if !request.items.iter().any(|item| item == name) {
            continue;
        }
        eprintln!("bench: {name} ({what}) ...");
        let mut row = Row::new(name, what);
        if cpu && WHOLE_7B.contains(&name) && machine.memory_bytes < LLAMA_7B_BYTES {
            row.note = Some(format!(
                "skipped: needs about {} GiB, the machine has {} GiB",
                LLAMA_7B_BYTES >> 30,
                machine.memory_bytes >> 30
            ));
            rows.push(row);
            continue;
        }
        let mut failures = Vec::new();
        match run_ours(name, request.timing, request.precision) {
            Ok(m) => row.ours = Some(m),
            Err(err) => failures.push(format!("ours: {err:#}")),
        }
        if request.torch && has_torch {
            match run_torch(request, name, machine.threads) {
                Ok(m) => row.torch = Some(m),
                Err(err) => failures.push(format!("PyTorch: {err:#}")),
            }
        }
        if !failures.is_empty() {
            eprintln!("  failed: {}", failures.join("; "));
            row.note = Some(format!("failed: {}", failures.join("; ")));
        }
        eprintln!("  {}", row.summary());
        rows.push(row);
    }
    let report = Report { machine, rows };
    if let Some(dir) = request.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    std::fs::write(&request.out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("{}: cannot write", request.out.display()))?;
    Ok(report)
}

fn timing_args(timing: Timing) -> [String; 4] {
    [
        "--min-runs".into(),
        timing.min_runs.to_string(),
        "--min-seconds".into(),
        timing.min_seconds.to_string(),
    ]
}

fn run_ours(item: &str, timing: Timing, precision: Precision) -> Result<Measurement> {
    let exe = std::env::current_exe().context("cannot find this program")?;
    let mut command = Command::new(exe);
    command
        .args(["bench", "--item", item])
        .args(["--dtype", &format!("{precision:?}").to_lowercase()])
        .args(timing_args(timing));
    last_json_line(command, &format!("lcl bench --item {item}"))
}

fn run_torch(request: &BenchRequest, item: &str, threads: usize) -> Result<Measurement> {
    let mut command = Command::new("bash");
    command
        .arg(&request.torch_script)
        .args(["--item", item, "--threads", &threads.to_string()])
        .args(["--device", &request.torch_device])
        .args(timing_args(request.timing));
    last_json_line(
        command,
        &format!("{} --item {item}", request.torch_script.display()),
    )
}

/// Runs `command` and parses the last line of its standard output as a [`Measurement`].
fn last_json_line(mut command: Command, what: &str) -> Result<Measurement> {
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !output.status.success() {
        bail!("{what} failed ({})", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("{what} printed no result"))?;
    serde_json::from_str(line).with_context(|| format!("{what}: cannot read its result {line:?}"))
}

/// The default PyTorch runner, the project's `scripts/bench-torch.sh`.
pub fn default_torch_script() -> Result<PathBuf> {
    crate::assets::find("scripts/bench-torch.sh")
}
