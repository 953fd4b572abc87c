//! Progress when standard output is not a terminal: Burn's dashboard needs one, and its plain
//! renderer prints a debug record per batch. [`QuietRenderer`] silences Burn's renderer and
//! [`ProgressLine`] prints one line every few seconds (and at every checkpoint) to stderr:
//! step, epoch, loss, learning rate, episodes/s and ETA.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::MetricDefinition;
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};

/// Whether Burn's terminal dashboard can run (standard output is a terminal).
pub fn dashboard_available() -> bool {
    std::io::stdout().is_terminal()
}

/// A Burn renderer that shows nothing: [`ProgressLine`] reports instead.
pub struct QuietRenderer;

impl MetricsRendererTraining for QuietRenderer {
    fn update_train(&mut self, _state: MetricState) {}

    fn update_valid(&mut self, _state: MetricState) {}
}

impl MetricsRendererEvaluation for QuietRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl TrainingProgressLogger for QuietRenderer {
    fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}

    fn update_epoch(&mut self, _epoch: usize) {}

    fn start_split(&mut self, _split: &str, _total_items: usize) {}

    fn update_split(&mut self, _items_processed: usize) {}

    fn end_split(&mut self) {}

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for QuietRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}

    fn start_test(&mut self, _name: &str, _total_items: usize) {}

    fn update_test_progress(&mut self, _items_processed: usize) {}

    fn end_test(&mut self) {}

    fn end_global_progress(&mut self) {}

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for QuietRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, _definition: MetricDefinition) {}
}

/// Prints a progress line at most every `every`, measured from the launch's first step.
pub struct ProgressLine {
    enabled: bool,
    every: Duration,
    started: Instant,
    last: Option<Instant>,
    first_episodes: usize,
}

/// What one progress line shows.
pub struct StepFigures {
    /// Optimiser steps done and in all.
    pub step: (usize, usize),
    /// Current epoch (1-based) and epochs in all.
    pub epoch: (usize, usize),
    /// Episodes done and in all.
    pub episodes: (usize, usize),
    /// Mean loss of the last step.
    pub loss: f64,
    /// Learning rate of the last step.
    pub lr: f64,
}

impl ProgressLine {
    /// Lines every `every` when `enabled`, counting speed from `first_episodes` on.
    pub fn new(enabled: bool, every: Duration, first_episodes: usize) -> Self {
        Self {
            enabled,
            every,
            started: Instant::now(),
            last: None,
            first_episodes,
        }
    }

    /// Prints `figures` if the interval has passed, or always when `force`.
    pub fn report(&mut self, figures: &StepFigures, force: bool) {
        let now = Instant::now();
        let due = self.last.is_none_or(|last| now - last >= self.every);
        if !self.enabled || !(due || force) {
            return;
        }
        self.last = Some(now);
        let elapsed = (now - self.started).as_secs_f64();
        let done = figures.episodes.0.saturating_sub(self.first_episodes);
        let speed = done as f64 / elapsed.max(1e-9);
        let left = figures.episodes.1.saturating_sub(figures.episodes.0) as f64;
        let eta = if speed > 0.0 {
            clock(left / speed)
        } else {
            "?".into()
        };
        eprintln!(
            "step {}/{} | epoch {}/{} | loss {:.4} | lr {:.3e} | {:.3} episodes/s | elapsed {} | ETA {}",
            figures.step.0,
            figures.step.1,
            figures.epoch.0,
            figures.epoch.1,
            figures.loss,
            figures.lr,
            speed,
            clock(elapsed),
            eta
        );
    }

    /// Prints a line that is not a step's (validation, checkpoint), when enabled.
    pub fn note(&self, text: &str) {
        if self.enabled {
            eprintln!("{text}");
        }
    }
}

/// `H:MM:SS`.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
