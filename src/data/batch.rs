//! Episodes as tensors: one [`EpisodeItem`] per episode (ids, labels, preprocessed images),
//! and the Burn [`Batcher`] that pads them into an [`EpisodeBatch`].

use std::path::Path;

use anyhow::Result;
use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use lcl_model::batch::TokenBatch;

use crate::episode::{EncodedEpisode, IGNORE_INDEX};
use crate::image::preprocess_file;

/// One encoded episode with its images decoded and preprocessed (the expensive part, done in
/// the data loader's worker threads).
#[derive(Debug, Clone)]
pub struct EpisodeItem {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Loss labels ([`IGNORE_INDEX`] where unsupervised).
    pub labels: Vec<i64>,
    /// `[images, 3, size, size]` pixel values, flattened, in prompt order.
    pub pixels: Vec<f32>,
    /// Number of images.
    pub images: usize,
}

impl EpisodeItem {
    /// Preprocesses the images of `episode` (under `root` when relative) at `size` pixels.
    pub fn new(episode: EncodedEpisode, root: &Path, size: u32) -> Result<Self> {
        let mut pixels = Vec::with_capacity(episode.images.len() * 3 * (size * size) as usize);
        for image in &episode.images {
            pixels.extend(preprocess_file(&root.join(image), size)?);
        }
        Ok(Self {
            images: episode.images.len(),
            ids: episode.ids,
            labels: episode.labels,
            pixels,
        })
    }
}

/// Which side padding goes: right for training, left for evaluation (generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Pad after the tokens.
    Right,
    /// Pad before the tokens.
    Left,
}

/// Pads episodes into one batch.
#[derive(Debug, Clone)]
pub struct EpisodeBatcher {
    /// Id written into padded positions (never attended to, never supervised).
    pub pad_id: u32,
    /// Padding side.
    pub padding: Padding,
    /// Image side in pixels.
    pub image_size: usize,
}

/// A padded batch of episodes.
#[derive(Debug, Clone)]
pub struct EpisodeBatch {
    /// `[batch, len]` token ids.
    pub input_ids: Tensor<2, Int>,
    /// `[batch, len]`: true on real tokens.
    pub attention_mask: Tensor<2, Bool>,
    /// `[batch, len]` loss labels, [`IGNORE_INDEX`] on padding.
    pub labels: Tensor<2, Int>,
    /// The same labels on the host, row after row.
    pub label_values: Vec<i64>,
    /// `[images, 3, size, size]`: every row's images, row after row, in prompt order.
    pub pixel_values: Tensor<4>,
    /// The token rows as plain ids and validity (what the model's embedding step reads).
    pub tokens: TokenBatch,
    /// Images per row.
    pub images_per_row: Vec<usize>,
}

impl Batcher<EpisodeItem, EpisodeBatch> for EpisodeBatcher {
    fn batch(&self, items: Vec<EpisodeItem>, device: &Device) -> EpisodeBatch {
        let rows: Vec<Vec<u32>> = items.iter().map(|item| item.ids.clone()).collect();
        let tokens = match self.padding {
            Padding::Right => TokenBatch::right_padded(&rows, self.pad_id),
            Padding::Left => TokenBatch::left_padded(&rows, self.pad_id),
        };
        let (batch, len) = (tokens.batch_size(), tokens.len());
        let mut labels = Vec::with_capacity(batch * len);
        for item in &items {
            let pad = std::iter::repeat_n(IGNORE_INDEX, len - item.labels.len());
            match self.padding {
                Padding::Right => labels.extend(item.labels.iter().copied().chain(pad)),
                Padding::Left => labels.extend(pad.chain(item.labels.iter().copied())),
            }
        }
        let ids: Vec<i64> = tokens.ids.iter().flatten().map(|&id| id.into()).collect();
        let valid: Vec<bool> = tokens.valid.iter().flatten().copied().collect();
        let images: usize = items.iter().map(|item| item.images).sum();
        let pixels: Vec<f32> = items.iter().flat_map(|item| item.pixels.clone()).collect();
        let size = self.image_size;
        EpisodeBatch {
            input_ids: Tensor::from_data(TensorData::new(ids, [batch, len]), device),
            attention_mask: Tensor::from_data(TensorData::new(valid, [batch, len]), device),
            labels: Tensor::from_data(TensorData::new(labels.clone(), [batch, len]), device),
            label_values: labels,
            pixel_values: Tensor::from_data(
                TensorData::new(pixels, [images, 3, size, size]),
                device,
            ),
            images_per_row: items.iter().map(|item| item.images).collect(),
            tokens,
        }
    }
}
