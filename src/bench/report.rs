//! The benchmark report: the machine, one row per item (ours, PyTorch, ratio, throughput,
//! share of the machine's matmul rate, peak memory), as JSON and as a Markdown table.

use serde::{Deserialize, Serialize};

use crate::bench::items::{EPISODE_TOKENS, MATMUL_SIZE, Measurement};
use crate::model_folder::Precision;

/// A device's dense peak rate and memory bandwidth, what MFU and bandwidth use are read
/// against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    /// Dense peak in the run's precision, TFLOP/s.
    pub tflops: f64,
    /// Memory bandwidth, TB/s.
    pub bandwidth_tbps: Option<f64>,
}

/// The machine a report was measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name (`/proc/cpuinfo`).
    pub cpu: String,
    /// Threads both sides use (the available parallelism).
    pub threads: usize,
    /// Physical memory in bytes (`/proc/meminfo`; 0 when unknown).
    pub memory_bytes: u64,
    /// Our backend.
    pub backend: String,
    /// Precision of the real-shape items.
    #[serde(default)]
    pub precision: Precision,
    /// The device's peaks, when given.
    #[serde(default)]
    pub peaks: Option<Peaks>,
}

impl Machine {
    /// This machine, running `backend` at `precision`.
    pub fn this(backend: &str, precision: Precision, peaks: Option<Peaks>) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| std::env::consts::ARCH.to_string(), |s| s.trim().into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        Self {
            cpu,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            backend: backend.to_string(),
            precision,
            peaks,
        }
    }
}

/// One item's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Item name.
    pub item: String,
    /// What one run is.
    pub what: String,
    /// Our measurement.
    pub ours: Option<Measurement>,
    /// PyTorch's.
    pub torch: Option<Measurement>,
    /// Why something is missing.
    pub note: Option<String>,
}

/// Every row, and where they were measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// The items.
    pub rows: Vec<Row>,
}

/// FLOPs of one run of `item` (multiply-adds count two), where it is matmul-bound.
pub fn flops(item: &str) -> Option<f64> {
    let n = MATMUL_SIZE as f64;
    let t = EPISODE_TOKENS as f64;
    // ViT-L/14 at 224 px to the penultimate layer: 23 layers over 257 tokens, patch embedding.
    let (tokens, width, layers) = (257.0, 1024.0, 23.0);
    let clip = layers * (2.0 * tokens * 12.0 * width * width + 4.0 * tokens * tokens * width)
        + 2.0 * 256.0 * 588.0 * width;
    // One LLaMA-7B layer: projections and MLP per token, causal attention (half the square).
    let per_token = 2.0 * (4.0 * 4096.0 * 4096.0 + 3.0 * 4096.0 * 11008.0);
    let prefill = t * per_token + 2.0 * t * t * 4096.0;
    let decode = per_token + 4.0 * t * 4096.0;
    match item {
        "matmul" => Some(2.0 * n * n * n),
        "clip-b1" => Some(clip),
        "clip-b16" => Some(16.0 * clip),
        "llama-layer-prefill" => Some(prefill),
        "llama-7b-prefill" => Some(32.0 * prefill),
        "llama-layer-decode" => Some(decode),
        "llama-7b-decode" => Some(32.0 * decode),
        // Model FLOPs: forward and backward (three forwards) of the decoder, the frozen
        // tower's forward; the checkpointing recompute is not counted.
        "llama-7b-train-step" => Some(3.0 * 32.0 * prefill + 17.0 * clip),
        // LoRA: the backward computes input gradients but no base-weight gradient.
        "llama-7b-lora-step" => Some(2.0 * 32.0 * prefill + 17.0 * clip),
        _ => None,
    }
}

/// Bytes one decode step reads at `bytes_per_value`: the weights and the KV cache.
pub fn decode_bytes(item: &str, bytes_per_value: f64) -> Option<f64> {
    let layer_weights = 4.0 * 4096.0 * 4096.0 + 3.0 * 4096.0 * 11008.0;
    let cache = 2.0 * EPISODE_TOKENS as f64 * 4096.0;
    let layers = match item {
        "llama-layer-decode" => 1.0,
        "llama-7b-decode" => 32.0,
        _ => return None,
    };
    Some(layers * (layer_weights + cache) * bytes_per_value)
}

/// The unit of an item's throughput (work per second).
fn unit(item: &str) -> &'static str {
    match item {
        "matmul" => "GFLOP/s",
        "clip-b1" | "clip-b16" => "images/s",
        "llama-layer-prefill"
        | "llama-7b-prefill"
        | "llama-layer-decode"
        | "llama-7b-decode"
        | "llama-7b-train-step"
        | "llama-7b-lora-step" => "tokens/s",
        _ => "episodes/s",
    }
}

fn throughput(item: &str, m: &Measurement) -> f64 {
    let per_second = m.work / m.median_s;
    if item == "matmul" {
        per_second / 1e9
    } else {
        per_second
    }
}

impl Row {
    /// An empty row for `item`.
    pub fn new(item: &str, what: &str) -> Self {
        Self {
            item: item.into(),
            what: what.into(),
            ours: None,
            torch: None,
            note: None,
        }
    }

    /// Our median time over PyTorch's (below 1: we are faster).
    pub fn ratio(&self) -> Option<f64> {
        Some(self.ours.as_ref()?.median_s / self.torch.as_ref()?.median_s)
    }

    /// One line for the progress output.
    pub fn summary(&self) -> String {
        let time = |m: &Option<Measurement>| {
            m.as_ref()
                .map_or("-".to_string(), |m| format!("{:.4} s", m.median_s))
        };
        let mut line = format!("ours {}, PyTorch {}", time(&self.ours), time(&self.torch));
        if let Some(ratio) = self.ratio() {
            line.push_str(&format!(", ratio {ratio:.2}"));
        }
        line
    }
}

impl Report {
    /// The machine's matmul rate (FLOP/s) on each side, from the matmul row.
    fn matmul_rates(&self) -> (Option<f64>, Option<f64>) {
        let row = self.rows.iter().find(|r| r.item == "matmul");
        let rate = |m: Option<&Measurement>| m.map(|m| m.work / m.median_s);
        (
            rate(row.and_then(|r| r.ours.as_ref())),
            rate(row.and_then(|r| r.torch.as_ref())),
        )
    }

    /// The table: medians, ratio, throughput, share of the matmul rate, peak memory; with
    /// the device's peaks, MFU (or, for decoding, the share of the memory bandwidth).
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let peaks = m.peaks;
        let mut text = format!(
            "{} ({} threads, {:.0} GiB), backend {}, {:?}{}\n\n\
             | item | ours | PyTorch | ratio | ours | PyTorch | ours, of matmul | PyTorch, of matmul | peak MiB ours / PyTorch |{}\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|{}\n",
            m.cpu,
            m.threads,
            m.memory_bytes as f64 / (1u64 << 30) as f64,
            m.backend,
            m.precision,
            peaks.map_or(String::new(), |p| format!(
                "; device peak {} TFLOP/s{}",
                p.tflops,
                p.bandwidth_tbps
                    .map_or(String::new(), |b| format!(", {b} TB/s"))
            )),
            if peaks.is_some() {
                " MFU / of bandwidth |"
            } else {
                ""
            },
            if peaks.is_some() { "---:|" } else { "" },
        );
        let value_bytes = match m.precision {
            Precision::F32 => 4.0,
            Precision::Bf16 | Precision::F16 => 2.0,
        };
        let (ours_rate, torch_rate) = self.matmul_rates();
        for row in &self.rows {
            if let Some(note) = &row.note {
                text.push_str(&format!("| {} | {note} ||||||||\n", row.item));
                continue;
            }
            let time = |m: &Option<Measurement>| {
                m.as_ref()
                    .map_or("-".into(), |m| format_seconds(m.median_s))
            };
            let rate = |m: &Option<Measurement>| {
                m.as_ref().map_or("-".into(), |m| {
                    format!("{:.1} {}", throughput(&row.item, m), unit(&row.item))
                })
            };
            let share = |m: &Option<Measurement>, matmul: Option<f64>| match (
                m,
                matmul,
                flops(&row.item),
            ) {
                (Some(m), Some(matmul), Some(flops)) => {
                    format!("{:.0}%", 100.0 * flops / m.median_s / matmul)
                }
                _ => "-".into(),
            };
            // Device memory where the backend reports it (a GPU), else the process's.
            let memory = |m: &Option<Measurement>| {
                m.as_ref()
                    .and_then(|m| m.peak_device_mib.or(m.peak_rss_mib))
                    .map_or("-".into(), |mib| format!("{mib:.0}"))
            };
            let use_of_peak = match (peaks, &row.ours) {
                (Some(p), Some(ours)) => {
                    let of_bandwidth = decode_bytes(&row.item, value_bytes)
                        .zip(p.bandwidth_tbps)
                        .map(|(bytes, bw)| {
                            format!(
                                "{:.0}% of bandwidth",
                                100.0 * bytes / ours.median_s / (bw * 1e12)
                            )
                        });
                    let mfu = flops(&row.item)
                        .map(|f| format!("{:.0}%", 100.0 * f / ours.median_s / (p.tflops * 1e12)));
                    format!(" {} |", of_bandwidth.or(mfu).unwrap_or_else(|| "-".into()))
                }
                (Some(_), None) => " - |".into(),
                (None, _) => String::new(),
            };
            text.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |{use_of_peak}\n",
                row.item,
                time(&row.ours),
                time(&row.torch),
                row.ratio().map_or("-".into(), |r| format!("{r:.2}")),
                rate(&row.ours),
                rate(&row.torch),
                share(&row.ours, ours_rate),
                share(&row.torch, torch_rate),
                memory(&row.ours),
                memory(&row.torch),
            ));
        }
        text
    }
}

fn format_seconds(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(item: &str, median_s: f64, work: f64) -> Measurement {
        Measurement {
            item: item.into(),
            times_s: vec![median_s],
            median_s,
            peak_rss_mib: Some(100.0),
            peak_device_mib: None,
            work,
        }
    }

    #[test]
    fn the_table_gives_ratio_throughput_and_share_of_the_matmul_rate() {
        let matmul = flops("matmul").unwrap();
        let prefill = flops("llama-layer-prefill").unwrap();
        let mut rows = vec![
            Row::new("matmul", "m"),
            Row::new("llama-layer-prefill", "p"),
        ];
        rows[0].ours = Some(measurement("matmul", 1.0, matmul));
        rows[0].torch = Some(measurement("matmul", 0.5, matmul));
        // Prefill at half the matmul rate on our side, a quarter on PyTorch's.
        rows[1].ours = Some(measurement(
            "llama-layer-prefill",
            2.0 * prefill / matmul,
            4900.0,
        ));
        rows[1].torch = Some(measurement(
            "llama-layer-prefill",
            2.0 * prefill / matmul,
            4900.0,
        ));
        let mut report = Report {
            machine: Machine {
                cpu: "cpu".into(),
                threads: 2,
                memory_bytes: 1 << 30,
                backend: "flex".into(),
                precision: Precision::F32,
                peaks: None,
            },
            rows,
        };
        let table = report.markdown();
        assert!(
            table.contains("| matmul | 1.00 s | 500.0 ms | 2.00 |"),
            "{table}"
        );
        assert!(table.contains("| 50% | 25% | 100 / 100 |"), "{table}");
        assert_eq!(report.rows[1].ratio(), Some(1.0));

        // With the device's peak: the matmul ran at 2n^3 FLOPs a second over a peak of
        // 4 * 2n^3, i.e. 25% MFU.
        report.machine.peaks = Some(Peaks {
            tflops: 4.0 * matmul / 1e12,
            bandwidth_tbps: None,
        });
        let table = report.markdown();
        assert!(table.contains("| 100 / 100 | 25% |"), "{table}");
    }

    #[test]
    fn a_decode_step_reads_every_weight_and_the_cache() {
        let bytes = decode_bytes("llama-7b-decode", 2.0).unwrap();
        // 32 layers of 202 M weights and a 4,900-token cache of 2 x 4,096 values, in bf16.
        assert!((15.0e9..16.0e9).contains(&bytes), "{bytes}");
        assert!(decode_bytes("clip-b1", 2.0).is_none());
    }
}
