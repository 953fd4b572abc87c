//! The benchmark items on our side, at the shapes `scripts/bench_torch.py` uses: random
//! weights, one item per process (so each reports its own peak memory).

use std::time::Instant;

use anyhow::{Result, bail};
use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::optim::AdamWConfig;
use burn::tensor::{DType, Device, Distribution, Tensor};
use burn::train::TrainStep;
use lcl_model::checkpoint::WeightLoader;
use lcl_model::{ClipConfig, GenerationConfig, LlamaConfig};
use lcl_model::{ClipVisionConfig, ClipVisionTransformer, KvCache, LclConfig, LclModel, Llama};
use serde::Serialize;

use crate::data::batch::{EpisodeBatcher, EpisodeItem, Padding};
use crate::episode::IGNORE_INDEX;
use crate::eval::default::CHECKPOINTS;
use crate::model_folder::Precision;

/// Square side of the reference matmul.
pub const MATMUL_SIZE: usize = 4096;
/// Tokens of one 16-shot episode of the real model (17 images x 258 + text).
pub const EPISODE_TOKENS: usize = 4900;
/// Episodes per batch of the tiny training step.
pub const TINY_BATCH: usize = 4;
/// Images per tiny episode (16 support + query).
pub const TINY_IMAGES: usize = 17;
/// Text ids after each image block of a tiny episode.
pub const TINY_TEXT_PER_IMAGE: usize = 10;
/// Supervised answer ids at the end of a tiny episode; also the tokens generated per answer.
pub const TINY_ANSWER: usize = 12;
/// Queries per support set in the tiny generation items.
pub const TINY_QUERIES: usize = 8;

/// What one item measured.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Measurement {
    /// Item name.
    pub item: String,
    /// Seconds of every timed run (after one warm-up run).
    pub times_s: Vec<f64>,
    /// Their median.
    pub median_s: f64,
    /// Peak resident memory of the process (MiB; Linux only).
    pub peak_rss_mib: Option<f64>,
    /// Device memory its pool holds at the end (MiB; about the peak), where the backend
    /// reports it.
    pub peak_device_mib: Option<f64>,
    /// Work per run: FLOPs (matmul), images, tokens or episodes.
    pub work: f64,
}

/// How long each item is timed.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Fewest timed runs.
    pub min_runs: usize,
    /// Fewest seconds of timed runs.
    pub min_seconds: f64,
}

/// Runs `item` on `device` with weights and inputs in `dtype` (the real-shape items; the
/// tiny ones are f32) and measures it.
pub fn measure(item: &str, device: &Device, timing: Timing, dtype: DType) -> Result<Measurement> {
    if !device.supports_dtype(dtype) {
        bail!("this device cannot compute in {dtype:?}");
    }
    let (times, work) = match item {
        "matmul" => matmul(device, timing, dtype),
        "clip-b1" => clip(1, device, timing, dtype),
        "clip-b16" => clip(16, device, timing, dtype),
        "llama-layer-prefill" => llama_prefill(1, device, timing, dtype),
        "llama-7b-prefill" => llama_prefill(32, device, timing, dtype),
        "llama-layer-decode" => llama_decode(1, device, timing, dtype),
        "llama-7b-decode" => llama_decode(32, device, timing, dtype),
        "llama-7b-train-step" => lcl_7b_train_step(false, device, timing, dtype)?,
        "llama-7b-lora-step" => lcl_7b_train_step(true, device, timing, dtype)?,
        "tiny-train-step" => tiny_train_step(device, timing),
        "tiny-generate" => tiny_generate(false, device, timing)?,
        "tiny-generate-reuse" => tiny_generate(true, device, timing)?,
        "tiny-eval-reuse" | "tiny-eval-no-reuse" => {
            let reuse = item == "tiny-eval-reuse";
            let times = crate::bench::eval_loop::run(reuse, device, timing.min_runs)?;
            (times, crate::bench::eval_loop::EPISODES as f64)
        }
        other => bail!("unknown benchmark item {other:?}"),
    };
    Ok(Measurement {
        item: item.to_string(),
        median_s: median(&times),
        times_s: times,
        peak_rss_mib: peak_rss_mib(),
        peak_device_mib: device
            .memory_pool_usage()
            .map(|usage| usage.bytes_reserved as f64 / (1 << 20) as f64),
        work,
    })
}

/// Median of `times` (not empty).
pub fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// One warm-up run, then timed runs until both minimums are met (at most 50).
fn timed(device: &Device, timing: Timing, mut run: impl FnMut()) -> Vec<f64> {
    let sync = || device.sync().expect("the device runs");
    run();
    sync();
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < timing.min_runs
        || (started.elapsed().as_secs_f64() < timing.min_seconds && times.len() < 50)
    {
        let t0 = Instant::now();
        run();
        sync();
        times.push(t0.elapsed().as_secs_f64());
    }
    times
}

/// Reads one number of `output` back, so a backend that defers work has to run all of it.
fn consume<const D: usize>(output: Tensor<D>) {
    let sum: f32 = output.sum().into_scalar();
    std::hint::black_box(sum);
}

fn matmul(device: &Device, timing: Timing, dtype: DType) -> (Vec<f64>, f64) {
    let n = MATMUL_SIZE;
    let a = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), (device, dtype));
    let b = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), (device, dtype));
    let times = timed(device, timing, || consume(a.clone().matmul(b.clone())));
    (times, 2.0 * (n as f64).powi(3))
}

/// CLIP ViT-L/14 at 224 px (the LCL release's tower).
fn clip_vit_l14() -> ClipVisionConfig {
    serde_json::from_str(
        r#"{"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
            "num_attention_heads": 16, "image_size": 224, "patch_size": 14}"#,
    )
    .expect("a CLIP config")
}

/// LLaMA-7B with `layers` decoder layers and a vocabulary of `vocab`.
fn llama_7b_config(layers: usize, vocab: usize) -> LlamaConfig {
    serde_json::from_str(&format!(
        r#"{{"vocab_size": {vocab}, "hidden_size": 4096, "intermediate_size": 11008,
            "num_hidden_layers": {layers}, "num_attention_heads": 32}}"#
    ))
    .expect("a LLaMA config")
}

fn clip(batch: usize, device: &Device, timing: Timing, dtype: DType) -> (Vec<f64>, f64) {
    let config = clip_vit_l14();
    let tower = ClipVisionTransformer::load(&mut WeightLoader::init(0.02, device, dtype), &config)
        .expect("fresh weights");
    let side = config.image_size;
    let pixels = Tensor::<4>::random(
        [batch, 3, side, side],
        Distribution::Normal(0.0, 1.0),
        (device, dtype),
    );
    let times = timed(device, timing, || {
        consume(tower.hidden_state(pixels.clone(), -2))
    });
    (times, batch as f64)
}

/// LLaMA-7B widths with `layers` decoder layers and a small vocabulary (not timed).
fn llama_7b(layers: usize, device: &Device, dtype: DType) -> Llama {
    Llama::load(
        &mut WeightLoader::init(0.02, device, dtype),
        &llama_7b_config(layers, 256),
    )
    .expect("fresh weights")
}

fn episode_embeds(len: usize, device: &Device, dtype: DType) -> Tensor<3> {
    Tensor::<3>::random(
        [1, len, 4096],
        Distribution::Normal(0.0, 0.02),
        (device, dtype),
    )
}

fn llama_prefill(layers: usize, device: &Device, timing: Timing, dtype: DType) -> (Vec<f64>, f64) {
    let llm = llama_7b(layers, device, dtype);
    let embeds = episode_embeds(EPISODE_TOKENS, device, dtype);
    let valid = vec![vec![true; EPISODE_TOKENS]];
    let times = timed(device, timing, || {
        let mut cache = KvCache::new(llm.num_layers());
        consume(llm.forward_hidden(embeds.clone(), &valid, &mut cache));
    });
    (times, EPISODE_TOKENS as f64)
}

fn llama_decode(layers: usize, device: &Device, timing: Timing, dtype: DType) -> (Vec<f64>, f64) {
    let llm = llama_7b(layers, device, dtype);
    let mut cache = KvCache::new(layers);
    llm.forward_hidden(
        episode_embeds(EPISODE_TOKENS, device, dtype),
        &[vec![true; EPISODE_TOKENS]],
        &mut cache,
    );
    // Successive steps on one cache, as generation runs them: each timed step appends one
    // token to a cache of about 4,900 (the warm-up step makes the cache's headroom).
    let step = episode_embeds(1, device, dtype);
    let times = timed(device, timing, || {
        consume(llm.forward_hidden(step.clone(), &[vec![true]], &mut cache));
    });
    (times, 1.0)
}

/// The tiny model's sizes: `configs/mini/{llama,clip}.json`.
fn tiny_config() -> LclConfig {
    let root = crate::assets::find("configs/mini").expect("the project's configs/mini");
    let read = |name: &str| std::fs::read_to_string(root.join(name)).expect("configs/mini");
    let clip: ClipConfig = serde_json::from_str(&read("clip.json")).expect("clip.json");
    let mut llm: LlamaConfig = serde_json::from_str(&read("llama.json")).expect("llama.json");
    llm.mm_hidden_size = Some(clip.vision_config.hidden_size);
    LclConfig {
        llm,
        vision: clip.vision_config,
    }
}

/// A synthetic training batch of `rows` episodes: per row 17 image blocks each followed by
/// `text_per_image` text ids, then a 12-id supervised answer (as `tiny_batch` of the Python
/// side).
fn synthetic_items(
    rows: usize,
    patches: usize,
    image_size: usize,
    text_per_image: usize,
    image_patch_id: u32,
) -> Vec<EpisodeItem> {
    let (patch, start, end) = (image_patch_id, image_patch_id + 1, image_patch_id + 2);
    let text = |seed: usize| 3 + (seed % (start as usize - 3)) as u32;
    (0..rows)
        .map(|r| {
            let mut ids = Vec::new();
            for i in 0..TINY_IMAGES {
                ids.push(start);
                ids.extend(std::iter::repeat_n(patch, patches));
                ids.push(end);
                ids.extend((0..text_per_image).map(|k| text(r * 31 + i * 7 + k)));
            }
            ids.extend((0..TINY_ANSWER).map(|k| text(r * 13 + k * 5)));
            let mut labels = vec![IGNORE_INDEX; ids.len() - TINY_ANSWER];
            labels.extend(
                ids[ids.len() - TINY_ANSWER..]
                    .iter()
                    .map(|&id| i64::from(id)),
            );
            EpisodeItem {
                ids,
                labels,
                pixels: vec![0.1; TINY_IMAGES * 3 * image_size * image_size],
                images: TINY_IMAGES,
            }
        })
        .collect()
}

fn tiny_train_step(device: &Device, timing: Timing) -> (Vec<f64>, f64) {
    let config = tiny_config();
    let image_patch_id = 512;
    let model = LclModel::init(&config, image_patch_id, 0.02, device, DType::F32);
    let mut trainer = crate::train::LclTrainer::new(model).train();
    let batcher = EpisodeBatcher {
        pad_id: 0,
        padding: Padding::Right,
        image_size: config.vision.image_size,
    };
    let items = synthetic_items(
        TINY_BATCH,
        config.vision.num_patches(),
        config.vision.image_size,
        TINY_TEXT_PER_IMAGE,
        image_patch_id,
    );
    let batch = batcher.batch(items, &device.clone().autodiff());
    let mut optimizer = AdamWConfig::new().init();
    let times = timed(device, timing, || {
        let grads = TrainStep::step(&trainer, batch.clone()).grads;
        trainer = optimizer.step(1e-4, trainer.clone(), grads);
    });
    (times, TINY_BATCH as f64)
}

/// Text ids after each image block of a 16-shot episode of the real model: 17 x (258 + 30)
/// + the 12-id answer = 4,908 tokens.
const REAL_TEXT_PER_IMAGE: usize = 30;

/// One training step of the whole LCL-7B model as `lcl train` runs it (CLIP ViT-L/14
/// frozen, projector, 32-layer LLaMA with the 32,003-token vocabulary; random weights) on one
/// 16-shot episode of 4,908 tokens, with gradient checkpointing: full fine-tuning with f32
/// master weights computing in `dtype` (mixed precision for bf16), or `lora` (rank 8 on every
/// linear layer, the frozen base in `dtype`).
fn lcl_7b_train_step(
    lora: bool,
    device: &Device,
    timing: Timing,
    dtype: DType,
) -> Result<(Vec<f64>, f64)> {
    let config = LclConfig {
        llm: LlamaConfig {
            mm_hidden_size: Some(1024),
            ..llama_7b_config(32, 32003)
        },
        vision: clip_vit_l14(),
    };
    let image_patch_id = 32000;
    let model = LclModel::init(&config, image_patch_id, 0.02, device, DType::F32);
    let mut trainer = crate::train::LclTrainer::new(model).computing_in(dtype);
    if lora {
        let settings = crate::config::LoraConfig {
            enabled: true,
            ..crate::config::LoraConfig::default()
        };
        trainer = crate::train::lora::apply(trainer, &settings)?;
    }
    let mut trainer = trainer.train().with_gradient_checkpointing();
    let train_device = device.clone().autodiff().gradient_checkpointing();
    let batcher = EpisodeBatcher {
        pad_id: 0,
        padding: Padding::Right,
        image_size: config.vision.image_size,
    };
    let items = synthetic_items(
        1,
        config.vision.num_patches(),
        config.vision.image_size,
        REAL_TEXT_PER_IMAGE,
        image_patch_id,
    );
    let tokens = items[0].ids.len();
    let batch = batcher.batch(items, &train_device);
    let mut optimizer = AdamWConfig::new().init();
    let times = timed(device, timing, || {
        let grads = TrainStep::step(&trainer, batch.clone()).grads;
        trainer = optimizer.step(2e-5, trainer.clone(), grads);
    });
    Ok((times, tokens as f64))
}

/// The ids of a synthetic tiny episode's support set: 16 image blocks, each followed by 10
/// text ids (`tiny_support` of the Python side).
fn tiny_support(patches: usize, image_patch_id: u32) -> Vec<u32> {
    let (patch, start, end) = (image_patch_id, image_patch_id + 1, image_patch_id + 2);
    let mut ids = Vec::new();
    for i in 0..TINY_IMAGES - 1 {
        ids.push(start);
        ids.extend(std::iter::repeat_n(patch, patches));
        ids.push(end);
        ids.extend((0..TINY_TEXT_PER_IMAGE).map(|k| 3 + ((i * 7 + k) % 500) as u32));
    }
    ids
}

/// The ids of query `q`: its image block and 10 text ids.
fn tiny_query(q: usize, patches: usize, image_patch_id: u32) -> Vec<u32> {
    let mut ids = vec![image_patch_id + 1];
    ids.extend(std::iter::repeat_n(image_patch_id, patches));
    ids.push(image_patch_id + 2);
    ids.extend((0..TINY_TEXT_PER_IMAGE).map(|k| 3 + ((q * 11 + k) % 500) as u32));
    ids
}

/// Greedy answers of [`TINY_QUERIES`] queries after one 16-image support set, on the shipped
/// tiny LCL model (random weights could answer with an image token); every answer is
/// [`TINY_ANSWER`] tokens (no end token can stop it). `reuse`: the support set is encoded and
/// prefilled once for all queries, as `lcl eval` does; otherwise every query runs its whole
/// episode.
fn tiny_generate(reuse: bool, device: &Device, timing: Timing) -> Result<(Vec<f64>, f64)> {
    let dir = crate::assets::find(CHECKPOINTS)?.join("lcl");
    let tokenizer = crate::tokenizer::LclTokenizer::from_dir(&dir)?;
    let vision = crate::model_folder::resolve_vision_dir(&dir, None)?;
    let model = crate::model_folder::load_model(&dir, &vision, &tokenizer, device, Precision::F32)?;
    let image_patch_id = tokenizer.special_id(crate::tokenizer::IMAGE_PATCH)?;
    let config = tiny_config();
    let patches = config.vision.num_patches();
    let side = config.vision.image_size;
    let pixels =
        |n: usize| Tensor::<4>::random([n, 3, side, side], Distribution::Normal(0.0, 1.0), device);
    let support_pixels = pixels(TINY_IMAGES - 1);
    let query_pixels = pixels(TINY_QUERIES);
    let support = tiny_support(patches, image_patch_id);
    let queries: Vec<Vec<u32>> = (0..TINY_QUERIES)
        .map(|q| tiny_query(q, patches, image_patch_id))
        .collect();
    let generation = GenerationConfig {
        max_new_tokens: TINY_ANSWER,
        eos_token_id: u32::MAX,
        pad_token_id: 0,
        ..GenerationConfig::default()
    };
    let times = timed(device, timing, || {
        let answers = if reuse {
            let features = model.encode_images(support_pixels.clone());
            let prefix = model.prefill(&support, Some(features)).expect("fits");
            let features = model.encode_images(query_pixels.clone());
            model.generate_after(&prefix, &queries, Some(features), &generation)
        } else {
            // Every episode's images in prompt order: its 16 support images, then its query.
            let rows: Vec<Tensor<4>> = (0..TINY_QUERIES)
                .flat_map(|q| [support_pixels.clone(), query_pixels.clone().narrow(0, q, 1)])
                .collect();
            let features = model.encode_images(Tensor::cat(rows, 0));
            let prompts: Vec<Vec<u32>> = queries
                .iter()
                .map(|q| [support.as_slice(), q].concat())
                .collect();
            model.generate(&prompts, Some(features), &generation)
        };
        let answers = answers.expect("fits");
        assert!(answers.tokens.iter().all(|t| t.len() == TINY_ANSWER));
    });
    Ok((times, TINY_QUERIES as f64))
}

/// The process's peak resident memory (`VmHWM` of /proc/self/status), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
