//! A full CLIP model (HF `CLIPModel`): both towers and their projections into the joint
//! embedding, as LCL's class-neighbour search uses it.

use std::path::Path;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{DType, Device, Tensor};

use crate::checkpoint::{
    BURNPACK, CheckpointTensor, ExportError, LoadError, WeightFiles, WeightLoader, export,
    load_burnpack,
};
use crate::clip::ClipVisionTransformer;
use crate::clip_text::ClipTextTransformer;
use crate::config::ClipConfig;

/// CLIP's image and text towers with their projections.
#[derive(Module, Debug)]
pub struct ClipModel {
    vision: ClipVisionTransformer,
    text: ClipTextTransformer,
    visual_projection: Linear,
    text_projection: Linear,
}

impl ClipModel {
    /// Builds the model through `loader`.
    pub fn load(loader: &mut WeightLoader, config: &ClipConfig) -> Result<Self, LoadError> {
        let p = config.projection_dim;
        Ok(Self {
            vision: ClipVisionTransformer::load(loader, &config.vision_config)?,
            text: ClipTextTransformer::load(loader, &config.text_config)?,
            visual_projection: loader.linear(
                "visual_projection",
                config.vision_config.hidden_size,
                p,
                false,
            )?,
            text_projection: loader.linear(
                "text_projection",
                config.text_config.hidden_size,
                p,
                false,
            )?,
        })
    }

    /// A model with fresh random weights (normal, std `std`), to train from scratch.
    pub fn init(config: &ClipConfig, std: f64, device: &Device, dtype: DType) -> Self {
        Self::load(&mut WeightLoader::init(std, device, dtype), config)
            .expect("fresh initialisation reads no file")
    }

    /// Loads a CLIP checkpoint folder (`config.json` + Hugging Face weights, or
    /// [`BURNPACK`] as [`ClipModel::save_burnpack`] writes it) in `dtype`, checking every
    /// tensor against the config before reading any.
    pub fn from_pretrained(dir: &Path, device: &Device, dtype: DType) -> Result<Self, LoadError> {
        if !device.supports_dtype(dtype) {
            return Err(LoadError::UnsupportedDType {
                dtype: format!("{dtype:?}"),
            });
        }
        let config = ClipConfig::from_file(&dir.join("config.json"))?;
        let burnpack = dir.join(BURNPACK);
        if burnpack.is_file() {
            return load_burnpack(Self::init(&config, 0.02, device, dtype), &burnpack);
        }
        let files = WeightFiles::open(dir)?;
        let mut check = WeightLoader::check(&files, "", device);
        Self::load(&mut check, &config)?;
        check.finish(|name| name.ends_with("position_ids") || name == "logit_scale")?;
        Self::load(&mut WeightLoader::load(&files, "", device, dtype), &config)
    }

    /// Saves every weight as `path` (a Burn burnpack; with the Hugging Face `config.json`
    /// beside it as [`BURNPACK`], the folder loads with [`ClipModel::from_pretrained`]).
    pub fn save_burnpack(&self, path: &Path) -> Result<(), burn::store::RecordError> {
        self.clone().save_file(path)
    }

    /// Every tensor as a Hugging Face `CLIPModel` stores it (`vision_model.*`,
    /// `text_model.*`, both projections).
    pub fn checkpoint_tensors(
        &self,
        config: &ClipConfig,
    ) -> Result<Vec<CheckpointTensor>, ExportError> {
        let device = self.visual_projection.weight.val().device();
        let mut trace = WeightLoader::trace(&device);
        let twin = Self::load(&mut trace, config).expect("tracing reads no file");
        export::checkpoint_tensors(self, &twin, &trace.into_trace(), &[])
    }

    /// The vision tower alone.
    pub fn into_vision(self) -> ClipVisionTransformer {
        self.vision
    }

    /// The text tower (for its context length).
    pub fn text_tower(&self) -> &ClipTextTransformer {
        &self.text
    }

    /// HF's `get_image_features`: projected pooled image embeddings, `[batch, projection]`.
    pub fn image_features(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.visual_projection.forward(self.vision.pooled(pixels))
    }

    /// HF's `get_text_features` of tokenised texts (see [`ClipTextTransformer::pooled`]).
    pub fn text_features(&self, rows: &[Vec<u32>], device: &Device) -> Tensor<2> {
        self.text_projection.forward(self.text.pooled(rows, device))
    }
}
