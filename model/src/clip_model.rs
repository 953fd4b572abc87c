//! A full CLIP model (HF `CLIPModel`): both towers and their projections into the joint
//! embedding, as LCL's class-neighbour search uses it.

use std::path::Path;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{DType, Device, Tensor};

use crate::checkpoint::{LoadError, WeightFiles, WeightLoader};
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

    /// Loads a CLIP checkpoint folder (`config.json` + weights) in `dtype`, checking every
    /// tensor against the config before reading any.
    pub fn from_pretrained(dir: &Path, device: &Device, dtype: DType) -> Result<Self, LoadError> {
        if !device.supports_dtype(dtype) {
            return Err(LoadError::UnsupportedDType {
                dtype: format!("{dtype:?}"),
            });
        }
        let config = ClipConfig::from_file(&dir.join("config.json"))?;
        let files = WeightFiles::open(dir)?;
        let mut check = WeightLoader::check(&files, "", device);
        Self::load(&mut check, &config)?;
        check.finish(|name| name.ends_with("position_ids") || name == "logit_scale")?;
        Self::load(&mut WeightLoader::load(&files, "", device, dtype), &config)
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
