//! The inverse of loading: a model part's tensors under the names, and in the layout, its
//! Hugging Face checkpoint stores them, so that a writer can produce a checkpoint that
//! transformers (and this crate's loader) reads back.
//!
//! The names are not listed here a second time: the part is built once more through a
//! tracing [`WeightLoader`](super::WeightLoader), which records the name every parameter is
//! asked for by, and the two builds are matched parameter by parameter through their paths
//! in the module.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::store::ModuleSnapshot;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::tensor::DType;

use super::loader::transpose_bytes;

/// How one parameter is stored in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAs {
    /// Its checkpoint name, e.g. `model.layers.0.self_attn.q_proj.weight`.
    pub name: String,
    /// Whether the checkpoint holds it transposed (PyTorch `Linear` weights, `[out, in]`).
    pub transposed: bool,
}

/// A model that cannot be written as a checkpoint (a parameter no checkpoint name is known
/// for, a tensor that cannot be read back from the device).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportError(pub String);

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExportError {}

/// One tensor as a checkpoint stores it; its data is read from the model when asked for,
/// so a writer holds one tensor at a time.
pub struct CheckpointTensor {
    /// Checkpoint name.
    pub name: String,
    /// Element type (the model's).
    pub dtype: DType,
    /// Shape as stored.
    pub shape: Vec<usize>,
    transposed: bool,
    source: PackTensor,
}

impl CheckpointTensor {
    /// Size of the stored data in bytes.
    pub fn byte_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }

    /// The stored data: little-endian, row-major in the stored layout.
    pub fn bytes(&self) -> Result<Vec<u8>, ExportError> {
        let bytes = self
            .source
            .to_bytes()
            .map_err(|err| ExportError(format!("{}: cannot be read: {err}", self.name)))?;
        if self.transposed {
            // The model holds `[in, out]`; the checkpoint `[out, in]` (= self.shape).
            let [out, input] = self.shape[..] else {
                return Err(ExportError(format!(
                    "{}: only matrices are transposed",
                    self.name
                )));
            };
            return Ok(transpose_bytes(&bytes, [input, out], self.dtype.size()));
        }
        Ok(bytes.to_vec())
    }
}

/// `model`'s tensors under the checkpoint names `trace` recorded while `twin` (the same
/// model part, of the same config) was built through [`WeightLoader::trace`]
/// (super::WeightLoader::trace), sorted by name. Parameters under one of the module paths
/// in `skip` (e.g. `vision`: a part another checkpoint holds) are left out; any other
/// parameter without a name is an error.
pub fn checkpoint_tensors<M: Module>(
    model: &M,
    twin: &M,
    trace: &BTreeMap<u64, StoredAs>,
    skip: &[&str],
) -> Result<Vec<CheckpointTensor>, ExportError> {
    let names_by_path: BTreeMap<String, &StoredAs> = twin
        .collect(None, None, false)
        .into_iter()
        .filter_map(|tensor| {
            let stored = trace.get(&tensor.param_id?)?;
            Some((tensor.name, stored))
        })
        .collect();
    let skipped = |path: &str| {
        skip.iter().any(|part| {
            path.strip_prefix(part)
                .is_some_and(|rest| rest.starts_with('.'))
        })
    };
    let mut tensors = Vec::new();
    for source in model.collect(None, None, false) {
        let Some(stored) = names_by_path.get(&source.name) else {
            if skipped(&source.name) {
                continue;
            }
            return Err(ExportError(format!(
                "{}: no checkpoint name is known for this parameter",
                source.name
            )));
        };
        let mut shape = source.shape.to_vec();
        if stored.transposed {
            shape.reverse();
        }
        tensors.push(CheckpointTensor {
            name: stored.name.clone(),
            dtype: source.dtype,
            shape,
            transposed: stored.transposed,
            source,
        });
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(twice) = tensors.windows(2).find(|pair| pair[0].name == pair[1].name) {
        return Err(ExportError(format!(
            "{}: two parameters would be stored under this name",
            twice[0].name
        )));
    }
    Ok(tensors)
}
