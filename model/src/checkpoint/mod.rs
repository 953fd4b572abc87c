//! Reading Hugging Face checkpoints (safetensors or torch pickles, single or sharded), and
//! the names to write them back under.

mod error;
pub mod export;
mod files;
mod loader;
pub mod naming;

pub use error::{LoadError, ShapeMismatch};
pub use export::{CheckpointTensor, ExportError, StoredAs};
pub use files::{TensorEntry, WeightFiles};
pub use loader::WeightLoader;

/// The weights file of a folder in Burn's own format (beside a Hugging Face `config.json`).
pub const BURNPACK: &str = "model.bpk";

/// Puts the weights of burnpack `path` into `module`, which must hold exactly the file's
/// tensors with the same shapes; errors name the file.
pub fn load_burnpack<M: burn::module::Module>(
    module: M,
    path: &std::path::Path,
) -> Result<M, LoadError> {
    let record = burn::store::ModuleRecord::load(path).map_err(|err| LoadError::Format {
        path: path.to_path_buf(),
        message: err.to_string(),
    })?;
    module
        .try_load_record(record.cast_to_module_dtype())
        .map_err(|err| LoadError::Format {
            path: path.to_path_buf(),
            message: err.to_string(),
        })
}
