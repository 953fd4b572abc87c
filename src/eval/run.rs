//! Running evaluation episodes through the model: greedy answers in left-padded batches,
//! image features computed once per run (up to a cache budget), every answer scored and
//! appended to `predictions.jsonl` as soon as its batch is done, so an interrupted run
//! resumes without recomputing finished episodes.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::{Device, Tensor};
use lcl_model::{KvCache, LclModel};
use serde::{Deserialize, Serialize};

use crate::data::eval_episodes::EvalEpisode;
use crate::eval::answerer::Answerer;
use crate::eval::prototype::PooledFeatures;
use crate::eval::score::is_correct;
use crate::image::pixel_batch;
use crate::template::prompt_ids;

/// One scored answer: a line of `predictions.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The run (suite, ablation) it belongs to.
    pub run: String,
    /// Support images in all.
    pub shots: usize,
    /// The episode's id.
    pub episode: String,
    /// Prompt length in tokens (0 for the prototype baseline, which reads no prompt).
    pub prompt_tokens: usize,
    /// The generated text, decoded raw.
    pub prediction: String,
    /// The query's class name.
    pub positive: String,
    /// The other class's name.
    pub negative: String,
    /// The verdict: the original's rule on the generated answer, or (likelihood scoring)
    /// whether the positive answer is the more likely one, or (prototype) whether the
    /// chosen support label is the positive.
    pub correct: bool,
    /// Likelihood scoring: log-likelihoods of the positive and the negative answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_likelihoods: Option<(f64, f64)>,
}

/// How answers are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScoreMode {
    /// Greedy generation scored with the original's rule.
    Generate,
    /// The more likely of the two candidate answers.
    Likelihood,
    /// Vision-only baseline, no language model: the label of the support class whose mean
    /// pooled vision feature is closest to the query's.
    Prototype,
}

impl Prediction {
    /// The key resume matches on.
    pub fn key(&self) -> (String, usize, String) {
        (self.run.clone(), self.shots, self.episode.clone())
    }
}

/// The predictions file of an output folder, read back for resuming and reports. A last
/// line cut short by an interruption (no final newline) is dropped from the file; any other
/// malformed line is an error naming it.
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if !text.is_empty() && !text.ends_with('\n') {
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        eprintln!(
            "{}: dropping an unfinished last line (interrupted run)",
            path.display()
        );
        std::fs::write(path, &text[..complete])
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    crate::data::jsonl::read(path)
}

/// What a run computes once and reuses: image features kept on the device while the budget
/// lasts, and the KV cache of the last support set.
pub struct RunCache {
    features: HashMap<PathBuf, Tensor<2>>,
    capacity: usize,
    prefix: Option<(Prompt, KvCache)>,
    pooled: PooledFeatures,
}

/// A prompt (or prompt part): its ids and the images of its `<im_patch>` runs.
#[derive(Debug, Clone, PartialEq)]
struct Prompt {
    ids: Vec<u32>,
    images: Vec<PathBuf>,
}

/// An encoded episode split into its support prefix and its query segment.
struct SplitPrompt {
    prefix: Prompt,
    query: Prompt,
}

impl RunCache {
    /// A cache of at most `capacity` images' features.
    pub fn new(capacity: usize) -> Self {
        Self {
            features: HashMap::new(),
            capacity,
            prefix: None,
            pooled: PooledFeatures::default(),
        }
    }

    /// Projected features `[images, patches, width]` of `images`, in order.
    pub fn features(
        &mut self,
        model: &LclModel,
        images: &[PathBuf],
        image_size: usize,
        device: &Device,
    ) -> Result<Tensor<3>> {
        let missing: Vec<&PathBuf> = {
            let mut seen = HashSet::new();
            images
                .iter()
                .filter(|p| !self.features.contains_key(*p) && seen.insert(*p))
                .collect()
        };
        let mut fresh: HashMap<&PathBuf, Tensor<2>> = HashMap::new();
        if !missing.is_empty() {
            let encoded = model.encode_images(pixel_batch(&missing, image_size, device)?);
            let [n, patches, width] = encoded.dims();
            for (i, image) in missing.iter().enumerate() {
                let one = encoded
                    .clone()
                    .slice([i..i + 1, 0..patches, 0..width])
                    .reshape([patches, width]);
                if self.features.len() < self.capacity {
                    self.features.insert((*image).clone(), one.clone());
                }
                fresh.insert(image, one);
            }
            debug_assert_eq!(n, missing.len());
        }
        let rows: Vec<Tensor<2>> = images
            .iter()
            .map(|p| {
                self.features
                    .get(p)
                    .or_else(|| fresh.get(p))
                    .expect("computed above")
                    .clone()
            })
            .collect();
        Ok(Tensor::stack(rows, 0))
    }
}

impl Answerer<'_> {
    /// Answers `episodes` (in order): `(prompt tokens, raw answer)` each. With prefix reuse,
    /// consecutive episodes whose support shots render the same run as one batch after
    /// that prefix, computed once (and kept for the next batch).
    pub fn answer(
        &self,
        episodes: &[EvalEpisode],
        cache: &mut RunCache,
    ) -> Result<Vec<(usize, String)>> {
        let mut prompts = Vec::with_capacity(episodes.len());
        for eval in episodes {
            let encoded = eval.episode.encode(self.tokenizer, self.patches)?;
            let (query, support) = encoded.segments.split_last().expect("a query segment");
            let support_images = encoded.images.len() - 1;
            prompts.push(SplitPrompt {
                prefix: Prompt {
                    ids: prompt_ids(support),
                    images: encoded.images[..support_images].to_vec(),
                },
                query: Prompt {
                    ids: query.ids.clone(),
                    images: encoded.images[support_images..].to_vec(),
                },
            });
        }
        if !self.reuse_prefix || prompts.iter().all(|p| p.prefix.ids.is_empty()) {
            return self.answer_whole(&prompts, cache);
        }
        let mut answers = Vec::with_capacity(episodes.len());
        for group in prompts.chunk_by(|a, b| a.prefix == b.prefix) {
            answers.extend(self.answer_after_prefix(group, cache)?);
        }
        Ok(answers)
    }

    /// Prompts sharing one prefix: the prefix's cache (reused or computed), then every query
    /// segment as one batch after it.
    fn answer_after_prefix(
        &self,
        group: &[SplitPrompt],
        cache: &mut RunCache,
    ) -> Result<Vec<(usize, String)>> {
        let prefix = &group[0].prefix;
        if cache.prefix.as_ref().is_none_or(|(p, _)| p != prefix) {
            let features =
                cache.features(self.model, &prefix.images, self.image_size, self.device)?;
            let kv = self.model.prefill(&prefix.ids, Some(features))?;
            cache.prefix = Some((prefix.clone(), kv));
        }
        let suffixes: Vec<Vec<u32>> = group.iter().map(|p| p.query.ids.clone()).collect();
        let images: Vec<PathBuf> = group
            .iter()
            .flat_map(|p| p.query.images.iter().cloned())
            .collect();
        let features = cache.features(self.model, &images, self.image_size, self.device)?;
        let (_, kv) = cache.prefix.as_ref().expect("set above");
        let generation =
            self.model
                .generate_after(kv, &suffixes, Some(features), &self.generation)?;
        Ok(self.decode(group, generation.tokens))
    }

    /// Whole prompts as one left-padded batch.
    fn answer_whole(
        &self,
        prompts: &[SplitPrompt],
        cache: &mut RunCache,
    ) -> Result<Vec<(usize, String)>> {
        let ids: Vec<Vec<u32>> = prompts
            .iter()
            .map(|p| [p.prefix.ids.as_slice(), &p.query.ids].concat())
            .collect();
        let images: Vec<PathBuf> = prompts
            .iter()
            .flat_map(|p| p.prefix.images.iter().chain(&p.query.images).cloned())
            .collect();
        let features = cache.features(self.model, &images, self.image_size, self.device)?;
        let generation = self
            .model
            .generate(&ids, Some(features), &self.generation)?;
        Ok(self.decode(prompts, generation.tokens))
    }

    /// `(prompt tokens, raw answer)` of each prompt.
    fn decode(&self, prompts: &[SplitPrompt], tokens: Vec<Vec<u32>>) -> Vec<(usize, String)> {
        prompts
            .iter()
            .zip(tokens)
            .map(|(p, t)| {
                (
                    p.prefix.ids.len() + p.query.ids.len(),
                    self.tokenizer.decode(&t, true),
                )
            })
            .collect()
    }
}

/// Answers and scores every episode of `run` at `shots` not yet in `done`, in batches of
/// `batch_size`, appending each batch to `predictions` (a JSON-lines file) as it finishes.
/// `progress` is told how many episodes were just finished.
#[allow(clippy::too_many_arguments)]
pub fn run_episodes(
    answerer: &Answerer,
    cache: &mut RunCache,
    run: &str,
    shots: usize,
    episodes: &[EvalEpisode],
    done: &HashSet<(String, usize, String)>,
    mode: ScoreMode,
    batch_size: usize,
    predictions: &Path,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Prediction>> {
    let todo: Vec<&EvalEpisode> = episodes
        .iter()
        .filter(|e| !done.contains(&(run.to_string(), shots, e.id.clone())))
        .collect();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(predictions)
        .with_context(|| format!("{}: cannot open for appending", predictions.display()))?;
    let mut scored = Vec::with_capacity(todo.len());
    for chunk in todo.chunks(batch_size.max(1)) {
        let batch: Vec<EvalEpisode> = chunk.iter().map(|e| (*e).clone()).collect();
        let record =
            |e: &EvalEpisode, prompt_tokens, prediction, correct, log_likelihoods| Prediction {
                run: run.to_string(),
                shots,
                episode: e.id.clone(),
                prompt_tokens,
                prediction,
                positive: e.positive.clone(),
                negative: e.negative.clone(),
                correct,
                log_likelihoods,
            };
        let records: Vec<Prediction> = match mode {
            ScoreMode::Generate => answerer
                .answer(&batch, cache)?
                .into_iter()
                .zip(&batch)
                .map(|((tokens, text), e)| {
                    let correct = is_correct(&text, &e.positive, &e.negative);
                    record(e, tokens, text, correct, None)
                })
                .collect(),
            ScoreMode::Likelihood => answerer
                .likelihoods(&batch, cache)?
                .into_iter()
                .zip(&batch)
                .map(|(c, e)| {
                    let correct = c.positive > c.negative;
                    let chosen = if correct { &e.positive } else { &e.negative };
                    let text = crate::template::query_answer(chosen);
                    record(
                        e,
                        c.prompt_tokens,
                        text,
                        correct,
                        Some((c.positive, c.negative)),
                    )
                })
                .collect(),
            ScoreMode::Prototype => answerer
                .prototype_choices(&batch, &mut cache.pooled)?
                .into_iter()
                .zip(&batch)
                .map(|(choice, e)| {
                    let text = choice
                        .label
                        .as_deref()
                        .map(crate::template::query_answer)
                        .unwrap_or_default();
                    let correct = choice.label.as_deref() == Some(e.positive.as_str());
                    record(e, 0, text, correct, None)
                })
                .collect(),
        };
        let mut lines = String::new();
        for record in records {
            lines.push_str(&serde_json::to_string(&record)?);
            lines.push('\n');
            scored.push(record);
        }
        file.write_all(lines.as_bytes())
            .and_then(|()| file.flush())
            .with_context(|| format!("{}: cannot write", predictions.display()))?;
        progress(chunk.len());
    }
    Ok(scored)
}
