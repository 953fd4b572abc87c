//! Averaging of accumulated gradients and global-norm clipping (`torch.nn.utils.
//! clip_grad_norm_`: one L2 norm over every gradient, every gradient scaled by
//! `max_norm / (norm + 1e-6)` when that is below 1), which Burn's per-parameter clipping is not.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor};

/// Sum of the squares of every gradient `grads` holds for `module`'s parameters.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let squares = grad.cast(DType::F32).square().sum();
            self.sum = Some(match self.sum.take() {
                Some(sum) => sum + squares,
                None => squares,
            });
        }
    }
}

/// Multiplies every gradient by one factor.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, grad.mul_scalar(self.factor));
        }
    }
}

/// Turns the sum of `passes` passes' gradients into their mean, then clips it to the global
/// L2 norm `max_norm` (0: no clipping). Returns the gradients and the mean's norm before
/// clipping (what Hugging Face logs as `grad_norm`).
pub fn average_and_clip<M: Module>(
    module: &M,
    mut grads: GradientsParams,
    passes: usize,
    max_norm: f64,
) -> (GradientsParams, f64) {
    let mut norm = SquaredNorm {
        grads: &grads,
        sum: None,
    };
    module.visit(&mut norm);
    let summed_norm = norm.sum.map_or(0.0, |sum| sum.into_scalar::<f64>().sqrt());
    let mean_norm = summed_norm / passes as f64;
    let clip = if max_norm > 0.0 {
        (max_norm / (mean_norm + 1e-6)).min(1.0)
    } else {
        1.0
    };
    let factor = clip / passes as f64;
    if factor != 1.0 {
        module.visit(&mut Scale {
            grads: &mut grads,
            factor,
        });
    }
    (grads, mean_norm)
}
