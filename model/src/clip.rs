//! CLIP vision transformer with Hugging Face `CLIPVisionModel` semantics.
//!
//! Patch convolution (no bias) + class token + learned positions, `pre_layrnorm`, pre-norm
//! encoder layers, `post_layernorm` on the class token. Any entry of HF's `hidden_states`
//! tuple can be asked for; only the layers it needs are run.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::{gelu, sigmoid};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use crate::checkpoint::{CheckpointTensor, ExportError, LoadError, WeightLoader, export};
use crate::config::ClipVisionConfig;

/// Sizes shared by CLIP's vision and text encoders.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EncoderShape {
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub eps: f64,
    pub quick_gelu: bool,
    /// Whether a token sees only itself and earlier tokens (the text encoder).
    pub causal: bool,
}

impl From<&ClipVisionConfig> for EncoderShape {
    fn from(c: &ClipVisionConfig) -> Self {
        Self {
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps,
            quick_gelu: c.hidden_act == "quick_gelu",
            causal: false,
        }
    }
}

/// Self-attention of one CLIP encoder layer (q/k/v/out projections with bias).
#[derive(Module, Debug)]
pub struct ClipAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    causal: bool,
}

/// The MLP of one CLIP encoder layer.
#[derive(Module, Debug)]
pub struct ClipMlp {
    fc1: Linear,
    fc2: Linear,
    quick_gelu: bool,
}

/// One pre-norm CLIP encoder layer.
#[derive(Module, Debug)]
pub struct ClipEncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: ClipAttention,
    layer_norm2: LayerNorm,
    mlp: ClipMlp,
}

/// The CLIP vision transformer (`vision_model.*` of a CLIP checkpoint).
#[derive(Module, Debug)]
pub struct ClipVisionTransformer {
    patch_embedding: Conv2d,
    class_embedding: Param<Tensor<1>>,
    position_embedding: Embedding,
    pre_layrnorm: LayerNorm,
    layers: Vec<ClipEncoderLayer>,
    post_layernorm: LayerNorm,
}

impl ClipAttention {
    fn load(loader: &mut WeightLoader, name: &str, c: EncoderShape) -> Result<Self, LoadError> {
        let d = c.hidden;
        Ok(Self {
            q_proj: loader.linear(&format!("{name}.q_proj"), d, d, true)?,
            k_proj: loader.linear(&format!("{name}.k_proj"), d, d, true)?,
            v_proj: loader.linear(&format!("{name}.v_proj"), d, d, true)?,
            out_proj: loader.linear(&format!("{name}.out_proj"), d, d, true)?,
            num_heads: c.heads,
            causal: c.causal,
        })
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, len, width] = x.dims();
        let heads = |t: Tensor<3>| {
            t.reshape([batch, len, self.num_heads, width / self.num_heads])
                .swap_dims(1, 2)
        };
        let q = heads(self.q_proj.forward(x.clone()));
        let k = heads(self.k_proj.forward(x.clone()));
        let v = heads(self.v_proj.forward(x));
        let options = AttentionModuleOptions {
            is_causal: self.causal,
            ..Default::default()
        };
        let out = attention(q, k, v, None, None, options);
        self.out_proj
            .forward(out.swap_dims(1, 2).reshape([batch, len, width]))
    }
}

impl ClipMlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.fc1.forward(x);
        let h = if self.quick_gelu {
            h.clone() * sigmoid(h * 1.702)
        } else {
            gelu(h)
        };
        self.fc2.forward(h)
    }
}

impl ClipEncoderLayer {
    pub(crate) fn load(
        loader: &mut WeightLoader,
        name: &str,
        c: EncoderShape,
    ) -> Result<Self, LoadError> {
        let (d, eps) = (c.hidden, c.eps);
        Ok(Self {
            layer_norm1: loader.layer_norm(&format!("{name}.layer_norm1"), d, eps)?,
            self_attn: ClipAttention::load(loader, &format!("{name}.self_attn"), c)?,
            layer_norm2: loader.layer_norm(&format!("{name}.layer_norm2"), d, eps)?,
            mlp: ClipMlp {
                fc1: loader.linear(&format!("{name}.mlp.fc1"), d, c.intermediate, true)?,
                fc2: loader.linear(&format!("{name}.mlp.fc2"), c.intermediate, d, true)?,
                quick_gelu: c.quick_gelu,
            },
        })
    }

    pub(crate) fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x));
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
    }
}

impl ClipVisionTransformer {
    /// Builds the tower from `vision_model.*` tensors (under the loader's prefix).
    pub fn load(loader: &mut WeightLoader, config: &ClipVisionConfig) -> Result<Self, LoadError> {
        let d = config.hidden_size;
        let eps = config.layer_norm_eps;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                ClipEncoderLayer::load(
                    loader,
                    &format!("vision_model.encoder.layers.{i}"),
                    config.into(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            patch_embedding: loader.patch_conv(
                "vision_model.embeddings.patch_embedding",
                [config.num_channels, d],
                config.patch_size,
            )?,
            class_embedding: loader.tensor("vision_model.embeddings.class_embedding", [d])?,
            position_embedding: loader.embedding(
                "vision_model.embeddings.position_embedding",
                config.num_patches() + 1,
                d,
            )?,
            pre_layrnorm: loader.layer_norm("vision_model.pre_layrnorm", d, eps)?,
            layers,
            post_layernorm: loader.layer_norm("vision_model.post_layernorm", d, eps)?,
        })
    }

    /// The tower's tensors as a Hugging Face `CLIPVisionModel` stores them
    /// (`vision_model.*`).
    pub fn checkpoint_tensors(
        &self,
        config: &ClipVisionConfig,
    ) -> Result<Vec<CheckpointTensor>, ExportError> {
        let mut trace = WeightLoader::trace(&self.class_embedding.val().device());
        let twin = Self::load(&mut trace, config).expect("tracing reads no file");
        export::checkpoint_tensors(self, &twin, &trace.into_trace(), &[])
    }

    /// Number of encoder layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Float dtype of the weights (the dtype the tower computes in).
    pub fn dtype(&self) -> burn::tensor::DType {
        self.class_embedding.val().dtype()
    }

    /// Patch + class + position embeddings after `pre_layrnorm`: HF's `hidden_states[0]`.
    /// `pixels`: `[batch, channels, size, size]`; output `[batch, 1 + patches, width]`.
    pub fn embed(&self, pixels: Tensor<4>) -> Tensor<3> {
        let patches = self.patch_embedding.forward(pixels);
        let [batch, width, rows, cols] = patches.dims();
        let patches = patches.reshape([batch, width, rows * cols]).swap_dims(1, 2);
        let class = self
            .class_embedding
            .val()
            .reshape([1, 1, width])
            .expand([batch, 1, width]);
        let tokens = Tensor::cat(vec![class, patches], 1);
        let positions = self.position_embedding.weight.val().unsqueeze::<3>();
        self.pre_layrnorm.forward(tokens + positions)
    }

    /// Entry `index` of HF's `hidden_states` tuple (0 = embeddings, `num_layers` = last
    /// layer; negative counts from the end, so -2 is the penultimate layer LCL uses).
    /// Runs only the layers needed.
    pub fn hidden_state(&self, pixels: Tensor<4>, index: isize) -> Tensor<3> {
        let count = self.layers.len() as isize + 1;
        let resolved = if index < 0 { count + index } else { index };
        assert!(
            (0..count).contains(&resolved),
            "hidden state {index} out of range for {} layers",
            self.layers.len()
        );
        self.layers[..resolved as usize]
            .iter()
            .fold(self.embed(pixels), |x, layer| layer.forward(x))
    }

    /// Every entry of HF's `hidden_states` tuple: the embeddings, then each layer's output.
    pub fn hidden_states(&self, pixels: Tensor<4>) -> Vec<Tensor<3>> {
        let mut states = vec![self.embed(pixels)];
        for layer in &self.layers {
            let next = layer.forward(states.last().expect("embeddings first").clone());
            states.push(next);
        }
        states
    }

    /// HF's `pooler_output`: `post_layernorm` of the last layer's class token, `[batch, width]`.
    pub fn pooled(&self, pixels: Tensor<4>) -> Tensor<2> {
        let last = self.hidden_state(pixels, -1);
        let [batch, _, width] = last.dims();
        let class = last
            .slice([0..batch, 0..1, 0..width])
            .reshape([batch, width]);
        self.post_layernorm.forward(class)
    }
}
