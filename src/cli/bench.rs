//! `lcl bench`: this project against PyTorch + transformers on this machine, in one run.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lcl::backend::{backend_name, device};
use lcl::model_folder::Precision;

#[derive(Args)]
pub struct BenchArgs {
    /// Items to run, comma-separated (default: all): matmul, clip-b1, clip-b16,
    /// llama-layer-prefill, llama-layer-decode, llama-7b-prefill, llama-7b-decode,
    /// llama-7b-train-step, llama-7b-lora-step, tiny-train-step, tiny-generate,
    /// tiny-generate-reuse, tiny-eval-reuse, tiny-eval-no-reuse.
    #[arg(long, value_delimiter = ',')]
    items: Vec<String>,
    /// Measure one item in this process and print its JSON result (what the run spawns).
    #[arg(long, hide = true)]
    item: Option<String>,
    /// Skip the PyTorch side (scripts/bench-torch.sh installs PyPI torch 2.15 + transformers
    /// 5.24 into .bench-venv on first use, about 3 GB).
    #[arg(long)]
    no_torch: bool,
    /// PyTorch device: cpu (f32), or cuda (bf16) next to a GPU backend.
    #[arg(long, default_value = "cpu")]
    torch_device: String,
    /// Fewest timed runs per item (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    min_runs: usize,
    /// Fewest seconds of timed runs per item.
    #[arg(long, default_value_t = 2.0)]
    min_seconds: f64,
    /// Precision of the real-shape items (matmul, CLIP, LLaMA-7B): f32, or bf16 / f16 on a
    /// GPU (the 7B training steps compute in it over f32 master weights).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
    /// The device's dense peak in that precision (TFLOP/s), for an MFU column.
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// The device's memory bandwidth (TB/s), for the decode items' share of it.
    #[arg(long)]
    peak_bandwidth: Option<f64>,
    /// The JSON report.
    #[arg(long, default_value = "runs/bench.json")]
    out: PathBuf,
}

pub fn run(args: BenchArgs) -> Result<()> {
    use lcl::bench::{BenchRequest, ITEMS, Timing, default_torch_script, items::measure};
    let timing = Timing {
        min_runs: args.min_runs,
        min_seconds: args.min_seconds,
    };
    if let Some(item) = args.item {
        let measurement = measure(&item, &device()?, timing, args.dtype.dtype())?;
        println!("{}", serde_json::to_string(&measurement)?);
        return Ok(());
    }
    let request = BenchRequest {
        items: if args.items.is_empty() {
            ITEMS.iter().map(|(name, ..)| name.to_string()).collect()
        } else {
            args.items
        },
        torch: !args.no_torch,
        torch_script: default_torch_script()?,
        torch_device: args.torch_device,
        timing,
        precision: args.dtype,
        peaks: match (args.peak_tflops, args.peak_bandwidth) {
            (Some(tflops), bandwidth) if tflops > 0.0 => Some(lcl::bench::Peaks {
                tflops,
                bandwidth_tbps: bandwidth.filter(|b| *b > 0.0),
            }),
            _ => None,
        },
        out: args.out,
    };
    let report = lcl::bench::run(&request, backend_name())?;
    print!("{}", report.markdown());
    eprintln!("report in {}", request.out.display());
    Ok(())
}
