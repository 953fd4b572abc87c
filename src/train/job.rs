//! `lcl train`: builds the model, the episode stream, the optimiser and Burn's
//! `SupervisedTraining` from a run config, launches it, and writes the trained weights.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::{Dataset, DatasetError};
use burn::module::Module;
use burn::optim::AdamWConfig;
use burn::tensor::Device;
use burn::train::checkpoint::FileCheckpointer;
use burn::train::metric::{IterationSpeedMetric, LearningRateMetric, LossMetric};
use burn::train::{Interrupter, Learner, SupervisedTraining, TrainingStrategy};
use lcl_model::ClipVisionConfig;

use crate::config::{RunConfig, Strategy};
use crate::data::batch::{EpisodeBatch, EpisodeBatcher, EpisodeItem, Padding};
use crate::data::conversation;
use crate::data::draw::ShotSchedule;
use crate::data::mix::{InstructionSet, MixedSet};
use crate::data::train_set::{EpochEpisodes, TrainSet};
use crate::identity::{file_identity, folder_identity};
use crate::model_folder::{Precision, load_model, locate_model, resolve_vision_dir};
use crate::tokenizer::LclTokenizer;
use crate::train::checkpoint::{Keep, ModelCheckpointer, RunState, complete_checkpoints};
use crate::train::log::{QuietRenderer, dashboard_available};
use crate::train::lora;
use crate::train::output::LclAccuracyMetric;
use crate::train::schedule::{EpochSets, RunPlan, RunSet, WarmupCosine};
use crate::train::strategy::{LclLearning, LoopSettings, STOP_AFTER};
use crate::train::trainer::LclTrainer;

/// Everything `lcl train` needs.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// The run config.
    pub config: RunConfig,
    /// Run folder: checkpoints, logs and the trained weights.
    pub out: PathBuf,
    /// Continue the run in `out` from its last good checkpoint.
    pub resume: bool,
    /// Stop (as an interruption) after this many optimiser steps in all.
    pub stop_after: Option<usize>,
}

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Optimiser steps done in all.
    pub steps: usize,
    /// Episodes trained on in this launch.
    pub episodes: usize,
    /// Seconds this launch took (model loading excluded).
    pub seconds: f64,
    /// The last complete checkpoint.
    pub last_checkpoint: Option<usize>,
    /// The trained weights, when the run reached its end.
    pub weights: Option<PathBuf>,
}

/// The weights file a finished run writes in its folder.
pub const TRAINED_WEIGHTS: &str = "model.bpk";

/// The model folder a finished full fine-tune writes in its folder (`--model` reads it).
pub const MODEL_FOLDER: &str = "model";

/// Runs (or resumes) the training `request` describes on `device`.
pub fn train(request: &TrainRequest, device: &Device) -> Result<TrainSummary> {
    let config = &request.config;
    let checkpoint_dir = request.out.join("checkpoint");
    let settings = run_settings(config)?;
    let resume = resume_state(request, &checkpoint_dir, &settings)?;
    std::fs::create_dir_all(&checkpoint_dir)
        .with_context(|| format!("{}: cannot create", checkpoint_dir.display()))?;
    std::fs::write(
        request.out.join("config.toml"),
        toml::to_string(config).context("cannot serialise the config")?,
    )
    .with_context(|| format!("{}: cannot write", request.out.display()))?;

    let base = &locate_model(&config.model.base)?;
    let tokenizer = Arc::new(LclTokenizer::from_dir(base)?);
    let vision_dir = resolve_vision_dir(base, config.model.vision.as_deref())?;
    let vision = ClipVisionConfig::from_file(&vision_dir.join("config.json"))?;
    let stream = EpisodeStream::new(config, tokenizer.clone(), &vision)?;
    let plan = RunPlan {
        epoch_len: stream.epoch_len,
        epochs: config.training.epochs,
        batch_size: config.training.batch_size,
        accumulation: config.training.grad_accumulation,
    };
    let start = resume.as_ref().map_or(0, |state| state.episodes);
    let logged = resume.as_ref().map_or(0, |state| state.step);
    truncate_log(&request.out.join("steps.jsonl"), logged)?;
    truncate_log(&request.out.join("validation.jsonl"), logged)?;
    if let Some(state) = &resume {
        eprintln!(
            "resuming {} at step {} of {} ({} episodes done)",
            request.out.display(),
            state.step,
            plan.total_steps(),
            state.episodes
        );
    }

    // Master weights in f32 whatever the compute dtype: updates at a fine-tune's learning
    // rate do not round away, and AdamW's state is f32 too.
    let model = load_model(base, &vision_dir, &tokenizer, device, Precision::F32)?;
    let mut trainer = LclTrainer::new(model).computing_in(config.model.dtype.dtype());
    let keep = if config.training.lora.enabled {
        device.seed(config.sampler.seed);
        trainer = lora::apply(trainer, &config.training.lora)?;
        Keep::AdaptersAndProjector
    } else {
        Keep::All
    };

    let batcher = EpisodeBatcher {
        pad_id: tokenizer.pad_id(),
        padding: Padding::Right,
        image_size: vision.image_size,
    };
    let train_loader: Arc<dyn DataLoader<EpisodeBatch>> = DataLoaderBuilder::new(batcher.clone())
        .batch_size(plan.batch_size)
        .num_workers(config.training.loader_workers)
        .build(RunSet::new(stream.epochs.clone(), plan, start));
    let valid_loader: Arc<dyn DataLoader<EpisodeBatch>> = DataLoaderBuilder::new(batcher)
        .batch_size(plan.batch_size)
        .num_workers(config.training.loader_workers)
        .build(validation_set(config, tokenizer.clone(), &vision)?);

    let t = &config.training;
    let optimizer = AdamWConfig::new()
        .with_weight_decay(t.weight_decay as f32)
        .with_epsilon(t.adam_epsilon as f32)
        .init();
    let schedule = WarmupCosine::new(t.learning_rate, plan.total_steps(), t.warmup_ratio);
    // Autodiff on, gradients required on every trainable tensor (the tower is not one).
    let mut trainer = trainer.train();
    if t.gradient_checkpointing {
        trainer = trainer.with_gradient_checkpointing();
    }
    let learner = Learner::new(trainer, optimizer, schedule);

    let mut train_device = device.clone().autodiff();
    if t.gradient_checkpointing {
        train_device = train_device.gradient_checkpointing();
    }
    let interrupter = Interrupter::new();
    let loop_settings = LoopSettings {
        device: train_device,
        plan,
        resume: resume.clone(),
        max_grad_norm: t.max_grad_norm,
        checkpoint_every: t.checkpoint_every,
        out: request.out.clone(),
        settings: settings.clone(),
        stop_after: request.stop_after,
        keep_checkpoints: t.keep_checkpoints,
        progress_lines: !dashboard_available(),
    };
    let mut training = SupervisedTraining::new(&request.out, train_loader, valid_loader)
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_train_numeric(LclAccuracyMetric::default())
        .metric_valid_numeric(LclAccuracyMetric::default())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_train_numeric(IterationSpeedMetric::new())
        .with_custom_checkpointers(
            ModelCheckpointer::new(&checkpoint_dir, keep),
            FileCheckpointer::new(&checkpoint_dir, "optim"),
            FileCheckpointer::new(&checkpoint_dir, "scheduler"),
        )
        .with_checkpointing_strategy(crate::train::checkpoint::KeepLast::new(
            t.keep_checkpoints,
            complete_checkpoints(&checkpoint_dir),
        ))
        .with_interrupter(interrupter)
        .with_training_strategy(TrainingStrategy::Custom(Arc::new(LclLearning::new(
            loop_settings,
        ))))
        .num_epochs(plan.epochs);
    if !dashboard_available() {
        training = training.renderer(Box::new(QuietRenderer));
    }

    let started = std::time::Instant::now();
    let result = training.launch(learner);
    let seconds = started.elapsed().as_secs_f64();
    if let Some(error) = result.error {
        bail!("training failed: {error}");
    }
    let (steps, consumed) = last_step(&request.out.join("steps.jsonl")).unwrap_or((0, start));
    let summary = |weights| TrainSummary {
        steps,
        episodes: consumed.saturating_sub(start),
        seconds,
        last_checkpoint: complete_checkpoints(&checkpoint_dir).last().copied(),
        weights,
    };
    if let Some(interruption) = result.interrupted {
        let reason = interruption.reason.unwrap_or_default();
        if !reason.starts_with(STOP_AFTER) {
            bail!("{reason}");
        }
        return Ok(summary(None));
    }
    let weights = request.out.join(TRAINED_WEIGHTS);
    crate::train::checkpoint::write_record(result.model.into_record(), keep, &weights)?;
    if keep == Keep::All {
        crate::train::init::write_model_folder(
            base,
            &vision_dir,
            &weights,
            &request.out.join(MODEL_FOLDER),
        )?;
    }
    Ok(summary(Some(weights)))
}

/// The step and episode count of the last record of `steps.jsonl`.
fn last_step(path: &Path) -> Option<(usize, usize)> {
    let text = std::fs::read_to_string(path).ok()?;
    let record: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
    Some((
        record.get("step")?.as_u64()? as usize,
        record.get("episodes")?.as_u64()? as usize,
    ))
}

/// The config sections a resumed run must share with the interrupted one.
fn run_settings(config: &RunConfig) -> Result<serde_json::Value> {
    let mut training = serde_json::to_value(&config.training)?;
    if let Some(fields) = training.as_object_mut() {
        // Safe to change between launches: they do not alter what is computed.
        for field in ["checkpoint_every", "keep_checkpoints", "loader_workers"] {
            fields.remove(field);
        }
    }
    Ok(serde_json::json!({
        "model": config.model,
        "data": config.data,
        "sampler": config.sampler,
        "mix": config.mix,
        "training": training,
        "inputs": run_inputs(config)?,
    }))
}

/// The content of what a run reads besides its images: the base model and CLIP folders, the
/// class files, the question list and the instruction sources. A resumed run must read the
/// same, not just files of the same names.
fn run_inputs(config: &RunConfig) -> Result<serde_json::Value> {
    let base = &locate_model(&config.model.base)?;
    let vision = resolve_vision_dir(base, config.model.vision.as_deref())?;
    // A file the run's strategy does not read may be absent (its reader names it if needed).
    let file = |path: &Path| -> Result<serde_json::Value> {
        if !path.is_file() {
            return Ok(serde_json::Value::Null);
        }
        Ok(serde_json::to_value(file_identity(path)?)?)
    };
    let sources = config
        .mix
        .sources
        .iter()
        .map(|source| file(&source.file))
        .collect::<Result<Vec<_>>>()?;
    Ok(serde_json::json!({
        "base": folder_identity(base)?,
        "vision": folder_identity(&vision)?,
        "class_file": file(&config.data.class_file)?,
        "questions": file(&config.data.questions)?,
        "mix_sources": sources,
        "validation_class_file": match &config.validation.class_file {
            Some(path) => file(path)?,
            None => serde_json::Value::Null,
        },
    }))
}

/// The state to resume from, or a clear refusal.
fn resume_state(
    request: &TrainRequest,
    checkpoint_dir: &Path,
    settings: &serde_json::Value,
) -> Result<Option<RunState>> {
    let complete = complete_checkpoints(checkpoint_dir);
    if !request.resume {
        if let Some(last) = complete.last() {
            bail!(
                "{} already holds a run (checkpoint {last}): pass --resume to continue it, or \
                 choose another --out",
                request.out.display()
            );
        }
        return Ok(None);
    }
    let Some(last) = complete.last() else {
        bail!(
            "--resume: {} holds no complete checkpoint (model-N.bpk, optim-N.bpk, \
             scheduler-N.bpk and state-N.json)",
            checkpoint_dir.display()
        );
    };
    let state = RunState::read(checkpoint_dir, *last)?;
    state.check_settings(settings)?;
    Ok(Some(state))
}

/// Drops the records of `path` (JSON lines with a `step`) after `step`: what a resumed run
/// recomputes (all of them for a fresh run in a folder a stopped run left without checkpoint).
fn truncate_log(path: &Path, step: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|record| record.get("step")?.as_u64())
                .is_some_and(|s| s as usize <= step)
        })
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(path, kept).with_context(|| format!("{}: cannot rewrite", path.display()))
}

/// The training episodes of every epoch.
struct EpisodeStream {
    epochs: EpochSets,
    epoch_len: usize,
}

impl EpisodeStream {
    fn new(
        config: &RunConfig,
        tokenizer: Arc<LclTokenizer>,
        vision: &ClipVisionConfig,
    ) -> Result<Self> {
        let (patches, size) = (vision.num_patches(), vision.image_size as u32);
        let strategy = config.sampler.strategy;
        let instructions: Vec<Arc<dyn Dataset<EpisodeItem>>> =
            if matches!(strategy, Strategy::Mix | Strategy::Instructions) {
                config
                    .mix
                    .sources
                    .iter()
                    .map(|source| -> Result<Arc<dyn Dataset<EpisodeItem>>> {
                        Ok(Arc::new(InstructionSet::new(
                            conversation::read(&source.file)?,
                            source.images.clone(),
                            tokenizer.clone(),
                            patches,
                            size,
                        )))
                    })
                    .collect::<Result<_>>()?
            } else {
                Vec::new()
            };
        let seed = config.sampler.seed;
        if strategy == Strategy::Instructions {
            let even = vec![1.0 / instructions.len() as f64; instructions.len()];
            let epoch_len = MixedSet::new(instructions.clone(), even.clone(), seed, 0)?.len();
            let epochs: EpochSets = Arc::new(move |epoch| -> Arc<dyn Dataset<EpisodeItem>> {
                Arc::new(
                    MixedSet::new(instructions.clone(), even.clone(), seed, epoch as u64)
                        .expect("the sources were checked at epoch 0"),
                )
            });
            return Ok(Self { epochs, epoch_len });
        }
        let set = |shots: ShotSchedule| -> Result<TrainSet> {
            let spec = Arc::new(config.train_set(shots)?);
            let sampler = EpochEpisodes::new(spec, 0)
                .with_context(|| format!("{}", config.data.class_file.display()))?;
            Ok(TrainSet::new(sampler, tokenizer.clone(), patches, size)
                .with_supervision(config.training.supervise))
        };
        let fixed = set(config.sampler.fixed_schedule())?;
        let main = set(config.sampler.schedule())?;
        let main_from = config.training.epochs - config.training.main_epochs;
        let probabilities = config.mix.probabilities();
        let lcl_at = move |epoch: usize| -> TrainSet {
            let phase = if epoch >= main_from { &main } else { &fixed };
            phase.at_epoch(epoch as u64)
        };
        let epoch_len = if instructions.is_empty() {
            lcl_at(0).len()
        } else {
            mixed(lcl_at(0), &instructions, &probabilities, seed, 0)?.len()
        };
        let epochs: EpochSets = Arc::new(move |epoch| -> Arc<dyn Dataset<EpisodeItem>> {
            let lcl = lcl_at(epoch);
            if instructions.is_empty() {
                return Arc::new(lcl);
            }
            Arc::new(
                mixed(lcl, &instructions, &probabilities, seed, epoch as u64)
                    .expect("the mix was checked at epoch 0"),
            )
        });
        Ok(Self { epochs, epoch_len })
    }
}

fn mixed(
    lcl: TrainSet,
    instructions: &[Arc<dyn Dataset<EpisodeItem>>],
    probabilities: &[f64],
    seed: u64,
    epoch: u64,
) -> Result<MixedSet> {
    let mut sources: Vec<Arc<dyn Dataset<EpisodeItem>>> = vec![Arc::new(lcl)];
    sources.extend(instructions.iter().cloned());
    MixedSet::new(sources, probabilities.to_vec(), seed, epoch)
}

/// No episode (a run without validation classes).
struct NoEpisodes;

impl Dataset<EpisodeItem> for NoEpisodes {
    fn get(&self, index: usize) -> Result<EpisodeItem, DatasetError> {
        Err(DatasetError::new(std::io::Error::other(format!(
            "no validation episode {index}: validation.class_file is not set"
        ))))
    }

    fn len(&self) -> usize {
        0
    }
}

/// The validation episodes: `shots_per_class` support images per class of every held-out
/// class in `[validation] class_file` (fixed draws: the same episodes every pass).
fn validation_set(
    config: &RunConfig,
    tokenizer: Arc<LclTokenizer>,
    vision: &ClipVisionConfig,
) -> Result<Arc<dyn Dataset<EpisodeItem>>> {
    let (Some(file), Some(spec)) = (&config.validation.class_file, config.validation_set()?) else {
        return Ok(Arc::new(NoEpisodes));
    };
    let sampler = EpochEpisodes::new(Arc::new(spec), 0)
        .with_context(|| format!("validation classes {}", file.display()))?;
    Ok(Arc::new(TrainSet::new(
        sampler,
        tokenizer,
        vision.num_patches(),
        vision.image_size as u32,
    )))
}
