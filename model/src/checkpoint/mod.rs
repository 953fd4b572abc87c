//! Reading Hugging Face checkpoints (safetensors or torch pickles, single or sharded).

mod error;
mod files;
mod loader;

pub use error::{LoadError, ShapeMismatch};
pub use files::{TensorEntry, WeightFiles};
pub use loader::WeightLoader;
