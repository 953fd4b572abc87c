//! Text generation with the KV cache: greedy by default, temperature / top-p sampling on
//! request, stopping at `</s>`, after `max_new_tokens`, or when an observer of the tokens
//! (a server streaming them, a stop string) ends a row.

use burn::tensor::Tensor;

use crate::batch::TokenBatch;
use crate::cache::KvCache;
use crate::lcl::{InputError, LclModel};
use crate::rng::Rng;

/// How to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Upper bound on generated tokens per row.
    pub max_new_tokens: usize,
    /// End-of-sequence id (`</s>` = 2 for LLaMA); generation of a row stops after it.
    pub eos_token_id: u32,
    /// Id used to left-pad prompts and to fill finished rows.
    pub pad_token_id: u32,
    /// 0 = greedy (the original's evaluation); otherwise logits are divided by it and sampled.
    pub temperature: f64,
    /// Nucleus sampling mass (1.0 = off). Only used when sampling.
    pub top_p: f64,
    /// Seed of the sampler.
    pub seed: u64,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 32,
            eos_token_id: 2,
            pad_token_id: 0,
            temperature: 0.0,
            top_p: 1.0,
            seed: 42,
        }
    }
}

/// Sees each token as a row generates it, `(row, token)`, and says whether that row goes on
/// (`false` ends it there, as `</s>` does).
pub type TokenObserver<'a> = dyn FnMut(usize, u32) -> bool + 'a;

/// What `generate` returns.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Generated ids per row, ending with `eos` when it was produced.
    pub tokens: Vec<Vec<u32>>,
    /// Next-token logits at the last prompt position of each row, `[batch, vocab]`.
    pub prompt_logits: Tensor<2>,
}

impl LclModel {
    /// Generates a continuation of each prompt. `image_features` are the projected features
    /// of all images of all prompts, in order (see [`LclModel::encode_images`]).
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        image_features: Option<Tensor<3>>,
        config: &GenerationConfig,
    ) -> Result<Generation, InputError> {
        self.generate_observed(prompts, image_features, config, &mut |_, _| true)
    }

    /// [`LclModel::generate`], showing each token to `observer` as it is generated.
    pub fn generate_observed(
        &self,
        prompts: &[Vec<u32>],
        image_features: Option<Tensor<3>>,
        config: &GenerationConfig,
        observer: &mut TokenObserver,
    ) -> Result<Generation, InputError> {
        self.continue_prompts(self.new_cache(), prompts, image_features, config, observer)
    }

    /// Runs a one-row prompt prefix (e.g. a support set shared by several queries) and
    /// returns its cache, for [`LclModel::generate_after`].
    pub fn prefill(
        &self,
        prefix: &[u32],
        image_features: Option<Tensor<3>>,
    ) -> Result<KvCache, InputError> {
        if prefix.is_empty() {
            return Err(InputError("cannot prefill an empty prefix".into()));
        }
        let mut cache = self.new_cache();
        let batch = TokenBatch::left_padded(&[prefix.to_vec()], 0);
        self.forward_hidden(&batch, image_features, &mut cache)?;
        Ok(cache)
    }

    /// Generates a continuation of `prefix + suffix` for each suffix, computing the shared
    /// prefix once (`prefix` from [`LclModel::prefill`]); `image_features` are those of the
    /// suffixes only. Gives the answers of [`LclModel::generate`] on the whole prompts.
    pub fn generate_after(
        &self,
        prefix: &KvCache,
        suffixes: &[Vec<u32>],
        image_features: Option<Tensor<3>>,
        config: &GenerationConfig,
    ) -> Result<Generation, InputError> {
        self.generate_after_observed(prefix, suffixes, image_features, config, &mut |_, _| true)
    }

    /// [`LclModel::generate_after`], showing each token to `observer` as it is generated.
    pub fn generate_after_observed(
        &self,
        prefix: &KvCache,
        suffixes: &[Vec<u32>],
        image_features: Option<Tensor<3>>,
        config: &GenerationConfig,
        observer: &mut TokenObserver,
    ) -> Result<Generation, InputError> {
        self.continue_prompts(
            prefix.repeat_rows(suffixes.len()),
            suffixes,
            image_features,
            config,
            observer,
        )
    }

    fn continue_prompts(
        &self,
        mut cache: KvCache,
        prompts: &[Vec<u32>],
        image_features: Option<Tensor<3>>,
        config: &GenerationConfig,
        observer: &mut TokenObserver,
    ) -> Result<Generation, InputError> {
        if prompts.iter().any(Vec::is_empty) {
            return Err(InputError("cannot generate from an empty prompt".into()));
        }
        let batch = TokenBatch::left_padded(prompts, config.pad_token_id);
        let hidden = self.forward_hidden(&batch, image_features, &mut cache)?;
        let prompt_logits = self.last_logits(hidden);
        let mut sampler = TokenSampler::new(config);
        let mut tokens: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        let mut finished = vec![config.max_new_tokens == 0; prompts.len()];
        let mut logits = prompt_logits.clone();
        while !finished.iter().all(|&done| done) {
            let next = sampler.pick(logits);
            let mut step = Vec::with_capacity(next.len());
            for (row, token) in next.into_iter().enumerate() {
                if finished[row] {
                    step.push(config.pad_token_id);
                    continue;
                }
                tokens[row].push(token);
                step.push(token);
                let goes_on = observer(row, token);
                finished[row] = !goes_on
                    || token == config.eos_token_id
                    || tokens[row].len() >= config.max_new_tokens;
            }
            if finished.iter().all(|&done| done) {
                break;
            }
            let hidden = self.forward_hidden(&TokenBatch::step(&step), None, &mut cache)?;
            logits = self.last_logits(hidden);
        }
        Ok(Generation {
            tokens,
            prompt_logits,
        })
    }

    /// Logits `[batch, vocab]` of the last position of `hidden` `[batch, len, width]`.
    pub fn last_logits(&self, hidden: Tensor<3>) -> Tensor<2> {
        let [batch, len, width] = hidden.dims();
        let last = hidden.slice([0..batch, len - 1..len, 0..width]);
        let logits = self.llm.logits(last);
        let vocab = logits.dims()[2];
        logits.reshape([batch, vocab])
    }
}

/// Picks the next token of each row from its logits.
struct TokenSampler {
    temperature: f64,
    top_p: f64,
    rng: Rng,
}

impl TokenSampler {
    fn new(config: &GenerationConfig) -> Self {
        Self {
            temperature: config.temperature,
            top_p: config.top_p,
            rng: Rng::new(config.seed),
        }
    }

    fn pick(&mut self, logits: Tensor<2>) -> Vec<u32> {
        let [_, vocab] = logits.dims();
        let values: Vec<f32> = logits
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("f32 logits");
        values
            .chunks(vocab)
            .map(|row| {
                if self.temperature <= 0.0 {
                    argmax(row)
                } else {
                    self.sample(row)
                }
            })
            .collect()
    }

    fn sample(&mut self, row: &[f32]) -> u32 {
        let scaled: Vec<f64> = row
            .iter()
            .map(|&l| f64::from(l) / self.temperature)
            .collect();
        let max = scaled.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut probs: Vec<(usize, f64)> = scaled
            .iter()
            .enumerate()
            .map(|(i, l)| (i, (l - max).exp()))
            .collect();
        let total: f64 = probs.iter().map(|(_, p)| p).sum();
        probs.iter_mut().for_each(|(_, p)| *p /= total);
        probs.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut kept = 0.0;
        let cut = probs
            .iter()
            .position(|(_, p)| {
                kept += p;
                kept >= self.top_p
            })
            .map_or(probs.len(), |i| i + 1);
        probs.truncate(cut);
        let weights: Vec<f64> = probs.iter().map(|(_, p)| *p).collect();
        probs[self.rng.weighted(&weights)].0 as u32
    }
}

/// Index of the largest value; the first one on ties, as `torch.argmax`.
pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best as u32
}
