//! CLIP text transformer with Hugging Face `CLIPTextModel` semantics (transformers 4.29):
//! token + learned position embeddings, causal pre-norm encoder layers, `final_layer_norm`,
//! pooled at the end-of-text token.

use burn::module::Module;
use burn::nn::{Embedding, LayerNorm};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::checkpoint::{LoadError, WeightLoader};
use crate::clip::{ClipEncoderLayer, EncoderShape};
use crate::config::ClipTextConfig;

/// The CLIP text transformer (`text_model.*` of a CLIP checkpoint).
#[derive(Module, Debug)]
pub struct ClipTextTransformer {
    token_embedding: Embedding,
    position_embedding: Embedding,
    layers: Vec<ClipEncoderLayer>,
    final_layer_norm: LayerNorm,
    max_positions: usize,
}

impl From<&ClipTextConfig> for EncoderShape {
    fn from(c: &ClipTextConfig) -> Self {
        Self {
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps,
            quick_gelu: c.hidden_act == "quick_gelu",
            causal: true,
        }
    }
}

impl ClipTextTransformer {
    /// Builds the tower from `text_model.*` tensors (under the loader's prefix).
    pub fn load(loader: &mut WeightLoader, config: &ClipTextConfig) -> Result<Self, LoadError> {
        let d = config.hidden_size;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                ClipEncoderLayer::load(
                    loader,
                    &format!("text_model.encoder.layers.{i}"),
                    config.into(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            token_embedding: loader.embedding(
                "text_model.embeddings.token_embedding",
                config.vocab_size,
                d,
            )?,
            position_embedding: loader.embedding(
                "text_model.embeddings.position_embedding",
                config.max_position_embeddings,
                d,
            )?,
            layers,
            final_layer_norm: loader.layer_norm(
                "text_model.final_layer_norm",
                d,
                config.layer_norm_eps,
            )?,
            max_positions: config.max_position_embeddings,
        })
    }

    /// Longest token sequence the tower takes.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// HF's `pooler_output`: the final-layer-normed state of each row's last token, which
    /// the tokenizer makes the end-of-text token (what transformers 4.29 finds as the
    /// position of the largest id). Rows are token ids from `<|startoftext|>` to
    /// `<|endoftext|>`, at most [`Self::max_positions`] long; `[rows, width]`.
    pub fn pooled(&self, rows: &[Vec<u32>], device: &Device) -> Tensor<2> {
        let len = rows.iter().map(Vec::len).max().unwrap_or(0);
        assert!(
            rows.iter().all(|r| !r.is_empty()) && len <= self.max_positions,
            "every text needs 1..={} tokens",
            self.max_positions
        );
        // Right padding repeats the last token: causal attention keeps it out of every
        // position that is read.
        let ids: Vec<i64> = rows
            .iter()
            .flat_map(|r| {
                let last = *r.last().expect("non-empty");
                r.iter()
                    .copied()
                    .chain(std::iter::repeat_n(last, len - r.len()))
                    .map(i64::from)
            })
            .collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [rows.len(), len]), device);
        let positions = self
            .position_embedding
            .weight
            .val()
            .slice(0..len)
            .unsqueeze::<3>();
        let hidden = self
            .layers
            .iter()
            .fold(self.token_embedding.forward(ids) + positions, |x, layer| {
                layer.forward(x)
            });
        let hidden = self.final_layer_norm.forward(hidden);
        let width = hidden.dims()[2];
        let last: Vec<i64> = rows.iter().map(|r| r.len() as i64 - 1).collect();
        let last = Tensor::<1, Int>::from_data(TensorData::new(last, [rows.len()]), device)
            .reshape([rows.len(), 1, 1])
            .expand([rows.len(), 1, width]);
        hidden.gather(1, last).reshape([rows.len(), width])
    }
}
