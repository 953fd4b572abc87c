//! LLaMA decoder with Hugging Face `LlamaForCausalLM` semantics: RMSNorm, rotate-half RoPE,
//! SiLU-gated MLP, causal attention with a KV cache and per-row padding, untied `lm_head`.

use burn::module::Module;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::activation::silu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Int, Tensor};

use crate::autocast::{linear, rms_norm};
use crate::cache::{AttentionMask, KvCache};
use crate::checkpoint::{LoadError, WeightLoader};
use crate::config::LlamaConfig;
use crate::rope::{Rope, apply_rope};

/// Causal self-attention of one decoder layer.
#[derive(Module, Debug)]
pub struct LlamaAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
}

/// SiLU-gated MLP: `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct LlamaMlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

/// One pre-norm decoder layer.
#[derive(Module, Debug)]
pub struct LlamaLayer {
    input_layernorm: RmsNorm,
    self_attn: LlamaAttention,
    post_attention_layernorm: RmsNorm,
    mlp: LlamaMlp,
}

/// The decoder: `model.embed_tokens`, `model.layers.N`, `model.norm` and `lm_head`.
#[derive(Module, Debug)]
pub struct Llama {
    /// Token embeddings `[vocab, hidden]`.
    pub embed_tokens: Embedding,
    /// The decoder layers, in order.
    pub layers: Vec<LlamaLayer>,
    norm: RmsNorm,
    lm_head: Linear,
    #[module(skip)]
    rope: Rope,
    /// Embedding row that gets no gradient ([`LlamaConfig::frozen_embedding_row`]).
    #[module(skip)]
    frozen_embedding_row: Option<usize>,
}

/// Per-call values every layer shares: RoPE tables and the attention mask.
struct LayerInputs {
    cos: Tensor<4>,
    sin: Tensor<4>,
    mask: AttentionMask,
}

impl LlamaAttention {
    fn load(loader: &mut WeightLoader, name: &str, c: &LlamaConfig) -> Result<Self, LoadError> {
        let (d, hd) = (c.hidden_size, c.head_dim());
        let kv = c.kv_heads() * hd;
        Ok(Self {
            q_proj: loader.linear(&format!("{name}.q_proj"), d, d, false)?,
            k_proj: loader.linear(&format!("{name}.k_proj"), d, kv, false)?,
            v_proj: loader.linear(&format!("{name}.v_proj"), d, kv, false)?,
            o_proj: loader.linear(&format!("{name}.o_proj"), d, d, false)?,
            num_heads: c.num_attention_heads,
            num_kv_heads: c.kv_heads(),
            head_dim: hd,
        })
    }

    fn forward(
        &self,
        x: Tensor<3>,
        inputs: &LayerInputs,
        cache: &mut KvCache,
        layer: usize,
    ) -> Tensor<3> {
        let [batch, len, width] = x.dims();
        let split = |t: Tensor<3>, heads: usize| {
            t.reshape([batch, len, heads, self.head_dim])
                .swap_dims(1, 2)
        };
        let q = split(linear(&self.q_proj, x.clone()), self.num_heads);
        let k = split(linear(&self.k_proj, x.clone()), self.num_kv_heads);
        let v = split(linear(&self.v_proj, x), self.num_kv_heads);
        let q = apply_rope(q, &inputs.cos, &inputs.sin);
        let k = apply_rope(k, &inputs.cos, &inputs.sin);
        let (k, v) = cache.append(layer, k, v);
        let (k, v) = (self.repeat_kv(k), self.repeat_kv(v));
        let total = k.dims()[2];
        let (mask, is_causal) = match &inputs.mask {
            AttentionMask::Causal => (None, true),
            AttentionMask::None => (None, false),
            AttentionMask::Explicit(mask) => (
                Some((**mask).clone().expand([batch, self.num_heads, len, total])),
                false,
            ),
        };
        let options = AttentionModuleOptions {
            is_causal,
            ..Default::default()
        };
        let out = attention(q, k, v, mask, None, options);
        linear(
            &self.o_proj,
            out.swap_dims(1, 2).reshape([batch, len, width]),
        )
    }

    /// Grouped-query attention: repeat each key/value head for its query heads.
    fn repeat_kv(&self, t: Tensor<4>) -> Tensor<4> {
        let groups = self.num_heads / self.num_kv_heads;
        if groups == 1 {
            return t;
        }
        let [batch, heads, len, dim] = t.dims();
        t.unsqueeze_dim::<5>(2)
            .expand([batch, heads, groups, len, dim])
            .reshape([batch, heads * groups, len, dim])
    }
}

impl LlamaMlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = silu(linear(&self.gate_proj, x.clone()));
        linear(&self.down_proj, gate * linear(&self.up_proj, x))
    }
}

impl LlamaLayer {
    fn load(loader: &mut WeightLoader, name: &str, c: &LlamaConfig) -> Result<Self, LoadError> {
        let (d, eps) = (c.hidden_size, c.rms_norm_eps);
        Ok(Self {
            input_layernorm: loader.rms_norm(&format!("{name}.input_layernorm"), d, eps)?,
            self_attn: LlamaAttention::load(loader, &format!("{name}.self_attn"), c)?,
            post_attention_layernorm: loader.rms_norm(
                &format!("{name}.post_attention_layernorm"),
                d,
                eps,
            )?,
            mlp: LlamaMlp {
                gate_proj: loader.linear(
                    &format!("{name}.mlp.gate_proj"),
                    d,
                    c.intermediate_size,
                    false,
                )?,
                up_proj: loader.linear(
                    &format!("{name}.mlp.up_proj"),
                    d,
                    c.intermediate_size,
                    false,
                )?,
                down_proj: loader.linear(
                    &format!("{name}.mlp.down_proj"),
                    c.intermediate_size,
                    d,
                    false,
                )?,
            },
        })
    }

    fn forward(
        &self,
        x: Tensor<3>,
        inputs: &LayerInputs,
        cache: &mut KvCache,
        layer: usize,
    ) -> Tensor<3> {
        let attended = self.self_attn.forward(
            rms_norm(&self.input_layernorm, x.clone()),
            inputs,
            cache,
            layer,
        );
        let x = x + attended;
        x.clone()
            + self
                .mlp
                .forward(rms_norm(&self.post_attention_layernorm, x))
    }
}

impl Llama {
    /// Builds the decoder from `model.*` and `lm_head.*` tensors.
    pub fn load(loader: &mut WeightLoader, config: &LlamaConfig) -> Result<Self, LoadError> {
        let d = config.hidden_size;
        let embed_tokens = loader.embedding("model.embed_tokens", config.vocab_size, d)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| LlamaLayer::load(loader, &format!("model.layers.{i}"), config))
            .collect::<Result<Vec<_>, _>>()?;
        let norm = loader.rms_norm("model.norm", d, config.rms_norm_eps)?;
        let lm_head = if config.tie_word_embeddings {
            Linear {
                weight: embed_tokens.weight.clone().map(|w| w.transpose()),
                bias: None,
            }
        } else {
            loader.linear("lm_head", d, config.vocab_size, false)?
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
            rope: Rope::new(config.head_dim(), config.rope_theta),
            frozen_embedding_row: config.frozen_embedding_row(),
        })
    }

    /// Number of decoder layers (the size of the KV cache it needs).
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Token embeddings of `ids` `[batch, len]`. In training, the frozen row's embeddings
    /// enter detached, so that row gets no gradient (as in the reference's `padding_idx`).
    pub fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let embeds = self.embed_tokens.forward(ids.clone());
        match self.frozen_embedding_row {
            Some(row) if embeds.is_autodiff() => {
                let frozen = ids
                    .equal_elem(row as i64)
                    .unsqueeze_dim::<3>(2)
                    .expand(embeds.dims());
                embeds.clone().mask_where(frozen, embeds.detach())
            }
            _ => embeds,
        }
    }

    /// Runs the decoder on `embeds` `[batch, len, hidden]` after what `cache` holds;
    /// `valid[b][t]` marks real tokens (false = padding). Returns the final-norm hidden
    /// states `[batch, len, hidden]`.
    pub fn forward_hidden(
        &self,
        embeds: Tensor<3>,
        valid: &[Vec<bool>],
        cache: &mut KvCache,
    ) -> Tensor<3> {
        let device = embeds.device();
        let (positions, mask) = cache.advance(valid, &device);
        let (cos, sin) = self.rope.tables(&positions, &device, embeds.dtype());
        let inputs = LayerInputs { cos, sin, mask };
        let hidden = self
            .layers
            .iter()
            .enumerate()
            .fold(embeds, |x, (i, layer)| layer.forward(x, &inputs, cache, i));
        rms_norm(&self.norm, hidden)
    }

    /// Logits `[batch, len, vocab]` of hidden states (in their dtype).
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        linear(&self.lm_head, hidden)
    }
}
