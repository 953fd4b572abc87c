//! Rows of token ids padded to one length, with the padding marked.

/// Token ids of several rows padded to the same length; `valid` is false on padding.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    /// `[batch][len]` token ids.
    pub ids: Vec<Vec<u32>>,
    /// `[batch][len]`: true for real tokens, false for padding.
    pub valid: Vec<Vec<bool>>,
}

impl TokenBatch {
    /// Pads on the left (evaluation and generation: every row ends at the same position).
    pub fn left_padded(rows: &[Vec<u32>], pad_id: u32) -> Self {
        Self::padded(rows, pad_id, true)
    }

    /// Pads on the right (training).
    pub fn right_padded(rows: &[Vec<u32>], pad_id: u32) -> Self {
        Self::padded(rows, pad_id, false)
    }

    fn padded(rows: &[Vec<u32>], pad_id: u32, left: bool) -> Self {
        let len = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut batch = Self {
            ids: Vec::with_capacity(rows.len()),
            valid: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            let pad = len - row.len();
            let (mut ids, mut valid) = (Vec::with_capacity(len), Vec::with_capacity(len));
            if left {
                ids.extend(std::iter::repeat_n(pad_id, pad));
                valid.extend(std::iter::repeat_n(false, pad));
            }
            ids.extend_from_slice(row);
            valid.extend(std::iter::repeat_n(true, row.len()));
            if !left {
                ids.extend(std::iter::repeat_n(pad_id, pad));
                valid.extend(std::iter::repeat_n(false, pad));
            }
            batch.ids.push(ids);
            batch.valid.push(valid);
        }
        batch
    }

    /// One unpadded row per token: the input of one decoding step.
    pub fn step(tokens: &[u32]) -> Self {
        Self {
            ids: tokens.iter().map(|t| vec![*t]).collect(),
            valid: vec![vec![true]; tokens.len()],
        }
    }

    /// Number of rows.
    pub fn batch_size(&self) -> usize {
        self.ids.len()
    }

    /// Padded length of every row.
    pub fn len(&self) -> usize {
        self.ids.first().map_or(0, Vec::len)
    }

    /// Whether the rows are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
