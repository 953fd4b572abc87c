//! Builds model parts from a checkpoint, checking every tensor against the config first.
//!
//! Each model part has one constructor, `load(&mut WeightLoader, ...)`, that asks the
//! loader for its tensors by name and shape. The same constructor serves three modes:
//! checking a checkpoint (no data read; every problem collected), loading it (one tensor in
//! memory at a time besides the model), and initialising fresh random weights.

use std::collections::{BTreeMap, BTreeSet};

use burn::module::{Param, ParamId};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear, RmsNorm, RmsNormConfig};
use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};

use super::{LoadError, ShapeMismatch, StoredAs, WeightFiles};

/// How the loader answers a request for a tensor.
enum Mode<'a> {
    /// Record what is missing or mis-shaped; hand out 1-element placeholders.
    Check(&'a WeightFiles),
    /// Read the tensor, convert it to the model dtype, put it on the device.
    Load(&'a WeightFiles),
    /// Fresh lazily initialised weights (normal with this std; norms start at one).
    Init { std: f64 },
    /// Record the checkpoint name each parameter is stored under; hand out placeholders.
    Trace,
}

/// Called after each tensor is read, with its name and its size in the file (bytes).
pub type ProgressFn<'a> = dyn FnMut(&str, usize) + 'a;

/// Hands out the parameters of a model part, by checkpoint name.
pub struct WeightLoader<'a> {
    mode: Mode<'a>,
    progress: Option<&'a mut ProgressFn<'a>>,
    prefix: String,
    device: Device,
    dtype: DType,
    used: BTreeSet<String>,
    missing: Vec<(String, Vec<usize>)>,
    mis_shaped: Vec<ShapeMismatch>,
    traced: BTreeMap<u64, StoredAs>,
}

/// The initial value of a fresh parameter.
#[derive(Clone, Copy)]
enum Fresh {
    Normal,
    Ones,
    Zeros,
}

impl<'a> WeightLoader<'a> {
    /// A loader that only checks names and shapes (reads no tensor data).
    pub fn check(files: &'a WeightFiles, prefix: &str, device: &Device) -> Self {
        Self::new(Mode::Check(files), prefix, device, DType::F32)
    }

    /// A loader that reads tensors and converts them to `dtype` on `device`.
    pub fn load(files: &'a WeightFiles, prefix: &str, device: &Device, dtype: DType) -> Self {
        Self::new(Mode::Load(files), prefix, device, dtype)
    }

    /// A loader that makes fresh random weights (normal with `std`; norms at one, biases at
    /// zero), initialised lazily on first use.
    pub fn init(std: f64, device: &Device, dtype: DType) -> WeightLoader<'static> {
        WeightLoader::new(Mode::Init { std }, "", device, dtype)
    }

    /// A loader that reads nothing and records, for every parameter it hands out (a
    /// one-element placeholder), the checkpoint name and layout it is stored in: building a
    /// model part through it gives the names [`super::export`] writes that part under.
    pub fn trace(device: &Device) -> WeightLoader<'static> {
        WeightLoader::new(Mode::Trace, "", device, DType::F32)
    }

    /// What a tracing loader recorded, by parameter id.
    pub fn into_trace(self) -> BTreeMap<u64, StoredAs> {
        self.traced
    }

    fn new(mode: Mode<'a>, prefix: &str, device: &Device, dtype: DType) -> Self {
        Self {
            mode,
            progress: None,
            prefix: prefix.to_string(),
            device: device.clone(),
            dtype,
            used: BTreeSet::new(),
            missing: Vec::new(),
            mis_shaped: Vec::new(),
            traced: BTreeMap::new(),
        }
    }

    /// Reports every tensor read to `progress` (loading long checkpoints).
    pub fn with_progress(mut self, progress: &'a mut ProgressFn<'a>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Bytes of the checkpoint tensors asked for so far (after a check: what loading reads).
    pub fn planned_bytes(&self) -> usize {
        let files = match &self.mode {
            Mode::Init { .. } | Mode::Trace => return 0,
            Mode::Check(files) | Mode::Load(files) => *files,
        };
        self.used
            .iter()
            .filter_map(|name| files.get(name))
            .map(|entry| entry.shape.iter().product::<usize>() * entry.dtype.size())
            .sum()
    }

    /// The device parameters are put on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The float dtype of the parameters.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    fn param<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        fresh: Fresh,
    ) -> Result<Param<Tensor<D>>, LoadError> {
        self.param_stored(name, shape, fresh, false)
    }

    /// [`Self::param`] of a tensor stored as `shape`; with `transpose` (2-D only) it is
    /// handed out transposed and contiguous (transposed on the host while it is read), as
    /// the matrix products want it: no per-call copy of a strided view.
    fn param_stored<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        fresh: Fresh,
        transpose: bool,
    ) -> Result<Param<Tensor<D>>, LoadError> {
        let full_name = format!("{}{name}", self.prefix);
        let files = match &self.mode {
            Mode::Init { std } => {
                let mut shape = shape;
                if transpose {
                    shape.swap(0, 1);
                }
                return Ok(self.fresh(shape, fresh, *std));
            }
            Mode::Trace => {
                let param = self.placeholder();
                let stored = StoredAs {
                    name: full_name,
                    transposed: transpose,
                };
                self.traced.insert(param.id.val(), stored);
                return Ok(param);
            }
            Mode::Check(files) | Mode::Load(files) => *files,
        };
        let Some(entry) = files.get(&full_name) else {
            self.missing.push((full_name, shape.to_vec()));
            return Ok(self.placeholder());
        };
        self.used.insert(full_name.clone());
        if entry.shape != shape {
            self.mis_shaped.push(ShapeMismatch {
                name: full_name,
                expected: shape.to_vec(),
                found: entry.shape.clone(),
                file: entry.file.clone(),
            });
            return Ok(self.placeholder());
        }
        if matches!(self.mode, Mode::Check(_)) {
            return Ok(self.placeholder());
        }
        let data = entry.read()?;
        if let Some(progress) = self.progress.as_mut() {
            progress(&full_name, data.as_bytes().len());
        }
        if !matches!(
            data.dtype(),
            DType::F64 | DType::F32 | DType::F16 | DType::BF16
        ) {
            return Err(LoadError::Format {
                path: entry.file.clone(),
                message: format!("{full_name} has dtype {:?}, not a float type", data.dtype()),
            });
        }
        let data = if transpose { transpose_2d(data) } else { data };
        let tensor = Tensor::<D>::from_data(data, (&self.device, self.dtype));
        Ok(Param::from_tensor(tensor))
    }

    fn placeholder<const D: usize>(&self) -> Param<Tensor<D>> {
        Param::from_tensor(Tensor::zeros([1; D], &self.device))
    }

    fn fresh<const D: usize>(&self, shape: [usize; D], fresh: Fresh, std: f64) -> Param<Tensor<D>> {
        let dtype = self.dtype;
        Param::uninitialized(
            ParamId::new(),
            move |device, require_grad| {
                let options = (device, dtype);
                let tensor = match fresh {
                    Fresh::Normal => Tensor::random(shape, Distribution::Normal(0.0, std), options),
                    Fresh::Ones => Tensor::ones(shape, options),
                    Fresh::Zeros => Tensor::zeros(shape, options),
                };
                tensor.set_require_grad(require_grad)
            },
            self.device.clone(),
            true,
            shape.into(),
        )
    }

    /// A raw float parameter (e.g. CLIP's class embedding), initialised normal when fresh.
    pub fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Param<Tensor<D>>, LoadError> {
        self.param(name, shape, Fresh::Normal)
    }

    /// A `Linear` stored the PyTorch way (`{name}.weight` as `[d_out, d_in]`, optional
    /// `{name}.bias`), transposed to Burn's `[d_in, d_out]`.
    pub fn linear(
        &mut self,
        name: &str,
        d_input: usize,
        d_output: usize,
        bias: bool,
    ) -> Result<Linear, LoadError> {
        let weight = self.param_stored(
            &format!("{name}.weight"),
            [d_output, d_input],
            Fresh::Normal,
            true,
        )?;
        let bias = if bias {
            Some(self.param(&format!("{name}.bias"), [d_output], Fresh::Zeros)?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    /// A `LayerNorm` with `{name}.weight` and `{name}.bias`.
    pub fn layer_norm(&mut self, name: &str, d: usize, eps: f64) -> Result<LayerNorm, LoadError> {
        let mut norm = LayerNormConfig::new(d).with_epsilon(eps).init(&self.device);
        norm.gamma = self.param(&format!("{name}.weight"), [d], Fresh::Ones)?;
        norm.beta = Some(self.param(&format!("{name}.bias"), [d], Fresh::Zeros)?);
        Ok(norm)
    }

    /// An `RmsNorm` with `{name}.weight`.
    pub fn rms_norm(&mut self, name: &str, d: usize, eps: f64) -> Result<RmsNorm, LoadError> {
        let mut norm = RmsNormConfig::new(d).with_epsilon(eps).init(&self.device);
        norm.gamma = self.param(&format!("{name}.weight"), [d], Fresh::Ones)?;
        Ok(norm)
    }

    /// An `Embedding` table `{name}.weight` of `[n, d]`.
    pub fn embedding(&mut self, name: &str, n: usize, d: usize) -> Result<Embedding, LoadError> {
        Ok(Embedding {
            weight: self.param(&format!("{name}.weight"), [n, d], Fresh::Normal)?,
        })
    }

    /// A bias-free square-kernel convolution with stride = kernel (a ViT patch embedding).
    pub fn patch_conv(
        &mut self,
        name: &str,
        channels: [usize; 2],
        kernel: usize,
    ) -> Result<Conv2d, LoadError> {
        let mut conv = Conv2dConfig::new(channels, [kernel, kernel])
            .with_stride([kernel, kernel])
            .with_bias(false)
            .init(&self.device);
        conv.weight = self.param(
            &format!("{name}.weight"),
            [channels[1], channels[0], kernel, kernel],
            Fresh::Normal,
        )?;
        Ok(conv)
    }

    /// Fails with every missing, mis-shaped and unexpected tensor. Unused checkpoint tensors
    /// for which `ignorable` is true (parts not loaded, buffers) are not reported.
    pub fn finish(self, ignorable: impl Fn(&str) -> bool) -> Result<(), LoadError> {
        let files = match self.mode {
            Mode::Init { .. } | Mode::Trace => return Ok(()),
            Mode::Check(files) | Mode::Load(files) => files,
        };
        let unexpected: Vec<(String, std::path::PathBuf)> = files
            .names()
            .filter(|name| !self.used.contains(*name) && !ignorable(name))
            .map(|name| {
                let file = files.get(name).map(|e| e.file.clone()).unwrap_or_default();
                (name.to_string(), file)
            })
            .collect();
        if self.missing.is_empty() && self.mis_shaped.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        Err(LoadError::Mismatch {
            source: files.origin.clone(),
            missing: self.missing,
            mis_shaped: self.mis_shaped,
            unexpected,
        })
    }
}

/// A 2-D tensor's data `[rows, cols]` as its transpose `[cols, rows]`.
fn transpose_2d(data: TensorData) -> TensorData {
    let [rows, cols] = data.shape()[..] else {
        return data;
    };
    let dtype = data.dtype();
    let out = transpose_bytes(data.as_bytes(), [rows, cols], dtype.size());
    TensorData::from_bytes_vec(out, vec![cols, rows], dtype)
}

/// The bytes of a row-major `[rows, cols]` matrix of `size`-byte elements, transposed to
/// `[cols, rows]`, in tiles so both sides stay in cache.
pub(super) fn transpose_bytes(bytes: &[u8], [rows, cols]: [usize; 2], size: usize) -> Vec<u8> {
    let mut out = vec![0u8; bytes.len()];
    const TILE: usize = 32;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    let from = (r * cols + c) * size;
                    let to = (c * rows + r) * size;
                    out[to..to + size].copy_from_slice(&bytes[from..from + size]);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_matrix_is_handed_out_transposed() {
        let data = TensorData::new((0..6).map(|v| v as f32).collect::<Vec<_>>(), [2, 3]);
        let t = transpose_2d(data);
        assert_eq!(t.shape().to_vec(), vec![3, 2]);
        assert_eq!(
            t.try_to_vec::<f32>().unwrap(),
            vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );
    }
}
