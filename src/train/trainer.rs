//! The model as Burn's `Learner` trains it: projector and LLaMA as parameters, the CLIP
//! tower outside the module tree (no autodiff, no gradient, no optimiser state, not in
//! checkpoints), and the next-token loss on the supervised tokens only.
//!
//! Mixed precision: the parameters keep their own dtype (f32 master weights, so AdamW's
//! state and every update are f32), while the decoder computes in [`LclTrainer::compute`]
//! (bf16): each weight is cast on use inside the graph, so its gradient arrives in f32.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Int, Tensor, TensorData};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use lcl_model::autocast::cast_to;
use lcl_model::lcl::{embed_with_images, project_images};
use lcl_model::{ClipVisionTransformer, KvCache, LclModel, Llama};

use crate::data::batch::EpisodeBatch;
use crate::episode::IGNORE_INDEX;
use crate::train::output::EpisodeOutput;

/// The frozen part of the model: read, never trained or saved.
#[derive(Debug, Clone)]
pub struct FrozenVision {
    tower: ClipVisionTransformer,
    layer: isize,
    image_patch_id: u32,
}

/// The trainable part of [`LclModel`] (same parameter paths: `projector.*`, `llm.*`).
#[derive(Module, Debug)]
pub struct LclTrainer {
    /// `model.mm_projector`.
    pub projector: Linear,
    /// The LLaMA decoder (embeddings and `lm_head` included).
    pub llm: Llama,
    #[module(skip)]
    frozen: FrozenVision,
    /// The dtype the decoder computes in (its weights' own, unless mixed precision).
    #[module(skip)]
    compute: DType,
}

impl LclTrainer {
    /// Splits `model` into its trainable part and the frozen vision tower; the decoder
    /// computes in the weights' dtype.
    pub fn new(model: LclModel) -> Self {
        Self {
            compute: model.dtype(),
            projector: model.projector,
            llm: model.llm,
            frozen: FrozenVision {
                tower: model.vision,
                layer: model.vision_layer,
                image_patch_id: model.image_patch_id,
            },
        }
    }

    /// Mixed precision: the decoder and the frozen tower compute in `dtype` while the
    /// trainable weights keep theirs (f32 master weights). The tower is cast once: it is
    /// never trained.
    pub fn computing_in(mut self, dtype: DType) -> Self {
        self.compute = dtype;
        self.frozen.tower = cast_params(self.frozen.tower, dtype);
        self
    }

    /// The dtype the decoder computes in.
    pub fn compute(&self) -> DType {
        self.compute
    }

    /// The whole model again (for evaluation or export).
    pub fn into_model(self) -> LclModel {
        LclModel {
            vision: self.frozen.tower,
            projector: self.projector,
            llm: self.llm,
            image_patch_id: self.frozen.image_patch_id,
            vision_layer: self.frozen.layer,
        }
    }

    /// Marks every trainable tensor for Burn's gradient checkpointing (activations of
    /// memory-bound operations recomputed in the backward pass). Call after `train()`; the
    /// batches must come from a device with the same strategy.
    pub fn with_gradient_checkpointing(self) -> Self {
        self.map(&mut CheckpointingMapper)
    }

    /// The frozen tower (to check it is left untouched).
    pub fn vision(&self) -> &ClipVisionTransformer {
        &self.frozen.tower
    }

    /// Mean next-token cross-entropy over the supervised tokens of `batch`, and what the
    /// metrics read (per-episode exactness of the greedy answer under teacher forcing).
    pub fn loss(&self, batch: &EpisodeBatch) -> (Tensor<1>, EpisodeOutput) {
        let device = self.projector.weight.val().device();
        let features = (batch.pixel_values.dims()[0] > 0).then(|| {
            // The tower runs without autodiff; its output enters the graph as a constant.
            let pixels = batch.pixel_values.clone().without_autodiff();
            project_images(
                &self.frozen.tower,
                &self.projector,
                self.frozen.layer,
                pixels,
            )
        });
        let embeds = embed_with_images(
            &self.llm,
            &batch.tokens,
            features,
            self.frozen.image_patch_id,
        )
        .unwrap_or_else(|err| panic!("a training batch does not fit the model: {err}"));
        let embeds = cast_to(embeds, self.compute);
        let mut cache = KvCache::new(self.llm.num_layers());
        let hidden = self
            .llm
            .forward_hidden(embeds, &batch.tokens.valid, &mut cache);

        let targets = SupervisedTargets::of(batch);
        assert!(
            !targets.positions.is_empty(),
            "a training batch has no supervised token"
        );
        let [rows, len, width] = hidden.dims();
        let count = targets.positions.len();
        let positions = Tensor::<1, Int>::from_data(
            TensorData::new(targets.positions.clone(), [count]),
            &device,
        );
        let picked = hidden.reshape([rows * len, width]).select(0, positions);
        let logits = self.llm.logits(picked.unsqueeze_dim::<3>(0));
        let log_probs = log_softmax(logits.cast(DType::F32).squeeze_dim::<2>(0), 1);
        let target_ids =
            Tensor::<2, Int>::from_data(TensorData::new(targets.ids.clone(), [count, 1]), &device);
        let loss = log_probs
            .clone()
            .gather(1, target_ids)
            .reshape([count])
            .mean()
            .neg();
        let predicted: Vec<i64> = log_probs
            .argmax(1)
            .reshape([count])
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .expect("argmax gives integers");
        let output = EpisodeOutput::new(
            loss.clone().without_autodiff(),
            targets.exact_rows(&predicted),
            rows,
        );
        (loss, output)
    }
}

/// `module` with every float parameter cast to `dtype` (ids kept).
pub fn cast_params<M: Module>(module: M, dtype: DType) -> M {
    module.map(&mut CastMapper(dtype))
}

/// Casts every float parameter.
struct CastMapper(DType);

impl burn::module::ModuleMapper for CastMapper {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let dtype = self.0;
        param.map(|tensor| cast_to(tensor, dtype))
    }
}

/// Gives every float parameter the balanced gradient-checkpointing strategy.
struct CheckpointingMapper;

impl burn::module::ModuleMapper for CheckpointingMapper {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        param.map(|tensor| {
            tensor.with_gradient_checkpointing_strategy(
                burn::tensor::GradientCheckpointingStrategy::Balanced,
            )
        })
    }
}

/// Positions whose next token is supervised, in the flattened `[rows * len]` order.
struct SupervisedTargets {
    positions: Vec<i64>,
    ids: Vec<i64>,
    rows: Vec<usize>,
}

impl SupervisedTargets {
    /// Reads the shifted labels of `batch`: position `t` predicts label `t + 1`.
    fn of(batch: &EpisodeBatch) -> Self {
        let len = batch.tokens.len();
        let mut targets = Self {
            positions: Vec::new(),
            ids: Vec::new(),
            rows: Vec::new(),
        };
        for (row, labels) in batch.label_values.chunks(len.max(1)).enumerate() {
            for (t, &label) in labels.iter().enumerate().skip(1) {
                if label != IGNORE_INDEX {
                    targets.positions.push((row * len + t - 1) as i64);
                    targets.ids.push(label);
                    targets.rows.push(row);
                }
            }
        }
        targets
    }

    /// Rows whose every supervised token is the greedy prediction.
    fn exact_rows(&self, predicted: &[i64]) -> usize {
        let mut wrong = std::collections::BTreeSet::new();
        let mut seen = std::collections::BTreeSet::new();
        for ((row, target), guess) in self.rows.iter().zip(&self.ids).zip(predicted) {
            seen.insert(*row);
            if target != guess {
                wrong.insert(*row);
            }
        }
        seen.len() - wrong.len()
    }
}

impl TrainStep for LclTrainer {
    type Input = EpisodeBatch;
    type Output = EpisodeOutput;

    fn step(&self, batch: EpisodeBatch) -> TrainOutput<EpisodeOutput> {
        let (loss, output) = self.loss(&batch);
        let grads = loss.backward();
        TrainOutput::new(self, grads, output)
    }
}

impl InferenceStep for LclTrainer {
    type Input = EpisodeBatch;
    type Output = EpisodeOutput;

    fn step(&self, batch: EpisodeBatch) -> EpisodeOutput {
        self.loss(&batch).1
    }
}

impl std::fmt::Display for FrozenVision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "frozen CLIP vision tower (layer {})", self.layer)
    }
}
