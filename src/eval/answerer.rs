//! What answers evaluation episodes: the model, its tokenizer and the decoding settings.
//! Each scoring adds its methods (`run.rs` greedy answers, `likelihood.rs` candidate
//! log-likelihoods, `prototype.rs` the vision-only baseline).

use burn::tensor::Device;
use lcl_model::{GenerationConfig, LclModel};

use crate::tokenizer::LclTokenizer;

/// The model and what it needs to answer episodes.
pub struct Answerer<'a> {
    /// The model.
    pub model: &'a LclModel,
    /// Its tokenizer.
    pub tokenizer: &'a LclTokenizer,
    /// `<im_patch>` tokens per image.
    pub patches: usize,
    /// Input resolution of the vision tower.
    pub image_size: usize,
    /// Greedy decoding settings (eos and pad ids set from the tokenizer).
    pub generation: GenerationConfig,
    /// Encode a support set once for all the queries that share it.
    pub reuse_prefix: bool,
    /// The device.
    pub device: &'a Device,
}
