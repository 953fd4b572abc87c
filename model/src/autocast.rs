//! Layers that compute in the dtype of their input: a weight stored at another precision (the
//! f32 master weights of mixed-precision training) is cast on use, inside the autodiff graph,
//! so its gradient comes back at the weight's own precision. With input and weights of one
//! dtype (inference, f32 training) nothing is cast.

use burn::nn::{Linear, RmsNorm};
use burn::tensor::{DType, Tensor};

/// `tensor` in `dtype` (itself when it already is).
pub fn cast_to<const D: usize>(tensor: Tensor<D>, dtype: DType) -> Tensor<D> {
    if tensor.dtype() == dtype {
        tensor
    } else {
        tensor.cast(dtype)
    }
}

/// `layer` applied to `x` in `x`'s dtype.
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let dtype = x.dtype();
    let weight = cast_to(layer.weight.val(), dtype);
    let bias = layer.bias.as_ref().map(|b| cast_to(b.val(), dtype));
    burn::tensor::module::linear(x, weight, bias)
}

/// `norm` applied to `x` in `x`'s dtype (the mean square in f32, as Burn's `RmsNorm` does).
pub fn rms_norm<const D: usize>(norm: &RmsNorm, x: Tensor<D>) -> Tensor<D> {
    let dtype = x.dtype();
    let gamma = norm.gamma.val();
    if gamma.dtype() == dtype {
        return norm.forward(x);
    }
    let rms = (x.clone().cast(DType::F32).square().mean_dim(D - 1) + norm.epsilon).sqrt();
    (x / rms.cast(dtype)) * gamma.cast(dtype).unsqueeze()
}
