//! The LCL / Shikra multimodal model: CLIP vision tower -> linear projector -> LLaMA, with
//! the projected patch features replacing the embeddings of the `<im_patch>` tokens.

use std::path::Path;

use burn::module::Module;
use burn::nn::Linear;
use burn::store::{ModuleSnapshot, RecordError};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

use crate::autocast::{cast_to, linear};
use crate::batch::TokenBatch;
use crate::cache::KvCache;
use crate::checkpoint::naming::{self, llm_ignorable, vision_ignorable, vision_prefix};
use crate::checkpoint::{
    BURNPACK, CheckpointTensor, ExportError, LoadError, WeightFiles, WeightLoader, export,
};
use crate::clip::ClipVisionTransformer;
use crate::clip_model::ClipModel;
use crate::config::{ClipVisionConfig, LlamaConfig};
use crate::llama::Llama;

/// The vision layer LCL takes features from (HF `hidden_states[-2]`).
pub const LCL_VISION_LAYER: isize = -2;

/// Inputs that do not fit the model (e.g. image count vs `<im_patch>` tokens).
#[derive(Debug, Clone, PartialEq)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// The multimodal model.
#[derive(Module, Debug)]
pub struct LclModel {
    /// Frozen CLIP vision transformer.
    pub vision: ClipVisionTransformer,
    /// `model.mm_projector`: vision width -> LLM width.
    pub projector: Linear,
    /// LLaMA decoder.
    pub llm: Llama,
    /// Id of `<im_patch>`, whose embeddings are replaced by image features.
    pub image_patch_id: u32,
    /// Which entry of the vision tower's hidden states feeds the projector.
    pub vision_layer: isize,
}

/// Sizes of the whole model.
#[derive(Debug, Clone, PartialEq)]
pub struct LclConfig {
    /// The decoder (and projector output) sizes.
    pub llm: LlamaConfig,
    /// The vision tower sizes.
    pub vision: ClipVisionConfig,
}

impl LclConfig {
    /// Width of the projector input.
    pub fn projector_input(&self) -> usize {
        self.llm.mm_hidden_size.unwrap_or(self.vision.hidden_size)
    }
}

/// How [`LclModel::from_pretrained`] loads a model.
pub struct LoadOptions<'a> {
    /// The dtype the weights are held in (f32 by default).
    pub dtype: DType,
    /// Id of `<im_patch>`; by default the one the model folder's `added_tokens.json` names.
    pub image_patch_id: Option<u32>,
    /// Called with (bytes read, bytes in all) after each tensor read.
    pub progress: Option<&'a mut dyn FnMut(usize, usize)>,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        Self {
            dtype: DType::F32,
            image_patch_id: None,
            progress: None,
        }
    }
}

impl LclModel {
    /// Builds the model through `llm_loader` for the projector and LLaMA and `vision_loader`
    /// for the tower: the one constructor every way of loading goes through.
    pub fn load(
        llm_loader: &mut WeightLoader,
        vision_loader: &mut WeightLoader,
        config: &LclConfig,
        image_patch_id: u32,
    ) -> Result<Self, LoadError> {
        Ok(Self {
            vision: ClipVisionTransformer::load(vision_loader, &config.vision)?,
            projector: llm_loader.linear(
                "model.mm_projector",
                config.projector_input(),
                config.llm.hidden_size,
                true,
            )?,
            llm: Llama::load(llm_loader, &config.llm)?,
            image_patch_id,
            vision_layer: LCL_VISION_LAYER,
        })
    }

    /// A model with fresh random weights (normal, std `std`), for training from scratch.
    pub fn init(
        config: &LclConfig,
        image_patch_id: u32,
        std: f64,
        device: &Device,
        dtype: DType,
    ) -> Self {
        let mut loader = WeightLoader::init(std, device, dtype);
        let mut vision_loader = WeightLoader::init(std, device, dtype);
        Self::load(&mut loader, &mut vision_loader, config, image_patch_id)
            .expect("fresh initialisation reads no file")
    }

    /// Loads a Shikra/LCL checkpoint folder (`model_dir`: Hugging Face weights, or Burn's
    /// `model.bpk` as fine-tuning writes it) and a CLIP folder (`vision_dir`, whose weights
    /// may also sit under `model.vision_tower.vision_tower.`). Every tensor is checked against
    /// the configs before any data is read.
    pub fn from_pretrained(
        model_dir: &Path,
        vision_dir: &Path,
        device: &Device,
        options: LoadOptions,
    ) -> Result<Self, LoadError> {
        let LoadOptions {
            dtype,
            image_patch_id,
            progress,
        } = options;
        if !device.supports_dtype(dtype) {
            return Err(LoadError::UnsupportedDType {
                dtype: format!("{dtype:?}"),
            });
        }
        let image_patch_id = image_patch_id
            .or_else(|| naming::image_patch_id(model_dir))
            .ok_or_else(|| LoadError::Config {
                path: model_dir.join("added_tokens.json"),
                message: "no <im_patch> id there: pass LoadOptions::image_patch_id".into(),
            })?;
        let config = LclConfig {
            llm: LlamaConfig::from_file(&model_dir.join("config.json"))?,
            vision: ClipVisionConfig::from_file(&vision_dir.join("config.json"))?,
        };
        if model_dir.join(BURNPACK).is_file() || vision_dir.join(BURNPACK).is_file() {
            return Self::from_burnpack_folders(
                &config,
                model_dir,
                vision_dir,
                image_patch_id,
                device,
                dtype,
            );
        }
        let llm_files = WeightFiles::open(model_dir)?;
        let vision_files = WeightFiles::open(vision_dir)?;
        let vision_prefix = vision_prefix(&vision_files);

        let mut llm_check = WeightLoader::check(&llm_files, "", device);
        let mut vision_check = WeightLoader::check(&vision_files, vision_prefix, device);
        Self::load(&mut llm_check, &mut vision_check, &config, image_patch_id)?;

        let total = llm_check.planned_bytes() + vision_check.planned_bytes();
        llm_check.finish(llm_ignorable)?;
        vision_check.finish(|name| vision_ignorable(name, vision_prefix))?;

        let mut quiet = |_: usize, _: usize| {};
        let progress = std::cell::RefCell::new(progress.unwrap_or(&mut quiet));
        let read = std::cell::Cell::new(0);
        let report = |_: &str, bytes: usize| {
            read.set(read.get() + bytes);
            (progress.borrow_mut())(read.get(), total);
        };
        let (mut llm_report, mut vision_report) = (report, report);
        let mut llm_loader =
            WeightLoader::load(&llm_files, "", device, dtype).with_progress(&mut llm_report);
        let mut vision_loader = WeightLoader::load(&vision_files, vision_prefix, device, dtype)
            .with_progress(&mut vision_report);
        Self::load(&mut llm_loader, &mut vision_loader, &config, image_patch_id)
    }

    /// Loads folders of which at least one is in Burn's format: `model_dir/model.bpk` holds
    /// the projector and LLaMA (what `lcl train` writes), `vision_dir/model.bpk` a whole CLIP
    /// model; the other folder may hold Hugging Face weights.
    fn from_burnpack_folders(
        config: &LclConfig,
        model_dir: &Path,
        vision_dir: &Path,
        image_patch_id: u32,
        device: &Device,
        dtype: DType,
    ) -> Result<Self, LoadError> {
        let vision = if vision_dir.join(BURNPACK).is_file() {
            ClipModel::from_pretrained(vision_dir, device, dtype)?.into_vision()
        } else {
            let files = WeightFiles::open(vision_dir)?;
            let prefix = vision_prefix(&files);
            let mut check = WeightLoader::check(&files, prefix, device);
            ClipVisionTransformer::load(&mut check, &config.vision)?;
            check.finish(|name| vision_ignorable(name, prefix))?;
            let mut loader = WeightLoader::load(&files, prefix, device, dtype);
            ClipVisionTransformer::load(&mut loader, &config.vision)?
        };
        if model_dir.join(BURNPACK).is_file() {
            // Fresh (lazy) projector and LLaMA, every one of their tensors then read from the
            // file; the tower is the one just loaded.
            let mut fresh = WeightLoader::init(0.02, device, dtype);
            let mut unused_vision = WeightLoader::init(0.02, device, dtype);
            let mut model = Self::load(&mut fresh, &mut unused_vision, config, image_patch_id)?;
            model.vision = vision;
            return load_language_burnpack(model, &model_dir.join(BURNPACK), dtype);
        }
        let files = WeightFiles::open(model_dir)?;
        let mut check = WeightLoader::check(&files, "", device);
        let mut unused_vision = WeightLoader::init(0.02, device, dtype);
        Self::load(&mut check, &mut unused_vision, config, image_patch_id)?;
        check.finish(llm_ignorable)?;
        let mut loader = WeightLoader::load(&files, "", device, dtype);
        let mut model = Self::load(&mut loader, &mut unused_vision, config, image_patch_id)?;
        model.vision = vision;
        Ok(model)
    }

    /// The projector's and LLaMA's tensors as a Shikra/LCL checkpoint stores them
    /// (`model.mm_projector.*`, `model.*`, `lm_head.weight`; `Linear` weights `[out, in]`):
    /// what its `model.safetensors` holds. The vision tower is the CLIP folder's.
    pub fn language_checkpoint_tensors(
        &self,
        config: &LclConfig,
    ) -> Result<Vec<CheckpointTensor>, ExportError> {
        let device = self.device();
        let (mut trace, mut vision_trace) =
            (WeightLoader::trace(&device), WeightLoader::trace(&device));
        let twin = Self::load(&mut trace, &mut vision_trace, config, self.image_patch_id)
            .expect("tracing reads no file");
        export::checkpoint_tensors(self, &twin, &trace.into_trace(), &["vision"])
    }

    /// Saves every weight (tower, projector, LLaMA) in Burn's own format (a `.bpk`
    /// burnpack); `Module::try_load_file` on a model of the same config reads it back.
    pub fn save_burnpack(&self, path: &Path) -> Result<(), RecordError> {
        self.clone().save_file(path)
    }

    /// Projected features of images `[n, channels, size, size]`: `[n, patches, llm width]`.
    pub fn encode_images(&self, pixels: Tensor<4>) -> Tensor<3> {
        project_images(&self.vision, &self.projector, self.vision_layer, pixels)
    }

    /// Input embeddings of `batch`, with the rows of `image_features` (`[images, patches,
    /// width]`, in order of appearance, row by row) put at the `<im_patch>` positions.
    pub fn embed(
        &self,
        batch: &TokenBatch,
        image_features: Option<Tensor<3>>,
    ) -> Result<Tensor<3>, InputError> {
        embed_with_images(&self.llm, batch, image_features, self.image_patch_id)
    }

    /// Float dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.projector.weight.val().dtype()
    }

    /// The device holding the weights.
    pub fn device(&self) -> Device {
        self.projector.weight.val().device()
    }

    /// A fresh KV cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.llm.num_layers())
    }

    /// Final hidden states `[batch, len, width]` of `batch` after what `cache` holds.
    pub fn forward_hidden(
        &self,
        batch: &TokenBatch,
        image_features: Option<Tensor<3>>,
        cache: &mut KvCache,
    ) -> Result<Tensor<3>, InputError> {
        let embeds = self.embed(batch, image_features)?;
        Ok(self.llm.forward_hidden(embeds, &batch.valid, cache))
    }

    /// Logits `[batch, len, vocab]` of every position of `batch` (no cache kept).
    pub fn forward_logits(
        &self,
        batch: &TokenBatch,
        image_features: Option<Tensor<3>>,
    ) -> Result<Tensor<3>, InputError> {
        let mut cache = self.new_cache();
        let hidden = self.forward_hidden(batch, image_features, &mut cache)?;
        Ok(self.llm.logits(hidden))
    }
}

/// Patch features of `pixels` taken from `vision`'s hidden state `layer` (class token
/// dropped; the tower computes in its own dtype) and projected by `projector` in the
/// projector's dtype: `[n, patches, llm width]`.
pub fn project_images(
    vision: &ClipVisionTransformer,
    projector: &Linear,
    layer: isize,
    pixels: Tensor<4>,
) -> Tensor<3> {
    let states = vision.hidden_state(cast_to(pixels, vision.dtype()), layer);
    let [n, tokens, width] = states.dims();
    let patches = states.slice([0..n, 1..tokens, 0..width]);
    linear(projector, cast_to(patches, projector.weight.val().dtype()))
}

/// Token embeddings of `batch` from `llm`, with the rows of `image_features` (`[images,
/// patches, width]`, in order of appearance, row by row) at the `image_patch_id` positions.
pub fn embed_with_images(
    llm: &Llama,
    batch: &TokenBatch,
    image_features: Option<Tensor<3>>,
    image_patch_id: u32,
) -> Result<Tensor<3>, InputError> {
    let weights = llm.embed_tokens.weight.val();
    let (device, dtype) = (weights.device(), weights.dtype());
    let (rows, len) = (batch.batch_size(), batch.len());
    let flat: Vec<i64> = batch
        .ids
        .iter()
        .flatten()
        .map(|&id| i64::from(id))
        .collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(flat, [rows, len]), &device);
    let embeds = llm.embed(ids);
    let patch_slots = batch
        .ids
        .iter()
        .zip(&batch.valid)
        .flat_map(|(ids, valid)| ids.iter().zip(valid))
        .filter(|(id, valid)| **id == image_patch_id && **valid)
        .count();
    let Some(features) = image_features else {
        if patch_slots > 0 {
            return Err(InputError(format!(
                "the prompt has {patch_slots} <im_patch> tokens but no image was given"
            )));
        }
        return Ok(embeds);
    };
    let [images, patches, width] = features.dims();
    if images * patches != patch_slots {
        return Err(InputError(format!(
            "the prompt has {patch_slots} <im_patch> tokens but {images} images x {patches} patches were given"
        )));
    }
    let mut next_feature = rows * len;
    let index: Vec<i64> = batch
        .ids
        .iter()
        .zip(&batch.valid)
        .flat_map(|(ids, valid)| ids.iter().zip(valid))
        .enumerate()
        .map(|(position, (id, valid))| {
            if *id == image_patch_id && *valid {
                next_feature += 1;
                (next_feature - 1) as i64
            } else {
                position as i64
            }
        })
        .collect();
    let index = Tensor::<1, Int>::from_data(TensorData::new(index, [rows * len]), &device);
    let table = Tensor::cat(
        vec![
            embeds.reshape([rows * len, width]),
            features.reshape([images * patches, width]).cast(dtype),
        ],
        0,
    );
    Ok(table.select(0, index).reshape([rows, len, width]))
}

/// Reads the projector and LLaMA of `model` from the burnpack at `path` (what fine-tuning
/// writes), cast to `dtype`: every one of their tensors must be in the file, and nothing
/// else.
fn load_language_burnpack(
    mut model: LclModel,
    path: &Path,
    dtype: DType,
) -> Result<LclModel, LoadError> {
    let format = |message: String| LoadError::Format {
        path: path.to_path_buf(),
        message,
    };
    let mut store = burn::store::BurnpackStore::from_file(path)
        .auto_extension(false)
        .allow_partial(true)
        .with_from_adapter(burn::store::FloatCastAdapter::to(dtype));
    let applied = model
        .load_from(&mut store)
        .map_err(|err| format(err.to_string()))?;
    let missing: Vec<&String> = applied
        .missing
        .iter()
        .map(|(name, _)| name)
        .filter(|name| !name.starts_with("vision."))
        .collect();
    if !missing.is_empty() || !applied.unused.is_empty() || !applied.errors.is_empty() {
        return Err(format(format!(
            "does not fit the model: missing {missing:?}, unexpected {:?}, {}",
            applied.unused,
            applied
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    Ok(model)
}
