//! The model's side of the server: requests rendered into the original template and
//! checked on the HTTP threads, then one worker thread that owns the model, takes the
//! queued requests in batches (greedy ones that share their support shots after one
//! prefill of those shots), streams each answer's tokens and scores the shown names.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError};

use burn::tensor::{Device, Tensor, TensorData};
use lcl_model::{GenerationConfig, LclModel};

use crate::episode::{Episode, IGNORE_INDEX, Shot};
use crate::eval::likelihood::answer_log_likelihoods;
use crate::image::preprocess_bytes;
use crate::serve::answer::{AnswerStream, FinishReason};
use crate::serve::error::ApiError;
use crate::serve::request::{ChatRequest, Sampling};
use crate::template::{evaluation_prompt, prompt_ids};
use crate::tokenizer::LclTokenizer;

/// A request ready for the model.
pub struct Job {
    /// Ids of the support shots (empty for a zero-shot question).
    pub prefix_ids: Vec<u32>,
    /// Ids of the query segment.
    pub query_ids: Vec<u32>,
    /// Preprocessed support images, in prompt order.
    pub support_pixels: Vec<Vec<f32>>,
    /// The preprocessed query image.
    pub query_pixels: Vec<f32>,
    /// Same key, same support shots (ids and image bytes).
    pub prefix_key: u128,
    /// When the names are scored: each distinct shown name, its whole row and answer length.
    pub name_rows: Vec<NameRow>,
    /// Token choice.
    pub sampling: Sampling,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Where the answer goes.
    pub events: Sender<Event>,
}

/// A shown name as the query's answer: `there is "<name>" in the image.</s>`.
pub struct NameRow {
    /// The name.
    pub name: String,
    /// The prompt with that answer.
    pub ids: Vec<u32>,
    /// Tokens of the answer at the end of `ids`.
    pub answer_len: usize,
}

/// What the worker sends back for a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// More of the answer's text.
    Delta(String),
    /// The whole answer.
    Done(Outcome),
    /// The model failed on this request.
    Failed(ApiError),
}

/// A finished answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Its text.
    pub text: String,
    /// Why it ended.
    pub finish: FinishReason,
    /// Prompt length in tokens (image patches included).
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// Each shown name's likelihood, when asked.
    pub names: Option<Vec<NameScore>>,
}

/// A shown name's likelihood as the answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NameScore {
    /// The name.
    pub name: String,
    /// Summed log-probability of `there is "<name>" in the image.</s>` after the prompt.
    pub log_likelihood: f64,
    /// Its share among the shown names (softmax of the log-likelihoods).
    pub probability: f64,
}

/// What the HTTP threads need of the model: its tokenizer, sizes and the queue.
pub struct Engine {
    tokenizer: Arc<LclTokenizer>,
    patches: usize,
    image_size: u32,
    max_context: usize,
    queue: SyncSender<Job>,
    waiting: Arc<AtomicUsize>,
    queue_capacity: usize,
}

impl Engine {
    /// Renders `request` into the template, preprocesses its images and checks its length.
    pub fn prepare(&self, request: ChatRequest, events: Sender<Event>) -> Result<Job, ApiError> {
        let labels: Vec<String> = request.support.iter().map(|(_, l)| l.clone()).collect();
        let segments = evaluation_prompt(&self.tokenizer, &labels, self.patches);
        let (query, support) = segments.split_last().expect("a query segment");
        let prefix_ids = prompt_ids(support);
        let prompt_tokens = prefix_ids.len() + query.ids.len();
        if prompt_tokens + request.max_tokens > self.max_context {
            return Err(ApiError::invalid(
                "messages",
                "context_length_exceeded",
                format!(
                    "the prompt is {prompt_tokens} tokens ({} images of {} patches) and \
                     max_tokens {}: over this server's limit of {} tokens (--max-context)",
                    labels.len() + 1,
                    self.patches,
                    request.max_tokens,
                    self.max_context
                ),
            ));
        }
        let pixels = |upload: &crate::serve::request::Upload| {
            preprocess_bytes(&upload.bytes, self.image_size).map_err(|err| {
                ApiError::invalid(upload.param.clone(), "invalid_image", format!("{err:#}"))
            })
        };
        let support_pixels = request
            .support
            .iter()
            .map(|(upload, _)| pixels(upload))
            .collect::<Result<Vec<_>, _>>()?;
        let query_pixels = pixels(&request.query)?;
        let mut key = xxhash_rust::xxh3::Xxh3::new();
        for id in &prefix_ids {
            key.update(&id.to_le_bytes());
        }
        for (upload, _) in &request.support {
            key.update(&(upload.bytes.len() as u64).to_le_bytes());
            key.update(&upload.bytes);
        }
        let name_rows = if request.score_names {
            self.name_rows(&labels)?
        } else {
            Vec::new()
        };
        Ok(Job {
            prefix_ids,
            query_ids: query.ids.clone(),
            support_pixels,
            query_pixels,
            prefix_key: key.digest128(),
            name_rows,
            sampling: request.sampling,
            max_tokens: request.max_tokens,
            stop: request.stop,
            events,
        })
    }

    /// The whole row of each distinct shown name as the query's answer (the training
    /// format, as `--score likelihood` scores it).
    fn name_rows(&self, labels: &[String]) -> Result<Vec<NameRow>, ApiError> {
        let mut names: Vec<&String> = Vec::new();
        for label in labels {
            if !names.contains(&label) {
                names.push(label);
            }
        }
        // The episode is only rendered: its image paths are never read.
        let support: Vec<Shot> = labels
            .iter()
            .map(|label| Shot {
                image: PathBuf::new(),
                label: label.clone(),
            })
            .collect();
        names
            .into_iter()
            .map(|name| {
                let mut episode = Episode::evaluation(support.clone(), PathBuf::new());
                episode.answer = Some(name.clone());
                let encoded = episode
                    .encode(&self.tokenizer, self.patches)
                    .map_err(|err| {
                        ApiError::invalid("messages", "invalid_label", format!("{err:#}"))
                    })?;
                let answer_len = encoded
                    .labels
                    .iter()
                    .filter(|&&l| l != IGNORE_INDEX)
                    .count();
                Ok(NameRow {
                    name: name.clone(),
                    ids: encoded.ids,
                    answer_len,
                })
            })
            .collect()
    }

    /// Queues a job; a full queue is refused (429) rather than waited on.
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(err) => {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                Err(match err {
                    TrySendError::Full(_) => ApiError::new(
                        429,
                        "queue_full",
                        format!(
                            "{} requests are already waiting (--max-queue): try again shortly",
                            self.queue_capacity
                        ),
                    ),
                    TrySendError::Disconnected(_) => {
                        ApiError::new(503, "shutting_down", "the server is stopping")
                    }
                })
            }
        }
    }

    /// Requests queued or being answered.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

/// The worker's settings.
pub struct WorkerConfig {
    /// Most requests answered in one batch.
    pub max_batch: usize,
    /// Most requests waiting.
    pub max_queue: usize,
    /// The model's context in tokens.
    pub max_context: usize,
}

/// Starts the worker thread on `model` and returns the engine that feeds it.
pub fn start(
    model: LclModel,
    tokenizer: Arc<LclTokenizer>,
    patches: usize,
    image_size: u32,
    device: Device,
    config: WorkerConfig,
) -> (Engine, std::thread::JoinHandle<()>) {
    let (queue, jobs) = std::sync::mpsc::sync_channel(config.max_queue);
    let waiting = Arc::new(AtomicUsize::new(0));
    let worker = Worker {
        model,
        tokenizer: tokenizer.clone(),
        image_size: image_size as usize,
        device,
        waiting: waiting.clone(),
    };
    let max_batch = config.max_batch.max(1);
    let thread = std::thread::Builder::new()
        .name("lcl-model".into())
        .spawn(move || worker.run(jobs, max_batch))
        .expect("cannot start the model thread");
    let engine = Engine {
        tokenizer,
        patches,
        image_size,
        max_context: config.max_context,
        queue,
        waiting,
        queue_capacity: config.max_queue,
    };
    (engine, thread)
}

struct Worker {
    model: LclModel,
    tokenizer: Arc<LclTokenizer>,
    image_size: usize,
    device: Device,
    waiting: Arc<AtomicUsize>,
}

impl Worker {
    /// Answers jobs until every sender is gone: what waits when several do, as one batch.
    fn run(self, jobs: Receiver<Job>, max_batch: usize) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let count = batch.len();
            self.answer(batch);
            self.waiting.fetch_sub(count, Ordering::SeqCst);
        }
    }

    /// Sampled requests alone (their seeds must not depend on the batch); greedy ones that
    /// share support shots after one prefill of them; the other greedy ones together.
    fn answer(&self, batch: Vec<Job>) {
        let (sampled, greedy): (Vec<Job>, Vec<Job>) = batch
            .into_iter()
            .partition(|job| job.sampling.temperature > 0.0);
        for job in sampled {
            self.call(vec![job], false);
        }
        let mut groups: Vec<Vec<Job>> = Vec::new();
        let mut by_key: HashMap<u128, usize> = HashMap::new();
        for job in greedy {
            // zero-shot questions have no prefix to share: each stands alone
            if job.prefix_ids.is_empty() {
                groups.push(vec![job]);
                continue;
            }
            match by_key.get(&job.prefix_key) {
                Some(&g) => groups[g].push(job),
                None => {
                    by_key.insert(job.prefix_key, groups.len());
                    groups.push(vec![job]);
                }
            }
        }
        let (shared, single): (Vec<Vec<Job>>, Vec<Vec<Job>>) =
            groups.into_iter().partition(|group| group.len() > 1);
        for group in shared {
            self.call(group, true);
        }
        let single: Vec<Job> = single.into_iter().flatten().collect();
        if !single.is_empty() {
            self.call(single, false);
        }
    }

    /// One generation call; a failure (an error or a panic in the model) fails its jobs
    /// alone, and the server goes on.
    fn call(&self, jobs: Vec<Job>, after_prefix: bool) {
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| self.generate(&jobs, after_prefix)));
        let failure = match outcome {
            Ok(Ok(outcomes)) => {
                for (job, outcome) in jobs.iter().zip(outcomes) {
                    let _ = job.events.send(Event::Done(outcome));
                }
                return;
            }
            Ok(Err(err)) => format!("{err:#}"),
            Err(panic) => panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the model panicked".into()),
        };
        eprintln!("serve: a batch of {} failed: {failure}", jobs.len());
        for job in &jobs {
            let _ = job.events.send(Event::Failed(ApiError::new(
                500,
                "model_error",
                format!("the model failed on this request: {failure}"),
            )));
        }
    }

    fn generate(&self, jobs: &[Job], after_prefix: bool) -> anyhow::Result<Vec<Outcome>> {
        let sampling = jobs[0].sampling;
        let config = GenerationConfig {
            max_new_tokens: jobs.iter().map(|j| j.max_tokens).max().unwrap_or(1),
            eos_token_id: self.tokenizer.eos_id(),
            pad_token_id: self.tokenizer.pad_id(),
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            seed: sampling.seed,
        };
        let eos = self.tokenizer.eos_id();
        let mut answers: Vec<AnswerStream> = jobs
            .iter()
            .map(|job| AnswerStream::new(job.stop.clone(), job.max_tokens, eos))
            .collect();
        let decode = |ids: &[u32]| self.tokenizer.decode(ids, true);
        let mut observer = |row: usize, token: u32| {
            let step = answers[row].push(token, &decode);
            let listening =
                step.delta.is_empty() || jobs[row].events.send(Event::Delta(step.delta)).is_ok();
            step.goes_on && listening
        };
        // the image features of each job that asked for its names' scores
        let mut job_features: Vec<Option<Tensor<3>>> = Vec::with_capacity(jobs.len());
        if after_prefix {
            let prefix = &jobs[0];
            let support = self.encode(prefix.support_pixels.iter())?;
            let kv = self.model.prefill(&prefix.prefix_ids, support.clone())?;
            let queries = self
                .encode(jobs.iter().map(|j| &j.query_pixels))?
                .expect("one query each");
            let suffixes: Vec<Vec<u32>> = jobs.iter().map(|j| j.query_ids.clone()).collect();
            self.model.generate_after_observed(
                &kv,
                &suffixes,
                Some(queries.clone()),
                &config,
                &mut observer,
            )?;
            for (j, job) in jobs.iter().enumerate() {
                job_features.push((!job.name_rows.is_empty()).then(|| {
                    let query = slice_rows(&queries, j, j + 1);
                    match &support {
                        Some(support) => Tensor::cat(vec![support.clone(), query], 0),
                        None => query,
                    }
                }));
            }
        } else {
            let images = jobs.iter().flat_map(|j| {
                j.support_pixels
                    .iter()
                    .chain(std::iter::once(&j.query_pixels))
            });
            let features = self.encode(images)?.expect("a query each");
            let prompts: Vec<Vec<u32>> = jobs
                .iter()
                .map(|j| [j.prefix_ids.as_slice(), &j.query_ids].concat())
                .collect();
            self.model.generate_observed(
                &prompts,
                Some(features.clone()),
                &config,
                &mut observer,
            )?;
            let mut start = 0;
            for job in jobs {
                let end = start + job.support_pixels.len() + 1;
                job_features
                    .push((!job.name_rows.is_empty()).then(|| slice_rows(&features, start, end)));
                start = end;
            }
        }
        jobs.iter()
            .zip(answers.iter_mut())
            .zip(job_features)
            .map(|((job, answer), features)| {
                let rest = answer.close(&decode);
                if !rest.is_empty() {
                    let _ = job.events.send(Event::Delta(rest));
                }
                let (finish, text) = answer.result().expect("closed");
                Ok(Outcome {
                    text: text.to_string(),
                    finish,
                    prompt_tokens: job.prefix_ids.len() + job.query_ids.len(),
                    completion_tokens: answer.token_count(),
                    names: self.score_names(job, features)?,
                })
            })
            .collect()
    }

    /// Each shown name's likelihood as the answer, with `features` the job's images (there
    /// when the job asked for the scores).
    fn score_names(
        &self,
        job: &Job,
        features: Option<Tensor<3>>,
    ) -> anyhow::Result<Option<Vec<NameScore>>> {
        let Some(features) = features else {
            return Ok(None);
        };
        let rows: Vec<Vec<u32>> = job.name_rows.iter().map(|r| r.ids.clone()).collect();
        let lens: Vec<usize> = job.name_rows.iter().map(|r| r.answer_len).collect();
        let repeated = Tensor::cat(vec![features; rows.len()], 0);
        let totals = answer_log_likelihoods(
            &self.model,
            &rows,
            &lens,
            Some(repeated),
            self.tokenizer.pad_id(),
        )?;
        let best = totals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = totals.iter().map(|t| (t - best).exp()).sum();
        Ok(Some(
            job.name_rows
                .iter()
                .zip(totals)
                .map(|(row, total)| NameScore {
                    name: row.name.clone(),
                    log_likelihood: total,
                    probability: (total - best).exp() / sum,
                })
                .collect(),
        ))
    }

    /// Projected features `[images, patches, width]` of preprocessed images; `None` for none.
    fn encode<'a>(
        &self,
        images: impl Iterator<Item = &'a Vec<f32>>,
    ) -> anyhow::Result<Option<Tensor<3>>> {
        let size = self.image_size;
        let mut pixels = Vec::new();
        let mut count = 0;
        for image in images {
            pixels.extend_from_slice(image);
            count += 1;
        }
        if count == 0 {
            return Ok(None);
        }
        let batch = Tensor::<4>::from_data(
            TensorData::new(pixels, [count, 3, size, size]),
            &self.device,
        );
        Ok(Some(self.model.encode_images(batch)))
    }
}

fn slice_rows(features: &Tensor<3>, start: usize, end: usize) -> Tensor<3> {
    let [_, patches, width] = features.dims();
    features.clone().slice([start..end, 0..patches, 0..width])
}
