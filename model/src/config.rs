//! Model sizes, read from Hugging Face `config.json` files.
//!
//! Every field has the default that transformers gives it, so a config that omits a field
//! loads the same model here as there.

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::checkpoint::LoadError;

/// Sizes of a LLaMA decoder (HF `LlamaConfig`), plus the Shikra/LCL projector input width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Vocabulary size, including added tokens (32003 for LCL).
    #[serde(default = "defaults::vocab_size")]
    pub vocab_size: usize,
    /// Width of the residual stream.
    #[serde(default = "defaults::hidden_size")]
    pub hidden_size: usize,
    /// Width of the SiLU-gated MLP.
    #[serde(default = "defaults::intermediate_size")]
    pub intermediate_size: usize,
    /// Number of decoder layers.
    #[serde(default = "defaults::num_hidden_layers")]
    pub num_hidden_layers: usize,
    /// Number of query heads.
    #[serde(default = "defaults::num_attention_heads")]
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); defaults to the query heads.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// RMSNorm epsilon.
    #[serde(default = "defaults::rms_norm_eps")]
    pub rms_norm_eps: f64,
    /// RoPE base.
    #[serde(default = "defaults::rope_theta")]
    pub rope_theta: f64,
    /// Nominal context length. RoPE runs past it: LCL episodes are longer.
    #[serde(default = "defaults::max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// Whether `lm_head` shares the embedding matrix (false for LLaMA).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Width of the vision features the projector takes (Shikra's `mm_hidden_size`).
    #[serde(default)]
    pub mm_hidden_size: Option<usize>,
    /// Vision tower named by the checkpoint (Shikra's `mm_vision_tower`): a hub id or a path.
    #[serde(default)]
    pub mm_vision_tower: Option<String>,
    /// HF's `pad_token_id`: PyTorch builds the embedding with it as `padding_idx`, so its row
    /// gets no gradient in training (see [`LlamaConfig::frozen_embedding_row`]).
    #[serde(default)]
    pub pad_token_id: Option<i64>,
}

/// Sizes of a CLIP vision transformer (HF `CLIPVisionConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipVisionConfig {
    /// Width of the residual stream.
    #[serde(default = "defaults::clip_hidden_size")]
    pub hidden_size: usize,
    /// Width of the MLP.
    #[serde(default = "defaults::clip_intermediate_size")]
    pub intermediate_size: usize,
    /// Number of encoder layers.
    #[serde(default = "defaults::clip_layers")]
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    #[serde(default = "defaults::clip_heads")]
    pub num_attention_heads: usize,
    /// Input channels.
    #[serde(default = "defaults::num_channels")]
    pub num_channels: usize,
    /// Input resolution (square).
    #[serde(default = "defaults::image_size")]
    pub image_size: usize,
    /// Patch side.
    #[serde(default = "defaults::patch_size")]
    pub patch_size: usize,
    /// MLP activation: `quick_gelu` (OpenAI CLIP) or `gelu`.
    #[serde(default = "defaults::hidden_act")]
    pub hidden_act: String,
    /// LayerNorm epsilon.
    #[serde(default = "defaults::layer_norm_eps")]
    pub layer_norm_eps: f64,
}

/// A CLIP `config.json`: either a full `CLIPModel` (with `vision_config`) or a
/// `CLIPVisionModel` whose vision fields sit at the top level.
#[derive(Debug, Clone, Deserialize)]
struct ClipConfigFile {
    #[serde(default)]
    vision_config: Option<ClipVisionConfig>,
    #[serde(flatten)]
    top_level: ClipVisionConfig,
}

impl ClipVisionConfig {
    /// Number of patch tokens per image (CLS not counted): 256 for ViT-L/14 at 224 px.
    pub fn num_patches(&self) -> usize {
        let side = self.image_size / self.patch_size;
        side * side
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Reads the vision part of a CLIP `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let file: ClipConfigFile = read_json(path)?;
        let config = file.vision_config.unwrap_or(file.top_level);
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), LoadError> {
        let mut problems = bounded(&[
            ("hidden_size", self.hidden_size, 1 << 16),
            ("intermediate_size", self.intermediate_size, 1 << 18),
            ("num_hidden_layers", self.num_hidden_layers, 1024),
            ("num_attention_heads", self.num_attention_heads, 1024),
            ("num_channels", self.num_channels, 16),
            ("image_size", self.image_size, 4096),
            ("patch_size", self.patch_size, 4096),
        ]);
        problems.extend(positive_finite(&[("layer_norm_eps", self.layer_norm_eps)]));
        if !problems.is_empty() {
            return config_problems(path, problems);
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            problems.push("hidden_size is not a multiple of num_attention_heads".to_string());
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
            problems.push("image_size is not a multiple of patch_size".to_string());
        }
        if !matches!(self.hidden_act.as_str(), "quick_gelu" | "gelu") {
            problems.push(format!(
                "hidden_act {:?} is not supported (quick_gelu or gelu)",
                self.hidden_act
            ));
        }
        config_problems(path, problems)
    }
}

impl LlamaConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Number of key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// The embedding row training leaves untouched, as PyTorch's `padding_idx` does:
    /// `pad_token_id`, counted from the end when negative (the LCL release's -1 is the last
    /// added token, `<im_end>`).
    pub fn frozen_embedding_row(&self) -> Option<usize> {
        let id = self.pad_token_id?;
        let row = if id < 0 {
            self.vocab_size as i64 + id
        } else {
            id
        };
        usize::try_from(row).ok()
    }

    /// Reads a LLaMA or Shikra/LCL `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let config: Self = read_json(path)?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), LoadError> {
        let mut problems = bounded(&[
            ("vocab_size", self.vocab_size, 1 << 24),
            ("hidden_size", self.hidden_size, 1 << 17),
            ("intermediate_size", self.intermediate_size, 1 << 19),
            ("num_hidden_layers", self.num_hidden_layers, 1024),
            ("num_attention_heads", self.num_attention_heads, 1024),
            ("num_key_value_heads", self.kv_heads(), 1024),
            ("mm_hidden_size", self.mm_hidden_size.unwrap_or(1), 1 << 17),
        ]);
        problems.extend(positive_finite(&[
            ("rms_norm_eps", self.rms_norm_eps),
            ("rope_theta", self.rope_theta),
        ]));
        if !problems.is_empty() {
            return config_problems(path, problems);
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            problems.push("hidden_size is not a multiple of num_attention_heads".to_string());
        }
        if !self.head_dim().is_multiple_of(2) {
            problems.push("the head width must be even for rotary embeddings".to_string());
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            problems
                .push("num_attention_heads is not a multiple of num_key_value_heads".to_string());
        }
        if let Some(id) = self.pad_token_id {
            let vocab = self.vocab_size as i64;
            if !(-vocab..vocab).contains(&id) {
                problems.push(format!(
                    "pad_token_id {id} is outside the vocabulary ({vocab} tokens)"
                ));
            }
        }
        config_problems(path, problems)
    }
}

/// Sizes of a CLIP text transformer (HF `CLIPTextConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipTextConfig {
    /// Vocabulary size (49408 for OpenAI CLIP).
    #[serde(default = "defaults::clip_vocab_size")]
    pub vocab_size: usize,
    /// Width of the residual stream.
    #[serde(default = "defaults::clip_text_hidden_size")]
    pub hidden_size: usize,
    /// Width of the MLP.
    #[serde(default = "defaults::clip_text_intermediate_size")]
    pub intermediate_size: usize,
    /// Number of encoder layers.
    #[serde(default = "defaults::clip_layers")]
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    #[serde(default = "defaults::clip_text_heads")]
    pub num_attention_heads: usize,
    /// Context length (77 for OpenAI CLIP): longer texts are truncated.
    #[serde(default = "defaults::clip_text_positions")]
    pub max_position_embeddings: usize,
    /// MLP activation: `quick_gelu` (OpenAI CLIP) or `gelu`.
    #[serde(default = "defaults::hidden_act")]
    pub hidden_act: String,
    /// LayerNorm epsilon.
    #[serde(default = "defaults::layer_norm_eps")]
    pub layer_norm_eps: f64,
}

/// A full CLIP model's `config.json` (HF `CLIPConfig`): both towers and the shared
/// embedding width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipConfig {
    /// The image tower.
    pub vision_config: ClipVisionConfig,
    /// The text tower.
    pub text_config: ClipTextConfig,
    /// Width of the joint image-text embedding.
    #[serde(default = "defaults::projection_dim")]
    pub projection_dim: usize,
}

impl ClipConfig {
    /// Reads a full CLIP `config.json` (one with `vision_config` and `text_config`).
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let config: Self = read_json(path)?;
        config.vision_config.validate(path)?;
        let text = &config.text_config;
        let mut problems = bounded(&[
            ("text vocab_size", text.vocab_size, 1 << 24),
            ("text hidden_size", text.hidden_size, 1 << 16),
            ("text intermediate_size", text.intermediate_size, 1 << 18),
            ("text num_hidden_layers", text.num_hidden_layers, 1024),
            ("text num_attention_heads", text.num_attention_heads, 1024),
            (
                "text max_position_embeddings",
                text.max_position_embeddings,
                1 << 16,
            ),
            ("projection_dim", config.projection_dim, 1 << 16),
        ]);
        problems.extend(positive_finite(&[(
            "text layer_norm_eps",
            text.layer_norm_eps,
        )]));
        // (Divisibility only means something for sizes in bounds: no division by zero.)
        if problems.is_empty() && !text.hidden_size.is_multiple_of(text.num_attention_heads) {
            problems.push("text hidden_size is not a multiple of num_attention_heads".to_string());
        }
        if !matches!(text.hidden_act.as_str(), "quick_gelu" | "gelu") {
            problems.push(format!(
                "text hidden_act {:?} is not supported (quick_gelu or gelu)",
                text.hidden_act
            ));
        }
        config_problems(path, problems)?;
        Ok(config)
    }
}

/// Sizes that must be at least 1 and at most the given bound (no model comes near it; a
/// size past it is a corrupt file, refused before anything is allocated from it).
fn bounded(sizes: &[(&str, usize, usize)]) -> Vec<String> {
    sizes
        .iter()
        .filter(|(_, value, max)| *value == 0 || value > max)
        .map(|(name, value, max)| format!("{name} is {value}, not between 1 and {max}"))
        .collect()
}

/// Values that must be positive and finite.
fn positive_finite(values: &[(&str, f64)]) -> Vec<String> {
    values
        .iter()
        .filter(|(_, value)| !(value.is_finite() && *value > 0.0))
        .map(|(name, value)| format!("{name} is {value}, not a positive number"))
        .collect()
}

fn config_problems(path: &Path, problems: Vec<String>) -> Result<(), LoadError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Config {
            path: path.to_path_buf(),
            message: problems.join("; "),
        })
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|err| LoadError::Config {
        path: path.to_path_buf(),
        message: err.to_string(),
    })
}

mod defaults {
    pub fn vocab_size() -> usize {
        32000
    }
    pub fn hidden_size() -> usize {
        4096
    }
    pub fn intermediate_size() -> usize {
        11008
    }
    pub fn num_hidden_layers() -> usize {
        32
    }
    pub fn num_attention_heads() -> usize {
        32
    }
    pub fn rms_norm_eps() -> f64 {
        1e-6
    }
    pub fn rope_theta() -> f64 {
        10000.0
    }
    pub fn max_position_embeddings() -> usize {
        2048
    }
    pub fn clip_hidden_size() -> usize {
        768
    }
    pub fn clip_intermediate_size() -> usize {
        3072
    }
    pub fn clip_layers() -> usize {
        12
    }
    pub fn clip_heads() -> usize {
        12
    }
    pub fn num_channels() -> usize {
        3
    }
    pub fn image_size() -> usize {
        224
    }
    pub fn patch_size() -> usize {
        32
    }
    pub fn hidden_act() -> String {
        "quick_gelu".to_string()
    }
    pub fn layer_norm_eps() -> f64 {
        1e-5
    }
    pub fn clip_vocab_size() -> usize {
        49408
    }
    pub fn clip_text_hidden_size() -> usize {
        512
    }
    pub fn clip_text_intermediate_size() -> usize {
        2048
    }
    pub fn clip_text_heads() -> usize {
        8
    }
    pub fn clip_text_positions() -> usize {
        77
    }
    pub fn projection_dim() -> usize {
        512
    }
}
