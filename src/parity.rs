//! `lcl parity`: the transformers-parity fixtures (`tests/fixtures`, made by the original's
//! software stack) run on the device this binary computes on, each with its largest
//! difference and tolerance. The test suite asserts the same on flex, ndarray and wgpu; this
//! command is how a new machine (a GPU, a CUDA build) is checked, with nothing but the binary
//! and the fixtures.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::tensor::{DType, Device, Tensor, TensorData};
use burn::train::TrainStep;
use lcl_model::{GenerationConfig, LclModel, LoadOptions, TokenBatch};
use serde::Serialize;

use crate::data::batch::{EpisodeBatcher, EpisodeItem, Padding};
use crate::model_folder::{Precision, load_model};
use crate::npy::{self, NpyArray};
use crate::tokenizer::LclTokenizer;
use crate::train::LclTrainer;

/// Largest |difference| to an f32 reference (the tests' tolerance).
pub const F32_TOLERANCE: f32 = 1e-4;
/// Largest difference of half-precision logits, as a share of the logits' range.
pub const HALF_TOLERANCE: f32 = 0.05;
/// `<im_patch>` of the tiny vocabulary.
const IMAGE_PATCH_ID: u32 = 512;

/// One comparison with the reference.
#[derive(Debug, Clone, Serialize)]
pub struct ParityCheck {
    /// What was compared.
    pub name: String,
    /// Largest |difference| (0 for exact comparisons that held).
    pub max_diff: f32,
    /// The largest allowed.
    pub tolerance: f32,
    /// Whether it held.
    pub passed: bool,
}

impl ParityCheck {
    fn close(name: &str, actual: &[f32], expected: &[f32], tolerance: f32) -> Self {
        let max_diff = if actual.len() == expected.len() {
            actual
                .iter()
                .zip(expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max)
        } else {
            f32::INFINITY
        };
        Self {
            name: name.to_string(),
            max_diff,
            tolerance,
            passed: max_diff <= tolerance,
        }
    }

    fn exact(name: &str, equal: bool) -> Self {
        Self {
            name: name.to_string(),
            max_diff: if equal { 0.0 } else { f32::INFINITY },
            tolerance: 0.0,
            passed: equal,
        }
    }
}

/// The fixtures, read from one folder.
struct Fixtures<'a> {
    root: &'a Path,
    device: &'a Device,
}

impl Fixtures<'_> {
    fn reference(&self, name: &str) -> Result<NpyArray> {
        npy::read(&self.root.join(format!("ref/{name}.npy")))
    }

    fn json(&self, name: &str) -> Result<serde_json::Value> {
        let path = self.root.join(format!("ref/{name}.json"));
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))
    }

    fn tensor<const D: usize>(&self, name: &str) -> Result<Tensor<D>> {
        let array = self.reference(name)?;
        let shape: [usize; D] = array
            .shape
            .clone()
            .try_into()
            .map_err(|_| anyhow!("{name}: not {D}-dimensional"))?;
        Ok(Tensor::from_data(
            TensorData::new(array.data, shape),
            self.device,
        ))
    }

    fn model(&self, dtype: DType) -> Result<LclModel> {
        let options = LoadOptions {
            dtype,
            image_patch_id: Some(IMAGE_PATCH_ID),
            ..LoadOptions::default()
        };
        Ok(LclModel::from_pretrained(
            &self.root.join("tiny-lcl"),
            &self.root.join("tiny-clip"),
            self.device,
            options,
        )?)
    }
}

fn ids(value: &serde_json::Value) -> Result<Vec<u32>> {
    serde_json::from_value(value.clone()).context("a list of token ids")
}

fn values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|err| anyhow!("{err:?}"))
}

/// Runs every check of the fixtures under `root` on `device`.
pub fn run(root: &Path, device: &Device) -> Result<Vec<ParityCheck>> {
    let f = Fixtures { root, device };
    let model = f.model(DType::F32)?;
    let mut checks = Vec::new();

    let hidden = model
        .vision
        .hidden_states(f.tensor::<4>("clip_pixel_values")?);
    let hidden: Vec<f32> = hidden
        .into_iter()
        .map(values)
        .collect::<Result<Vec<_>>>()?
        .concat();
    checks.push(ParityCheck::close(
        "CLIP hidden states, every layer",
        &hidden,
        &f.reference("clip_hidden_states")?.data,
        F32_TOLERANCE,
    ));

    let text = ids(&f.json("llama_text")?["input_ids"])?;
    let batch = TokenBatch::left_padded(std::slice::from_ref(&text), 0);
    let expected_text = f.reference("llama_text_logits")?.data;
    checks.push(ParityCheck::close(
        "LLaMA logits (text)",
        &values(model.forward_logits(&batch, None)?)?,
        &expected_text,
        F32_TOLERANCE,
    ));

    for name in ["episode", "episode2"] {
        let meta = f.json(name)?;
        let input = ids(&meta["input_ids"])?;
        let features = model.encode_images(f.tensor::<4>(&format!("{name}_pixel_values"))?);
        let batch = TokenBatch::left_padded(std::slice::from_ref(&input), 0);
        checks.push(ParityCheck::close(
            &format!("LCL {name} logits"),
            &values(model.forward_logits(&batch, Some(features.clone()))?)?,
            &f.reference(&format!("{name}_logits"))?.data,
            F32_TOLERANCE,
        ));
        let greedy = ids(&meta["greedy_ids"])?;
        let config = GenerationConfig {
            max_new_tokens: greedy.len(),
            ..GenerationConfig::default()
        };
        let generated = model.generate(&[input], Some(features), &config)?;
        checks.push(ParityCheck::exact(
            &format!("LCL {name} greedy ids (KV cache)"),
            generated.tokens[0] == greedy,
        ));
    }

    let meta = f.json("episode_jpeg")?;
    let files: Vec<_> = meta["images"]
        .as_array()
        .context("episode_jpeg images")?
        .iter()
        .filter_map(|p| p.as_str().map(|p| root.join(p)))
        .collect();
    let pixels = crate::image::pixel_batch(&files, 56, device)?;
    let input = ids(&meta["input_ids"])?;
    let batch = TokenBatch::left_padded(std::slice::from_ref(&input), 0);
    checks.push(ParityCheck::close(
        "LCL episode of JPEG files decoded here: logits",
        &values(model.forward_logits(&batch, Some(model.encode_images(pixels)))?)?,
        &f.reference("episode_jpeg_logits")?.data,
        F32_TOLERANCE,
    ));

    checks.extend(training_step(&f)?);

    let spread = expected_text.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (dtype, precision) in [(DType::BF16, "bf16"), (DType::F16, "f16")] {
        if !device.supports_dtype(dtype) {
            continue;
        }
        let half = f.model(dtype)?;
        checks.push(ParityCheck::close(
            &format!("LLaMA logits (text), {precision} weights"),
            &values(half.forward_logits(&batch_of(&text), None)?)?,
            &expected_text,
            HALF_TOLERANCE * spread,
        ));
    }
    Ok(checks)
}

fn batch_of(ids: &[u32]) -> TokenBatch {
    TokenBatch::left_padded(&[ids.to_vec()], 0)
}

/// One training step of the fixture episode: the loss, and the projector's gradients.
fn training_step(f: &Fixtures) -> Result<Vec<ParityCheck>> {
    let meta = f.json("train_episode")?;
    let item = EpisodeItem {
        ids: ids(&meta["input_ids"])?,
        labels: serde_json::from_value(meta["labels"].clone()).context("labels")?,
        pixels: f.reference("episode_pixel_values")?.data,
        images: 3,
    };
    let tokenizer = LclTokenizer::from_dir(&f.root.join("tiny-lcl"))?;
    let model = load_model(
        &f.root.join("tiny-lcl"),
        &f.root.join("tiny-clip"),
        &tokenizer,
        f.device,
        Precision::F32,
    )?;
    let trainer = LclTrainer::new(model).train();
    let batcher = EpisodeBatcher {
        pad_id: tokenizer.pad_id(),
        padding: Padding::Right,
        image_size: 56,
    };
    let batch = batcher.batch(vec![item], &f.device.clone().autodiff());
    let (loss, _) = trainer.loss(&batch);
    let loss: f32 = loss.into_scalar();
    let expected = meta["loss"].as_f64().context("loss")? as f32;
    let mut checks = vec![ParityCheck::close(
        "training step: loss (relative)",
        &[loss / expected],
        &[1.0],
        F32_TOLERANCE,
    )];
    let grads = TrainStep::step(&trainer, batch).grads;
    let weight = grads
        .get::<2>(trainer.projector.weight.id)
        .context("projector gradient")?
        .transpose();
    let expected = f.reference("train_grad_projector_weight")?.data;
    let scale = expected
        .iter()
        .fold(0.0f32, |m, g| m.max(g.abs()))
        .max(1e-12);
    let actual: Vec<f32> = values(weight)?.iter().map(|g| g / scale).collect();
    let expected: Vec<f32> = expected.iter().map(|g| g / scale).collect();
    checks.push(ParityCheck::close(
        "training step: mm_projector gradient (relative)",
        &actual,
        &expected,
        F32_TOLERANCE,
    ));
    Ok(checks)
}

/// The checks as a Markdown table.
pub fn markdown(checks: &[ParityCheck], backend: &str) -> String {
    let mut out =
        format!("| check ({backend}) | max abs diff | tolerance | |\n|---|---:|---:|---|\n");
    for c in checks {
        out.push_str(&format!(
            "| {} | {:.1e} | {:.1e} | {} |\n",
            c.name,
            c.max_diff,
            c.tolerance,
            if c.passed { "ok" } else { "FAILED" }
        ));
    }
    out
}
