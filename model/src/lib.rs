//! The LCL / Shikra multimodal model in Burn: a CLIP vision tower, a linear projector and a
//! LLaMA decoder, loaded from Hugging Face checkpoints and run on any Burn device.
//!
//! ```no_run
//! use lcl_model::{LclModel, GenerationConfig};
//! use burn::tensor::{DType, Device};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::default();
//! let model = LclModel::from_pretrained(
//!     "LCL_2WAY_WEIGHT".as_ref(), "clip-vit-large-patch14".as_ref(), 32000, &device, DType::F32)?;
//! # Ok(()) }
//! ```

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
pub use checkpoint::{LoadError, WeightFiles, WeightLoader};
pub use clip::ClipVisionTransformer;
pub use clip_model::ClipModel;
pub use clip_text::ClipTextTransformer;
pub use config::{ClipConfig, ClipTextConfig, ClipVisionConfig, LlamaConfig};
pub use generate::{Generation, GenerationConfig};
pub use lcl::{InputError, LclConfig, LclModel};
pub use llama::Llama;
