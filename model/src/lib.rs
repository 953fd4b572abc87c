//! The LCL / Shikra multimodal model in Burn: a CLIP vision tower, a linear projector and a
//! LLaMA decoder, loaded from Hugging Face checkpoints and run on any Burn device.
//!
//! ```no_run
//! use burn::tensor::{DType, Device};
//! use lcl_model::{LclModel, LoadOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::default();
//! let options = LoadOptions { dtype: DType::BF16, ..LoadOptions::default() };
//! let model = LclModel::from_pretrained(
//!     "LCL_2WAY_WEIGHT".as_ref(), "clip-vit-large-patch14".as_ref(), &device, options)?;
//! # Ok(()) }
//! ```
//!
//! `model/examples/episode.rs` runs a whole episode through the public API.

pub mod autocast;
pub mod batch;
pub mod cache;
pub mod checkpoint;
pub mod clip;
pub mod clip_model;
pub mod clip_text;
pub mod config;
pub mod generate;
pub mod lcl;
pub mod llama;
pub mod rng;
pub mod rope;

pub use batch::TokenBatch;
pub use cache::KvCache;
pub use checkpoint::{CheckpointTensor, ExportError, LoadError, WeightFiles, WeightLoader};
pub use clip::ClipVisionTransformer;
pub use clip_model::ClipModel;
pub use clip_text::ClipTextTransformer;
pub use config::{ClipConfig, ClipTextConfig, ClipVisionConfig, LlamaConfig};
pub use generate::{Generation, GenerationConfig, TokenObserver};
pub use lcl::{InputError, LclConfig, LclModel, LoadOptions};
pub use llama::Llama;
