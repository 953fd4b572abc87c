//! What one training or validation step reports, and the LCL-accuracy metric over it.

use std::sync::Arc;

use burn::tensor::{Tensor, TensorReadError};
use burn::train::ItemLazy;
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, LossInput, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric,
    NumericAttributes, NumericEntry, SerializedEntry,
};

/// Loss and answer exactness of one batch of episodes.
#[derive(Debug, Clone)]
pub struct EpisodeOutput {
    /// Mean cross-entropy over the batch's supervised tokens, `[1]`.
    pub loss: Tensor<1>,
    /// Episodes whose whole answer is the greedy prediction under teacher forcing: the
    /// answer greedy decoding would produce.
    pub exact: usize,
    /// Episodes in the batch.
    pub episodes: usize,
}

impl EpisodeOutput {
    /// An output of `episodes` episodes, `exact` of them answered exactly.
    pub fn new(loss: Tensor<1>, exact: usize, episodes: usize) -> Self {
        Self {
            loss,
            exact,
            episodes,
        }
    }

    /// The loss on the host (a device read).
    pub fn loss_value(&self) -> f64 {
        self.loss.clone().into_scalar::<f64>()
    }
}

impl ItemLazy for EpisodeOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        self.loss.device().flush()?;
        Ok(self)
    }
}

impl Adaptor<LossInput> for EpisodeOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

/// Input of [`LclAccuracyMetric`]: exact answers out of episodes.
pub struct AnswerCounts {
    exact: usize,
    episodes: usize,
}

impl Adaptor<AnswerCounts> for EpisodeOutput {
    fn adapt(&self) -> AnswerCounts {
        AnswerCounts {
            exact: self.exact,
            episodes: self.episodes,
        }
    }
}

/// Share of episodes whose answer (the linked name) comes out exactly, in percent.
#[derive(Clone)]
pub struct LclAccuracyMetric {
    name: Arc<String>,
    state: NumericMetricState,
}

impl Default for LclAccuracyMetric {
    fn default() -> Self {
        Self {
            name: Arc::new("LCL accuracy".to_string()),
            state: NumericMetricState::default(),
        }
    }
}

impl Metric for LclAccuracyMetric {
    type Input = AnswerCounts;

    fn update(
        &mut self,
        counts: &AnswerCounts,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let share = 100.0 * counts.exact as f64 / counts.episodes.max(1) as f64;
        self.state.update(share, counts.episodes);
        Ok(self
            .state
            .compute_update(FormatOptions::new(self.name()).unit("%").precision(1)))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self
            .state
            .compute_final(FormatOptions::new(self.name()).unit("%").precision(1)))
    }

    fn clear(&mut self) {
        self.state.reset()
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("%".to_string()),
            higher_is_better: true,
        }
        .into()
    }
}

impl Numeric for LclAccuracyMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(self.state.current_value())
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Some(self.state.running_value())
    }

    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}
