//! The key/value cache of the decoder, and which cached positions are real tokens.

use burn::tensor::{Bool, Device, Tensor, TensorData};

/// Keys and values of every layer for the tokens seen so far, plus the padding state of each
/// row. One cache serves one batch from prefill to the last decoding step.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<LayerCache>>,
    /// `valid[b][s]`: whether cached position `s` of row `b` is a real token (not padding).
    valid: Vec<Vec<bool>>,
}

#[derive(Debug, Clone)]
struct LayerCache {
    keys: Tensor<4>,
    values: Tensor<4>,
    len: usize,
}

/// How attention is masked for one forward call.
pub enum AttentionMask {
    /// Square causal attention with no padding: the backend's causal mode.
    Causal,
    /// Every query sees every cached key (one new token per row, no padding).
    None,
    /// An explicit mask `[batch, 1, new, total]`, true = masked out.
    Explicit(Box<Tensor<4, Bool>>),
}

impl KvCache {
    /// An empty cache for a decoder of `num_layers` layers.
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
            valid: Vec::new(),
        }
    }

    /// Number of cached positions (padding included).
    pub fn len(&self) -> usize {
        self.valid.first().map_or(0, Vec::len)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of rows, once something is cached.
    pub fn batch_size(&self) -> Option<usize> {
        (!self.valid.is_empty()).then_some(self.valid.len())
    }

    /// This one-row cache repeated for `rows` rows (a shared prompt prefix reused by
    /// several continuations).
    pub fn repeat_rows(&self, rows: usize) -> Self {
        assert_eq!(self.valid.len(), 1, "only a one-row cache can be repeated");
        Self {
            layers: self
                .layers
                .iter()
                .map(|layer| {
                    layer.as_ref().map(|l| LayerCache {
                        keys: l.keys.clone().repeat_dim(0, rows),
                        values: l.values.clone().repeat_dim(0, rows),
                        len: l.len,
                    })
                })
                .collect(),
            valid: vec![self.valid[0].clone(); rows],
        }
    }

    /// Registers `new_valid[b][t]` for the tokens of the next forward call and returns their
    /// positions (the count of real tokens before each one in its row) and the mask to use.
    pub fn advance(
        &mut self,
        new_valid: &[Vec<bool>],
        device: &Device,
    ) -> (Vec<Vec<usize>>, AttentionMask) {
        if self.valid.is_empty() {
            self.valid = vec![Vec::new(); new_valid.len()];
        }
        assert_eq!(
            self.valid.len(),
            new_valid.len(),
            "batch size changed mid-sequence"
        );
        let past = self.len();
        let new_len = new_valid.first().map_or(0, Vec::len);
        let mut positions = Vec::with_capacity(new_valid.len());
        for (row, new_row) in self.valid.iter_mut().zip(new_valid) {
            assert_eq!(
                new_row.len(),
                new_len,
                "rows of one call must have equal length"
            );
            let mut seen = row.iter().filter(|v| **v).count();
            let mut row_positions = Vec::with_capacity(new_len);
            for &is_valid in new_row {
                // Padding gets position 1 as in transformers; its outputs are never used.
                row_positions.push(if is_valid { seen } else { 1 });
                seen += usize::from(is_valid);
            }
            row.extend_from_slice(new_row);
            positions.push(row_positions);
        }
        let padded = self.valid.iter().flatten().any(|v| !v);
        let mask = if !padded && past == 0 {
            AttentionMask::Causal
        } else if !padded && new_len == 1 {
            AttentionMask::None
        } else {
            AttentionMask::Explicit(Box::new(self.explicit_mask(past, new_len, device)))
        };
        (positions, mask)
    }

    /// Causal + padding mask; a query always sees itself, so no row is fully masked.
    fn explicit_mask(&self, past: usize, new_len: usize, device: &Device) -> Tensor<4, Bool> {
        let total = past + new_len;
        let batch = self.valid.len();
        let mut masked = Vec::with_capacity(batch * new_len * total);
        for row in &self.valid {
            for q in past..total {
                masked.extend((0..total).map(|k| k != q && (k > q || !row[k])));
            }
        }
        Tensor::from_data(TensorData::new(masked, [batch, 1, new_len, total]), device)
    }

    /// Appends this call's keys and values `[batch, kv_heads, new, head_dim]` to `layer` and
    /// returns all keys and values so far.
    pub fn append(
        &mut self,
        layer: usize,
        keys: Tensor<4>,
        values: Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        let slot = &mut self.layers[layer];
        let [batch, heads, new, dim] = keys.dims();
        let entry = match slot.take() {
            None => LayerCache {
                keys,
                values,
                len: new,
            },
            Some(mut cache) => {
                let end = cache.len + new;
                let capacity = cache.keys.dims()[2];
                if end > capacity {
                    // Grow in blocks of 256 positions: decoding appends one token at a time.
                    let grow = end.max(capacity + 256) - capacity;
                    let zeros =
                        Tensor::zeros([batch, heads, grow, dim], (&keys.device(), keys.dtype()));
                    cache.keys = Tensor::cat(vec![cache.keys, zeros.clone()], 2);
                    cache.values = Tensor::cat(vec![cache.values, zeros], 2);
                }
                let range = [0..batch, 0..heads, cache.len..end, 0..dim];
                cache.keys = cache.keys.slice_assign(range.clone(), keys);
                cache.values = cache.values.slice_assign(range, values);
                cache.len = end;
                cache
            }
        };
        let range = [0..batch, 0..heads, 0..entry.len, 0..dim];
        let out = (
            entry.keys.clone().slice(range.clone()),
            entry.values.clone().slice(range),
        );
        *slot = Some(entry);
        out
    }
}
