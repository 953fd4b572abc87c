//! `--score likelihood`: instead of generating, rank the two candidate answers by the
//! model's log-likelihood of `there is "<name>" in the image.</s>` after the prompt (the
//! training format of the answer). Faster than generation and free of format failures.

use anyhow::{Result, bail};
use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;
use lcl_model::{LclModel, TokenBatch};

use crate::data::eval_episodes::EvalEpisode;
use crate::episode::IGNORE_INDEX;
use crate::eval::answerer::Answerer;
use crate::eval::run::RunCache;

/// Log-likelihoods of one episode's two candidate answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidates {
    /// Prompt length in tokens (without an answer).
    pub prompt_tokens: usize,
    /// Summed log-probability of the positive answer and its `</s>`.
    pub positive: f64,
    /// The same for the negative answer.
    pub negative: f64,
}

impl Answerer<'_> {
    /// The candidates' log-likelihoods of each episode, both answers of all episodes in one
    /// left-padded batch.
    pub fn likelihoods(
        &self,
        episodes: &[EvalEpisode],
        cache: &mut RunCache,
    ) -> Result<Vec<Candidates>> {
        let mut rows = Vec::with_capacity(2 * episodes.len());
        let mut answer_lens = Vec::with_capacity(2 * episodes.len());
        let mut images = Vec::new();
        let mut prompt_tokens = Vec::with_capacity(episodes.len());
        for eval in episodes {
            for label in [&eval.positive, &eval.negative] {
                let mut episode = eval.episode.clone();
                episode.answer = Some(label.clone());
                let encoded = episode.encode(self.tokenizer, self.patches)?;
                let answer = encoded
                    .labels
                    .iter()
                    .filter(|&&l| l != IGNORE_INDEX)
                    .count();
                if answer == 0 {
                    bail!("episode {}: the answer {label:?} has no tokens", eval.id);
                }
                answer_lens.push(answer);
                images.extend(encoded.images);
                rows.push(encoded.ids);
            }
            prompt_tokens.push(rows[rows.len() - 2].len() - answer_lens[answer_lens.len() - 2]);
        }
        let features = cache.features(self.model, &images, self.image_size, self.device)?;
        let totals = answer_log_likelihoods(
            self.model,
            &rows,
            &answer_lens,
            Some(features),
            self.generation.pad_token_id,
        )?;
        Ok(prompt_tokens
            .into_iter()
            .zip(totals.chunks(2))
            .map(|(prompt_tokens, pair)| Candidates {
                prompt_tokens,
                positive: pair[0],
                negative: pair[1],
            })
            .collect())
    }
}

/// The summed log-probability of each row's last `answer_lens[r]` tokens given the tokens
/// before them: all rows in one left-padded batch; `features` are the projected features of
/// all rows' images, in order.
pub fn answer_log_likelihoods(
    model: &LclModel,
    rows: &[Vec<u32>],
    answer_lens: &[usize],
    features: Option<Tensor<3>>,
    pad_id: u32,
) -> Result<Vec<f64>> {
    let batch = TokenBatch::left_padded(rows, pad_id);
    let mut kv = model.new_cache();
    let hidden = model.forward_hidden(&batch, features, &mut kv)?;
    // The answers end every row: the positions predicting them are the last `longest` ones
    // before the end.
    let Some(&longest) = answer_lens.iter().max() else {
        return Ok(Vec::new());
    };
    let [count, len, width] = hidden.dims();
    if longest == 0 || longest >= len {
        bail!("an answer of {longest} tokens in rows of {len}");
    }
    let predicting = hidden.slice([0..count, len - 1 - longest..len - 1, 0..width]);
    let log_probs = log_softmax(model.llm.logits(predicting), 2);
    let vocab = log_probs.dims()[2];
    let values = log_probs.into_data().try_into_vec_as::<f32>()?;
    Ok(rows
        .iter()
        .zip(answer_lens)
        .enumerate()
        .map(|(r, (ids, &n))| {
            let targets = &ids[ids.len() - n..];
            targets
                .iter()
                .enumerate()
                .map(|(i, &token)| {
                    let position = longest - n + i;
                    f64::from(values[(r * longest + position) * vocab + token as usize])
                })
                .sum()
        })
        .collect())
}
