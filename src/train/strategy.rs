//! The training loop Burn's `SupervisedTraining` runs for LCL (a custom learning strategy on
//! one device): averaged gradient accumulation, global-norm clipping, checkpoints every N
//! optimiser steps with the data position, resume mid-epoch, a stop on a non-finite loss, and
//! a validation pass at each epoch end. Progress goes through Burn's event processor
//! (dashboard on a terminal, log lines otherwise).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use burn::data::dataloader::Progress;
use burn::module::Module;
use burn::optim::GradientsAccumulator;
use burn::tensor::Device;
use burn::train::checkpoint::CheckpointerError;
use burn::train::{
    EventProcessorTraining, InferenceStep, Interrupter, Learner, LearnerEvent, LearningResult,
    SupervisedLearningStrategy, SupervisedTrainingEventProcessor, TrainLoader, TrainingComponents,
    TrainingItem, ValidLoader,
};
use serde::Serialize;

use crate::train::checkpoint::{RunState, complete_checkpoints};
use crate::train::grads::average_and_clip;
use crate::train::log::{ProgressLine, StepFigures};
use crate::train::output::EpisodeOutput;
use crate::train::schedule::RunPlan;
use crate::train::trainer::LclTrainer;

/// Reason of the stop `--stop-after` asks for.
pub const STOP_AFTER: &str = "stopped after";

/// Settings of the loop.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// The autodiff device training runs on.
    pub device: Device,
    /// Sizes of the run.
    pub plan: RunPlan,
    /// The checkpoint to continue from.
    pub resume: Option<RunState>,
    /// Global gradient norm limit (0: none).
    pub max_grad_norm: f64,
    /// Checkpoint every this many optimiser steps.
    pub checkpoint_every: usize,
    /// Run folder: `checkpoint/`, `steps.jsonl`, `validation.jsonl`.
    pub out: PathBuf,
    /// What a resumed run must share with this one.
    pub settings: serde_json::Value,
    /// Stop (as an interruption) once this many optimiser steps are done.
    pub stop_after: Option<usize>,
    /// Checkpoints kept (older run states are removed with them).
    pub keep_checkpoints: usize,
    /// Print progress lines to stderr (when Burn's dashboard is not shown).
    pub progress_lines: bool,
}

/// The LCL learning strategy.
pub struct LclLearning {
    settings: LoopSettings,
}

impl LclLearning {
    /// A strategy with `settings`.
    pub fn new(settings: LoopSettings) -> Self {
        Self { settings }
    }
}

/// One optimiser step, as `steps.jsonl` records it.
#[derive(Debug, Serialize)]
struct StepRecord {
    step: usize,
    episodes: usize,
    loss: f64,
    lr: f64,
    grad_norm: f64,
}

/// One validation pass, as `validation.jsonl` records it.
#[derive(Debug, Serialize)]
struct ValidationRecord {
    epoch: usize,
    step: usize,
    episodes: usize,
    loss: f64,
    lcl_accuracy: f64,
}

/// Appends `record` as one JSON line to `path` (a failure stops the run like a failed
/// checkpoint).
fn append_line(path: &std::path::Path, record: &impl Serialize) -> Result<(), CheckpointerError> {
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(file, "{}", serde_json::to_string(record)?)?;
        file.flush()
    };
    write().map_err(CheckpointerError::IOError)
}

impl SupervisedLearningStrategy<LclTrainer> for LclLearning {
    fn train(
        &self,
        learner: Learner<LclTrainer>,
        dataloader_train: TrainLoader<LclTrainer>,
        dataloader_valid: ValidLoader<LclTrainer>,
        mut components: TrainingComponents<LclTrainer>,
    ) -> LearningResult<LclTrainer> {
        let plan = self.settings.plan;
        let done = self.settings.resume.as_ref().map_or(0, |s| s.episodes);
        let interrupter = components.interrupter.clone();
        interrupter.fail_on_error(
            components
                .event_processor
                .process_train(LearnerEvent::Start {
                    total_epochs: plan.epochs,
                    starting_epoch: plan.epoch_of(done) + 1,
                    label: components.label.clone(),
                }),
        );
        let (model, mut processor) =
            self.fit(components, learner, dataloader_train, dataloader_valid, 0);
        interrupter.fail_on_error(processor.process_train(LearnerEvent::End(None)));
        interrupter.fail_on_error(processor.flush());
        LearningResult {
            model: model.valid(),
            renderer: processor.renderer(),
            interrupted: interrupter.interruption(),
            error: interrupter.error(),
        }
    }

    fn fit(
        &self,
        components: TrainingComponents<LclTrainer>,
        mut learner: Learner<LclTrainer>,
        dataloader_train: TrainLoader<LclTrainer>,
        dataloader_valid: ValidLoader<LclTrainer>,
        _starting_epoch: usize,
    ) -> (LclTrainer, SupervisedTrainingEventProcessor<LclTrainer>) {
        let s = &self.settings;
        let plan = s.plan;
        let interrupter = components.interrupter.clone();
        let mut processor = components.event_processor;
        let mut checkpointer = components.checkpointer;
        let store = components.event_store;
        let checkpoint_dir = s.out.join("checkpoint");

        learner.fork(&s.device);
        let (mut step, mut episodes) = s
            .resume
            .as_ref()
            .map_or((0, 0), |state| (state.step, state.episodes));
        if let (Some(state), Some(checkpointer)) = (&s.resume, &checkpointer) {
            learner = checkpointer.load_checkpoint(learner, state.step);
        }
        let train = dataloader_train.to_device(&s.device);
        let valid = dataloader_valid.to_device(&s.device.clone().inner());

        let mut epoch = plan.epoch_of(episodes);
        let start_split = |processor: &mut SupervisedTrainingEventProcessor<LclTrainer>, e| {
            interrupter.fail_on_error(processor.process_train(LearnerEvent::StartSplit {
                epoch_number: e + 1,
                total_items: plan.epoch_len,
            }));
        };
        start_split(&mut processor, epoch);

        let mut line = ProgressLine::new(s.progress_lines, Duration::from_secs(10), episodes);
        let mut states = complete_checkpoints(&checkpoint_dir);
        let iterator = train.iter();
        let mut accumulator = GradientsAccumulator::new();
        let (mut passes, mut loss_sum) = (0, 0.0);
        for batch in iterator {
            let batch = match batch {
                Ok(batch) => batch,
                Err(err) => {
                    interrupter.fail(err);
                    break;
                }
            };
            let rows = batch.tokens.batch_size();
            let output = learner.train_step(batch);
            let loss = output.item.loss_value();
            if !loss.is_finite() {
                interrupter.stop(Some(&non_finite(
                    "loss",
                    loss,
                    step,
                    episodes,
                    &checkpoint_dir,
                )));
                break;
            }
            accumulator.accumulate(&learner.model(), output.grads);
            passes += 1;
            loss_sum += loss;
            episodes += rows;

            if passes == plan.batches_in_step(step) {
                learner.lr_step();
                let lr = learner.lr_current().base();
                let model = learner.model();
                let (grads, grad_norm) =
                    average_and_clip(&model, accumulator.grads(), passes, s.max_grad_norm);
                if !grad_norm.is_finite() {
                    interrupter.stop(Some(&non_finite(
                        "gradient norm",
                        grad_norm,
                        step,
                        episodes,
                        &checkpoint_dir,
                    )));
                    break;
                }
                learner.optimizer_step(grads);
                step += 1;
                let record = StepRecord {
                    step,
                    episodes,
                    loss: loss_sum / passes as f64,
                    lr,
                    grad_norm,
                };
                interrupter.fail_on_error(append_line(&s.out.join("steps.jsonl"), &record));
                (passes, loss_sum) = (0, 0.0);
                let checkpoint_due = step % s.checkpoint_every == 0 || step == plan.total_steps();
                let figures = StepFigures {
                    step: (step, plan.total_steps()),
                    epoch: (epoch + 1, plan.epochs),
                    episodes: (episodes, plan.total_episodes()),
                    loss: record.loss,
                    lr,
                };
                line.report(&figures, checkpoint_due);
                if checkpoint_due && let Some(checkpointer) = &mut checkpointer {
                    checkpointer.checkpoint(&learner, step, &store);
                    let state = RunState {
                        step,
                        episodes,
                        settings: s.settings.clone(),
                    };
                    interrupter.fail_on_error(
                        state
                            .write(&checkpoint_dir)
                            .map_err(|err| CheckpointerError::Unknown(format!("{err:#}"))),
                    );
                    states.push(step);
                    while states.len() > s.keep_checkpoints {
                        let old = RunState::path(&checkpoint_dir, states.remove(0));
                        interrupter.fail_on_error(
                            std::fs::remove_file(&old).map_err(CheckpointerError::IOError),
                        );
                    }
                    line.note(&format!(
                        "checkpoint {step} written to {}",
                        checkpoint_dir.display()
                    ));
                }
                if s.stop_after == Some(step) {
                    interrupter.stop(Some(&format!("{STOP_AFTER} {step} steps")));
                }
            }

            let progress = Progress {
                items_processed: episodes - epoch * plan.epoch_len,
                items_total: plan.epoch_len,
                unit: Some("episodes".into()),
            };
            let item = TrainingItem::new(
                output.item,
                progress,
                Some(step),
                Some(learner.lr_current()),
            );
            interrupter.fail_on_error(processor.process_train(LearnerEvent::ProcessedItem(item)));

            while plan.epoch_of(episodes) > epoch || episodes == plan.total_episodes() {
                interrupter
                    .fail_on_error(processor.process_train(LearnerEvent::EndSplit(epoch + 1)));
                if valid.num_items() > 0 {
                    validate(
                        &learner,
                        &valid,
                        &mut processor,
                        &interrupter,
                        (epoch, step),
                        s,
                        &line,
                    );
                }
                interrupter
                    .fail_on_error(processor.process_train(LearnerEvent::EndEpoch(epoch + 1)));
                epoch += 1;
                if epoch >= plan.epochs {
                    break;
                }
                start_split(&mut processor, epoch);
            }
            if interrupter.should_stop() {
                break;
            }
        }
        drop(checkpointer);
        (learner.model(), processor)
    }
}

/// Runs the validation split after `(epoch, step)` and appends its figures to
/// `validation.jsonl`.
fn validate(
    learner: &Learner<LclTrainer>,
    valid: &ValidLoader<LclTrainer>,
    processor: &mut SupervisedTrainingEventProcessor<LclTrainer>,
    interrupter: &Interrupter,
    (epoch, step): (usize, usize),
    settings: &LoopSettings,
    line: &ProgressLine,
) {
    let model = learner.model().valid();
    interrupter.fail_on_error(processor.process_valid(LearnerEvent::StartSplit {
        epoch_number: epoch + 1,
        total_items: valid.num_items(),
    }));
    let (mut loss_sum, mut exact, mut episodes, mut batches) = (0.0, 0, 0, 0);
    let mut iterator = valid.iter();
    while let Some(batch) = iterator.next() {
        let batch = match batch {
            Ok(batch) => batch,
            Err(err) => {
                interrupter.fail(err);
                break;
            }
        };
        let output: EpisodeOutput = InferenceStep::step(&model, batch);
        loss_sum += output.loss_value();
        exact += output.exact;
        episodes += output.episodes;
        batches += 1;
        let item = TrainingItem::new(output, iterator.progress(), Some(batches), None);
        interrupter.fail_on_error(processor.process_valid(LearnerEvent::ProcessedItem(item)));
    }
    interrupter.fail_on_error(processor.process_valid(LearnerEvent::EndSplit(epoch + 1)));
    let record = ValidationRecord {
        epoch: epoch + 1,
        step,
        episodes,
        loss: loss_sum / batches.max(1) as f64,
        lcl_accuracy: exact as f64 / episodes.max(1) as f64,
    };
    line.note(&format!(
        "validation after epoch {}: loss {:.4}, LCL accuracy {:.1}% ({} episodes)",
        record.epoch,
        record.loss,
        100.0 * record.lcl_accuracy,
        record.episodes
    ));
    interrupter.fail_on_error(append_line(&settings.out.join("validation.jsonl"), &record));
}

/// The message of a stop on a non-finite value.
fn non_finite(
    what: &str,
    value: f64,
    step: usize,
    episodes: usize,
    checkpoint_dir: &std::path::Path,
) -> String {
    let last = complete_checkpoints(checkpoint_dir)
        .last()
        .map_or("none was written yet".to_string(), |n| {
            format!("checkpoint {n} is the last good one")
        });
    format!(
        "the {what} is {value} at optimiser step {} (after {episodes} episodes); training stopped \
         without applying it, {last}. Lower training.learning_rate or check the data, then \
         --resume",
        step + 1
    )
}
