//! `lcl train-clip`: a CLIP model (both towers) trained from scratch with the contrastive
//! loss on an image folder whose class names are the captions: each step takes one picture of
//! `batch_size` distinct classes and their names. The result is a CLIP folder in Burn's
//! format (`config.json`, `model.bpk`, `tokenizer.json`) that `lcl neighbors --clip` and the
//! LCL model's `--vision` read.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::AdamWConfig;
use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use lcl_model::rng::Rng;
use lcl_model::{ClipConfig, ClipModel};

use crate::data::image_folder::{FolderClass, ImageFolder};
use crate::data::split::ClassSplit;
use crate::image::preprocess_file;
use crate::tokenizer::ClipTokenizer;
use crate::train::schedule::WarmupCosine;

/// Everything `lcl train-clip` needs.
#[derive(Debug, Clone)]
pub struct ClipTrainRequest {
    /// Sizes of both towers (a CLIP `config.json`).
    pub config: ClipConfig,
    /// Folder with the CLIP `tokenizer.json` to use (copied into `out`).
    pub tokenizer: PathBuf,
    /// Image folder (one folder per class) and its names.
    pub data: PathBuf,
    /// Names file (default: found beside the folder).
    pub names: Option<PathBuf>,
    /// Classes to leave out (held out for evaluation).
    pub split: Option<PathBuf>,
    /// Optimiser steps.
    pub steps: usize,
    /// Classes per step (the contrastive batch).
    pub batch_size: usize,
    /// Peak learning rate (5% warm-up, then cosine).
    pub learning_rate: f64,
    /// Softmax temperature of the similarities.
    pub temperature: f64,
    /// Seed of initialisation and batches.
    pub seed: u64,
    /// The CLIP folder to write.
    pub out: PathBuf,
}

/// What a run reports.
#[derive(Debug, Clone)]
pub struct ClipTrainSummary {
    /// Mean loss of the last 20 steps.
    pub final_loss: f64,
    /// Share of training classes whose last picture is closest to its own name among all
    /// class names (zero-shot naming accuracy).
    pub naming_accuracy: f64,
    /// Training classes.
    pub classes: usize,
    /// Seconds of training.
    pub seconds: f64,
}

/// Trains and writes the CLIP folder.
pub fn train_clip(request: &ClipTrainRequest, device: &Device) -> Result<ClipTrainSummary> {
    let folder = ImageFolder::scan(&request.data, request.names.as_deref())?;
    let classes = match &request.split {
        Some(path) => ClassSplit::from_file(path)?.apply(&folder.classes)?.0,
        None => folder.classes.clone(),
    };
    if classes.len() < request.batch_size || request.batch_size < 2 {
        bail!(
            "{} training classes for batches of {} (at least 2)",
            classes.len(),
            request.batch_size
        );
    }
    let text_len = request.config.text_config.max_position_embeddings;
    let tokenizer = ClipTokenizer::from_dir(&request.tokenizer, text_len)?;
    let names: Vec<Vec<u32>> = classes
        .iter()
        .map(|c| tokenizer.encode(&c.name))
        .collect::<Result<_>>()?;
    let size = request.config.vision_config.image_size as u32;

    device.seed(request.seed);
    let mut model = ClipModel::init(&request.config, 0.02, device, DType::F32).train();
    let mut optimizer = AdamWConfig::new()
        .with_weight_decay(0.0)
        .with_epsilon(1e-8)
        .init();
    let schedule = WarmupCosine::new(request.learning_rate, request.steps, 0.05);
    let mut rng = Rng::derive(request.seed, &[20]);
    let started = Instant::now();
    let bar = crate::progress::bar(
        request.steps as u64,
        "{msg} [{bar:40}] {pos}/{len} steps ETA {eta}",
    );
    let mut recent = Vec::new();
    for step in 0..request.steps {
        let mut order: Vec<usize> = (0..classes.len()).collect();
        rng.shuffle(&mut order);
        let picked = &order[..request.batch_size];
        let pixels = pictures(&folder.root, &classes, picked, &mut rng, size, device)?;
        let rows: Vec<Vec<u32>> = picked.iter().map(|&i| names[i].clone()).collect();
        let loss = contrastive_loss(&model, pixels, &rows, request.temperature, device);
        let value = loss.clone().into_scalar::<f64>();
        if !value.is_finite() {
            bail!("the contrastive loss is {value} at step {}", step + 1);
        }
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(
            burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate::from(
                schedule.at(step),
            ),
            model,
            grads,
        );
        recent.push(value);
        if recent.len() > 20 {
            recent.remove(0);
        }
        bar.set_message(format!("loss {value:.3}"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let model = model.valid();
    let naming_accuracy = naming_accuracy(&model, &folder.root, &classes, &names, size, device)?;
    write_folder(request, &model)?;
    Ok(ClipTrainSummary {
        final_loss: recent.iter().sum::<f64>() / recent.len().max(1) as f64,
        naming_accuracy,
        classes: classes.len(),
        seconds,
    })
}

/// One random picture of each class in `picked`, preprocessed: `[picked, 3, size, size]`.
fn pictures(
    root: &Path,
    classes: &[FolderClass],
    picked: &[usize],
    rng: &mut Rng,
    size: u32,
    device: &Device,
) -> Result<Tensor<4>> {
    let mut pixels = Vec::with_capacity(picked.len() * 3 * (size * size) as usize);
    for &i in picked {
        let images = &classes[i].images;
        pixels.extend(preprocess_file(
            &root.join(&images[rng.below(images.len())]),
            size,
        )?);
    }
    let s = size as usize;
    Ok(Tensor::from_data(
        TensorData::new(pixels, [picked.len(), 3, s, s]),
        device,
    ))
}

fn unit_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt();
    x / norm
}

/// CLIP's symmetric cross-entropy: picture `i` goes with name `i`.
fn contrastive_loss(
    model: &ClipModel,
    pixels: Tensor<4>,
    rows: &[Vec<u32>],
    temperature: f64,
    device: &Device,
) -> Tensor<1> {
    let images = unit_rows(model.image_features(pixels));
    let texts = unit_rows(model.text_features(rows, device));
    let logits = images.matmul(texts.transpose()).div_scalar(temperature);
    let n = rows.len();
    let targets = Tensor::<1, Int>::arange(0..n as i64, &logits.device()).reshape([n, 1]);
    let side = |logits: Tensor<2>| {
        log_softmax(logits, 1)
            .gather(1, targets.clone())
            .mean()
            .neg()
    };
    (side(logits.clone()) + side(logits.transpose())).div_scalar(2.0)
}

/// Zero-shot naming of each class's last picture among every class name.
fn naming_accuracy(
    model: &ClipModel,
    root: &Path,
    classes: &[FolderClass],
    names: &[Vec<u32>],
    size: u32,
    device: &Device,
) -> Result<f64> {
    let texts = unit_rows(model.text_features(names, device));
    let mut correct = 0;
    for (chunk_start, chunk) in classes.chunks(64).enumerate().map(|(i, c)| (i * 64, c)) {
        let mut pixels = Vec::new();
        for class in chunk {
            let last = class.images.last().context("a class without pictures")?;
            pixels.extend(preprocess_file(&root.join(last), size)?);
        }
        let s = size as usize;
        let images = unit_rows(model.image_features(Tensor::from_data(
            TensorData::new(pixels, [chunk.len(), 3, s, s]),
            device,
        )));
        let best: Vec<i64> = images
            .matmul(texts.clone().transpose())
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .map_err(|err| anyhow::anyhow!("{err:?}"))?;
        correct += best
            .iter()
            .enumerate()
            .filter(|(i, b)| **b as usize == chunk_start + i)
            .count();
    }
    Ok(correct as f64 / classes.len() as f64)
}

/// `config.json`, `model.bpk` and `tokenizer.json` in `request.out`.
fn write_folder(request: &ClipTrainRequest, model: &ClipModel) -> Result<()> {
    let out = &request.out;
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    std::fs::write(
        out.join("config.json"),
        serde_json::to_vec_pretty(&request.config)?,
    )
    .with_context(|| format!("{}: cannot write config.json", out.display()))?;
    model
        .save_burnpack(&out.join(lcl_model::checkpoint::BURNPACK))
        .map_err(|err| anyhow::anyhow!("{}: {err}", out.display()))?;
    std::fs::copy(
        request.tokenizer.join("tokenizer.json"),
        out.join("tokenizer.json"),
    )
    .with_context(|| {
        format!(
            "{}: cannot copy tokenizer.json",
            request.tokenizer.display()
        )
    })?;
    Ok(())
}
