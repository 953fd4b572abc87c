//! The run as one stream of episodes (every epoch of every phase, in order) and the
//! learning-rate schedule over its optimiser steps.

use std::sync::Arc;

use burn::data::dataset::{Dataset, DatasetError};
use burn::optim::LearningRate;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};

use crate::data::batch::EpisodeItem;

/// The data set of one epoch, by epoch number (0-based).
pub type EpochSets = Arc<dyn Fn(usize) -> Arc<dyn Dataset<EpisodeItem>> + Send + Sync>;

/// Sizes of a run: epochs of `epoch_len` episodes served `batch_size` at a time, gradients of
/// `accumulation` batches per optimiser step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPlan {
    /// Episodes per epoch.
    pub epoch_len: usize,
    /// Epochs in all.
    pub epochs: usize,
    /// Episodes per batch.
    pub batch_size: usize,
    /// Batches per optimiser step.
    pub accumulation: usize,
}

impl RunPlan {
    /// Episodes in the whole run.
    pub fn total_episodes(&self) -> usize {
        self.epoch_len * self.epochs
    }

    /// Batches in the whole run (the last may be short).
    pub fn total_batches(&self) -> usize {
        self.total_episodes().div_ceil(self.batch_size)
    }

    /// Optimiser steps in the whole run (the last may average fewer batches).
    pub fn total_steps(&self) -> usize {
        self.total_batches().div_ceil(self.accumulation)
    }

    /// Episodes consumed once `steps` optimiser steps are done.
    pub fn episodes_after(&self, steps: usize) -> usize {
        (steps * self.accumulation * self.batch_size).min(self.total_episodes())
    }

    /// Batches in optimiser step `step` (0-based).
    pub fn batches_in_step(&self, step: usize) -> usize {
        let first = step * self.accumulation;
        self.accumulation
            .min(self.total_batches().saturating_sub(first))
    }

    /// The epoch (0-based) episode `position` of the run belongs to.
    pub fn epoch_of(&self, position: usize) -> usize {
        position / self.epoch_len
    }
}

/// The run's episodes from `start` on: position `p` is episode `p % epoch_len` of epoch
/// `p / epoch_len`, so a resumed run reads exactly what the interrupted one had left.
pub struct RunSet {
    epochs: EpochSets,
    plan: RunPlan,
    start: usize,
}

impl RunSet {
    /// The episodes of `plan` from position `start` on.
    pub fn new(epochs: EpochSets, plan: RunPlan, start: usize) -> Self {
        Self {
            epochs,
            plan,
            start,
        }
    }
}

impl Dataset<EpisodeItem> for RunSet {
    fn get(&self, index: usize) -> Result<EpisodeItem, DatasetError> {
        let position = self.start + index;
        let set = (self.epochs)(self.plan.epoch_of(position));
        set.get(position % self.plan.epoch_len)
    }

    fn len(&self) -> usize {
        self.plan.total_episodes().saturating_sub(self.start)
    }
}

/// Linear warm-up from 0 then cosine decay to 0, as Hugging Face's
/// `get_cosine_schedule_with_warmup`: step `s` (0-based) gets `peak * s / warmup` while
/// `s < warmup`, then `peak * (1 + cos(pi * (s - warmup) / (total - warmup))) / 2`.
#[derive(Debug, Clone)]
pub struct WarmupCosine {
    peak: f64,
    warmup: usize,
    total: usize,
    next: usize,
}

impl WarmupCosine {
    /// The schedule of `total` steps with `ceil(total * warmup_ratio)` warm-up steps.
    pub fn new(peak: f64, total: usize, warmup_ratio: f64) -> Self {
        Self {
            peak,
            warmup: (total as f64 * warmup_ratio).ceil() as usize,
            total,
            next: 0,
        }
    }

    /// The learning rate of step `step`.
    pub fn at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * step as f64 / self.warmup.max(1) as f64;
        }
        let progress = (step - self.warmup) as f64 / (self.total - self.warmup).max(1) as f64;
        let factor = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.peak * factor.max(0.0)
    }
}

impl LrScheduler for WarmupCosine {
    fn step(&mut self) -> LearningRate {
        let lr = self.at(self.next);
        self.next += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar("next", self.next as u64)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(next) = record.scalar::<u64>("next") {
            self.next = next as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_warms_up_from_zero_then_follows_the_cosine() {
        let mut schedule = WarmupCosine::new(2e-5, 100, 0.03);
        let lrs: Vec<f64> = (0..100).map(|_| schedule.step()).collect();
        assert_eq!(lrs[0], 0.0);
        assert!((lrs[1] - 2e-5 / 3.0).abs() < 1e-15);
        assert!((lrs[3] - 2e-5).abs() < 1e-15, "peak right after warm-up");
        let middle = 3 + 97 / 2;
        assert!(lrs[middle] < 1.02e-5 && lrs[middle] > 0.98e-5);
        assert!(lrs[99] < 1e-8 && lrs[99] > 0.0);
        let mut resumed = WarmupCosine::new(2e-5, 100, 0.03);
        resumed.load_record(schedule_after(40).to_record());
        assert_eq!(resumed.step(), lrs[40]);
    }

    fn schedule_after(steps: usize) -> WarmupCosine {
        let mut schedule = WarmupCosine::new(2e-5, 100, 0.03);
        (0..steps).for_each(|_| {
            schedule.step();
        });
        schedule
    }

    #[test]
    fn a_plan_counts_batches_and_steps_over_every_epoch() {
        let plan = RunPlan {
            epoch_len: 10,
            epochs: 3,
            batch_size: 4,
            accumulation: 2,
        };
        assert_eq!(plan.total_batches(), 8);
        assert_eq!(plan.total_steps(), 4);
        assert_eq!(plan.batches_in_step(3), 2);
        assert_eq!(plan.episodes_after(2), 16);
        assert_eq!(plan.episodes_after(9), 30);
        assert_eq!(plan.epoch_of(19), 1);
    }
}
