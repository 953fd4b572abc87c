//! Rotary position embeddings in the Hugging Face LLaMA layout (rotate-half), with a
//! position per row and token, so left-padded batches get the positions each row would have
//! alone.

use burn::tensor::{DType, Device, Tensor, TensorData};

/// Inverse frequencies of RoPE, computed in f32 exactly as transformers does
/// (`1 / theta ** (arange(0, d, 2) / d)`).
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
}

impl Rope {
    /// RoPE for heads of width `head_dim` with base `theta`.
    pub fn new(head_dim: usize, theta: f64) -> Self {
        let theta = theta as f32;
        let inv_freq = (0..head_dim / 2)
            .map(|i| 1.0 / theta.powf((2 * i) as f32 / head_dim as f32))
            .collect();
        Self { inv_freq }
    }

    /// Cosine and sine tables `[batch, 1, len, head_dim]` for the given positions
    /// (`positions[b][t]`), computed on the host in f32 (large angles stay exact on every
    /// device) and created in `dtype`.
    pub fn tables(
        &self,
        positions: &[Vec<usize>],
        device: &Device,
        dtype: DType,
    ) -> (Tensor<4>, Tensor<4>) {
        let batch = positions.len();
        let len = positions.first().map_or(0, Vec::len);
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(batch * len * half * 2);
        let mut sin = Vec::with_capacity(batch * len * half * 2);
        for row in positions {
            for &position in row {
                let angles: Vec<f32> = self.inv_freq.iter().map(|f| position as f32 * f).collect();
                for _ in 0..2 {
                    cos.extend(angles.iter().map(|a| a.cos()));
                    sin.extend(angles.iter().map(|a| a.sin()));
                }
            }
        }
        let shape = [batch, 1, len, half * 2];
        (
            Tensor::from_data(TensorData::new(cos, shape), (device, dtype)),
            Tensor::from_data(TensorData::new(sin, shape), (device, dtype)),
        )
    }
}

/// Applies RoPE to `x` of shape `[batch, heads, len, head_dim]`.
pub fn apply_rope(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let [batch, heads, len, dim] = x.dims();
    let half = dim / 2;
    let first = x.clone().slice([0..batch, 0..heads, 0..len, 0..half]);
    let second = x.clone().slice([0..batch, 0..heads, 0..len, half..dim]);
    let rotated = Tensor::cat(vec![second.neg(), first], 3);
    x * cos.clone() + rotated * sin.clone()
}
