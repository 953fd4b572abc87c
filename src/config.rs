//! Run configurations: TOML files under `configs/`. Every field has the original's value as
//! its default; an unknown or ill-typed field is an error naming the file, the field and
//! its line.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::data::class_file;
use crate::data::draw::{
    EpisodeRules, NegativeLabel, ORIGINAL_LABEL_LETTERS, ShotSchedule, ShotSplit,
};
use crate::data::train_set::TrainSetSpec;
use crate::episode::Supervision;
use crate::model_folder::Precision;
use crate::neighbors::NeighborSettings;

/// A whole run configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Where the training data is.
    pub data: DataConfig,
    /// How training episodes are drawn.
    pub sampler: SamplerConfig,
    /// The [mix] strategy's instruction data.
    pub mix: MixConfig,
    /// How class neighbours are computed.
    pub neighbors: NeighborSettings,
    /// The evaluation suites.
    pub evaluation: EvalConfig,
    /// The model training starts from.
    pub model: ModelConfig,
    /// Optimisation, checkpoints and LoRA.
    pub training: TrainingConfig,
    /// The validation pass on held-out classes.
    pub validation: ValidationConfig,
}

/// Training data locations (relative paths are relative to the working directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// The per-class file (`lcl neighbors` writes it).
    pub class_file: PathBuf,
    /// Folder the class file's image paths are relative to (the ImageNet train folder).
    pub image_root: PathBuf,
    /// Query questions drawn in training (JSON: `{"questions": [...]}` or an array).
    pub questions: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            class_file: "datasets/train900_pairs.jsonl".into(),
            image_root: "data/imagenet/train".into(),
            questions: "datasets/query-questions.json".into(),
        }
    }
}

/// The training strategies of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// [2-way]: fixed 16 shots.
    #[serde(rename = "2way")]
    TwoWay,
    /// [2-way-random]: the fixed phase, then totals uniform in min..=max.
    #[serde(rename = "2way-random")]
    TwoWayRandom,
    /// [2-way-weight]: the fixed phase, then weighted shot counts.
    #[serde(rename = "2way-weight")]
    TwoWayWeight,
    /// [mix]: [2-way-weight] episodes interleaved with instruction data.
    #[serde(rename = "mix")]
    Mix,
    /// The base model's instruction tuning alone (the `[mix]` sources, no LCL episode): how
    /// the miniature's vanilla captioner is trained.
    #[serde(rename = "instructions")]
    Instructions,
}

/// How [2-way-weight] weighs shot counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weighting {
    /// The released code: per-class `k` with weight `exp(k / weight_scale)`.
    Code,
    /// The paper: total `m` with weight `exp(m)`.
    Paper,
}

/// Training-episode sampling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplerConfig {
    /// The strategy.
    pub strategy: Strategy,
    /// Seed of every random choice.
    pub seed: u64,
    /// Episodes per class per epoch (one: 900 per epoch on ImageNet-900).
    pub episodes_per_class: usize,
    /// Shots per class of [2-way] and of the other strategies' first phase.
    pub fixed_shots_per_class: usize,
    /// Fewest support images in all ([2-way-random], [2-way-weight]).
    pub min_total_shots: usize,
    /// Most support images in all.
    pub max_total_shots: usize,
    /// [2-way-weight]'s weighting.
    pub weighting: Weighting,
    /// The exponent scale of the code's weighting (2 released, 1 in older code).
    pub weight_scale: f64,
    /// How the hard negative is labelled: `real` (its class name, the original) or
    /// `invented` (a second invented name, so every answer must follow the episode's links).
    pub negative_label: NegativeLabel,
    /// Classes per episode: 2 (the original's 2-way) or more, each further class another hard
    /// negative from an unused tier, labelled like the first. Not in the original: with more
    /// ways, naming any support label is right only 1 / ways of the time, so only the link pays.
    pub ways: usize,
    /// How support images are split between the classes: `even` (the schedule's counts, the
    /// original) or `independent` (each image's class drawn uniformly; not in the original:
    /// with `supervise = "repeated-labels"` it takes away the shortcut of counting which
    /// class still owes shots, so only the link pays).
    pub shot_split: ShotSplit,
    /// Most letters of an invented label (uniform in 1..=N; the original: 10). Not in the
    /// original: 1 makes every name a single letter, so a supervised label is all link and
    /// no copying.
    pub label_letters: usize,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::TwoWayWeight,
            seed: 42,
            episodes_per_class: 1,
            fixed_shots_per_class: 8,
            min_total_shots: 2,
            max_total_shots: 16,
            weighting: Weighting::Code,
            weight_scale: 2.0,
            negative_label: NegativeLabel::Real,
            ways: 2,
            shot_split: ShotSplit::Even,
            label_letters: ORIGINAL_LABEL_LETTERS,
        }
    }
}

impl SamplerConfig {
    /// How episodes are composed: ways and negative labels.
    pub fn rules(&self) -> EpisodeRules {
        EpisodeRules {
            negative_label: self.negative_label,
            ways: self.ways,
            shot_split: self.shot_split,
            label_letters: self.label_letters,
        }
    }

    /// The schedule of the fixed phase (all of [2-way]).
    pub fn fixed_schedule(&self) -> ShotSchedule {
        ShotSchedule::Fixed(self.fixed_shots_per_class)
    }

    /// The schedule of the strategy's main phase.
    pub fn schedule(&self) -> ShotSchedule {
        let (min, max) = (self.min_total_shots, self.max_total_shots);
        match (self.strategy, self.weighting) {
            (Strategy::TwoWay | Strategy::Instructions, _) => self.fixed_schedule(),
            (Strategy::TwoWayRandom, _) => ShotSchedule::UniformTotal { min, max },
            (Strategy::TwoWayWeight | Strategy::Mix, Weighting::Code) => ShotSchedule::Weighted {
                max: max / 2,
                scale: self.weight_scale,
            },
            (Strategy::TwoWayWeight | Strategy::Mix, Weighting::Paper) => {
                ShotSchedule::WeightedTotal { min, max }
            }
        }
    }
}

/// One instruction source of [mix].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstructionSource {
    /// Conversation file (LLaVA JSON array or Shikra JSON lines).
    pub file: PathBuf,
    /// Folder its images are relative to.
    pub images: PathBuf,
}

/// The [mix] strategy's instruction data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MixConfig {
    /// Probability of an LCL episode; the rest is split evenly over the sources.
    pub lcl_probability: f64,
    /// The instruction sources.
    pub sources: Vec<InstructionSource>,
}

impl Default for MixConfig {
    fn default() -> Self {
        Self {
            lcl_probability: 0.5,
            sources: Vec::new(),
        }
    }
}

impl MixConfig {
    /// Probabilities of the LCL episodes, then of each source.
    pub fn probabilities(&self) -> Vec<f64> {
        let rest = (1.0 - self.lcl_probability) / self.sources.len().max(1) as f64;
        std::iter::once(self.lcl_probability)
            .chain(std::iter::repeat_n(rest, self.sources.len()))
            .collect()
    }
}

/// The evaluation suites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Support images in all, per column of the tables (the paper's shot counts).
    pub shots: Vec<usize>,
    /// ImageNet-100: support images drawn per class.
    pub context_per_class: usize,
    /// ImageNet-100: query images per class.
    pub queries_per_class: usize,
    /// False-label ratios of the ablation.
    pub false_ratios: Vec<f64>,
    /// Shots of the position ablation (positions 1..=this are corrupted in turn).
    pub position_shots: usize,
    /// Seed of support shuffling and ablations.
    pub seed: u64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            shots: vec![0, 2, 4, 6, 8, 10, 12, 14, 16],
            context_per_class: 32,
            queries_per_class: 50,
            false_ratios: vec![0.0, 0.25, 0.5, 0.75, 1.0],
            position_shots: 16,
            seed: 42,
        }
    }
}

/// The checkpoint training starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Shikra/LCL checkpoint folder (Hugging Face layout, tokenizer included) or Hub repo id.
    pub base: PathBuf,
    /// CLIP checkpoint folder or Hub repo id; absent: `BASE/vision`, else the config's
    /// `mm_vision_tower`.
    pub vision: Option<PathBuf>,
    /// Compute precision: `f32`, or `bf16`: mixed precision (f32 master weights, gradients
    /// and AdamW state; forward and backward in bf16; a LoRA run stores its frozen base in
    /// bf16 and keeps adapters and projector in f32).
    pub dtype: Precision,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            base: "checkpoints/shikra-7b".into(),
            vision: None,
            dtype: Precision::F32,
        }
    }
}

/// Optimisation and checkpointing (the original: AdamW, lr 2e-5, no weight decay, 3%
/// warm-up then cosine, 50 epochs, seed 42 in [sampler]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Epochs in all (one epoch = `episodes_per_class` episodes of every class).
    pub epochs: usize,
    /// The last epochs that draw the strategy's shot schedule; the others draw the fixed
    /// phase's (ignored by [2-way], whose every epoch is fixed).
    pub main_epochs: usize,
    /// Episodes per forward/backward pass.
    pub batch_size: usize,
    /// Passes whose gradients are averaged into one optimiser step.
    pub grad_accumulation: usize,
    /// Peak learning rate of AdamW.
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// AdamW's epsilon (PyTorch's default).
    pub adam_epsilon: f64,
    /// Fraction of the optimiser steps spent warming up linearly from 0.
    pub warmup_ratio: f64,
    /// Global L2 norm the gradients are clipped to (0: no clipping).
    pub max_grad_norm: f64,
    /// Save a checkpoint every this many optimiser steps (and at the end).
    pub checkpoint_every: usize,
    /// Checkpoints kept on disk (at least 2, so one is always whole).
    pub keep_checkpoints: usize,
    /// Recompute memory-bound activations in the backward pass (less memory, more time).
    pub gradient_checkpointing: bool,
    /// Data-loader threads; 1 keeps batches in order (exact resume), more may reorder them.
    pub loader_workers: usize,
    /// Which answers the loss supervises: `query` (the original), `repeated-labels` or
    /// `all-answers`.
    pub supervise: Supervision,
    /// LoRA on the LLaMA linear layers instead of full fine-tuning.
    pub lora: LoraConfig,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            epochs: 50,
            main_epochs: 10,
            batch_size: 1,
            grad_accumulation: 1,
            learning_rate: 2e-5,
            weight_decay: 0.0,
            adam_epsilon: 1e-8,
            warmup_ratio: 0.03,
            max_grad_norm: 1.0,
            checkpoint_every: 500,
            keep_checkpoints: 2,
            gradient_checkpointing: false,
            loader_workers: 1,
            supervise: Supervision::Query,
            lora: LoraConfig::default(),
        }
    }
}

/// LoRA adapters on the LLaMA linear layers; the projector is still trained in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraConfig {
    /// Train adapters instead of every LLaMA weight.
    pub enabled: bool,
    /// Rank of each adapter.
    pub rank: usize,
    /// Scale numerator: the update is `alpha / rank * A B`.
    pub alpha: f64,
    /// Linear layers that get adapters, by name.
    pub targets: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            rank: 8,
            alpha: 16.0,
            targets: [
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// Validation episodes drawn from held-out classes (a per-class file of their own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// Per-class file of the held-out classes; absent: no validation pass.
    pub class_file: Option<PathBuf>,
    /// Folder its image paths are relative to.
    pub image_root: PathBuf,
    /// Episodes per held-out class.
    pub episodes_per_class: usize,
    /// Support images per class of each validation episode.
    pub shots_per_class: usize,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            class_file: None,
            image_root: PathBuf::new(),
            episodes_per_class: 1,
            shots_per_class: 8,
        }
    }
}

/// Settings given on the command line that replace the config's (`lcl train --model ...`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `[model] base`.
    pub model: Option<PathBuf>,
    /// `[model] vision`.
    pub vision: Option<PathBuf>,
    /// `[data] image_root`.
    pub image_root: Option<PathBuf>,
    /// `[data] class_file`.
    pub class_file: Option<PathBuf>,
    /// `[sampler] label_letters`.
    pub label_letters: Option<usize>,
    /// `[training] epochs`.
    pub epochs: Option<usize>,
}

impl RunConfig {
    /// The config with `overrides` put over it, checked again.
    pub fn apply(mut self, overrides: &Overrides) -> Result<Self> {
        let o = overrides.clone();
        if let Some(model) = o.model {
            self.model.base = model;
        }
        if o.vision.is_some() {
            self.model.vision = o.vision;
        }
        if let Some(root) = o.image_root {
            self.data.image_root = root;
        }
        if let Some(file) = o.class_file {
            self.data.class_file = file;
        }
        if let Some(letters) = o.label_letters {
            self.sampler.label_letters = letters;
        }
        if let Some(epochs) = o.epochs {
            self.training.epochs = epochs;
        }
        self.validate()?;
        Ok(self)
    }

    /// Reads and checks a TOML config.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the config", path.display()))?;
        Self::parse(&text).with_context(|| format!("{}: invalid config", path.display()))
    }

    /// Parses and checks TOML text.
    pub fn parse(text: &str) -> Result<Self> {
        let config: Self = toml::from_str(text).map_err(|err| anyhow::anyhow!("{err}"))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values (after command-line overrides too).
    pub fn validate(&self) -> Result<()> {
        let s = &self.sampler;
        if s.episodes_per_class == 0 {
            bail!("sampler.episodes_per_class must be at least 1");
        }
        if s.ways < 2 {
            bail!("sampler.ways must be at least 2, not {}", s.ways);
        }
        if s.label_letters == 0 || (s.label_letters == 1 && s.ways > 26) {
            bail!(
                "sampler.label_letters = {} leaves too few distinct names for {} ways",
                s.label_letters,
                s.ways
            );
        }
        s.fixed_schedule()
            .validate()
            .context("sampler.fixed_shots_per_class")?;
        s.schedule()
            .validate()
            .context("sampler.min_total_shots / max_total_shots / weight_scale")?;
        let p = self.mix.lcl_probability;
        if !(p > 0.0 && p <= 1.0) {
            bail!("mix.lcl_probability must be in (0, 1], not {p}");
        }
        if matches!(s.strategy, Strategy::Mix | Strategy::Instructions)
            && self.mix.sources.is_empty()
        {
            bail!("strategy \"mix\" and \"instructions\" need at least one [[mix.sources]] entry");
        }
        self.validate_training()?;
        if let Some(odd) = self.evaluation.shots.iter().find(|n| *n % 2 == 1) {
            bail!("evaluation.shots: {odd} is odd; the 2-way suites split shots evenly");
        }
        if let Some(r) = self
            .evaluation
            .false_ratios
            .iter()
            .find(|r| !(0.0..=1.0).contains(*r))
        {
            bail!("evaluation.false_ratios: {r} is not in 0..=1");
        }
        Ok(())
    }
}

impl RunConfig {
    fn validate_training(&self) -> Result<()> {
        let t = &self.training;
        if t.epochs == 0 || t.batch_size == 0 || t.grad_accumulation == 0 {
            bail!("training.epochs, batch_size and grad_accumulation must be at least 1");
        }
        if t.main_epochs > t.epochs {
            bail!(
                "training.main_epochs ({}) is more than training.epochs ({})",
                t.main_epochs,
                t.epochs
            );
        }
        if !(t.learning_rate > 0.0 && t.learning_rate <= 1.0) {
            bail!(
                "training.learning_rate must be in (0, 1], not {}",
                t.learning_rate
            );
        }
        if !(0.0..1.0).contains(&t.warmup_ratio) {
            bail!(
                "training.warmup_ratio must be in [0, 1), not {}",
                t.warmup_ratio
            );
        }
        if t.max_grad_norm < 0.0 || t.weight_decay < 0.0 || t.adam_epsilon <= 0.0 {
            bail!("training.max_grad_norm and weight_decay must be >= 0, adam_epsilon > 0");
        }
        if t.checkpoint_every == 0 || t.keep_checkpoints < 2 || t.loader_workers == 0 {
            bail!(
                "training.checkpoint_every and loader_workers must be at least 1, keep_checkpoints at least 2"
            );
        }
        if t.lora.enabled && (t.lora.rank == 0 || t.lora.targets.is_empty()) {
            bail!("training.lora needs rank >= 1 and at least one target");
        }
        if self.model.dtype == Precision::F16 {
            bail!(
                "model.dtype = \"f16\" would need loss scaling, which training does not do: \
                 use \"bf16\" (mixed precision) or \"f32\""
            );
        }
        let v = &self.validation;
        if v.episodes_per_class == 0 || v.shots_per_class == 0 {
            bail!("validation.episodes_per_class and shots_per_class must be at least 1");
        }
        Ok(())
    }
}

impl RunConfig {
    /// The training episodes this config describes, with shot schedule `shots` (the fixed
    /// or the main phase's): reads the per-class file and the questions.
    pub fn train_set(&self, shots: ShotSchedule) -> Result<TrainSetSpec> {
        let config = self;
        Ok(TrainSetSpec {
            classes: class_file::read(&config.data.class_file)?,
            image_root: config.data.image_root.clone(),
            shots,
            questions: read_questions(&config.data.questions)?,
            episodes_per_class: config.sampler.episodes_per_class,
            seed: config.sampler.seed,
            rules: config.sampler.rules(),
        })
    }

    /// The validation episodes of this config (its `[validation]` classes, fixed shots), if
    /// it names validation classes.
    pub fn validation_set(&self) -> Result<Option<TrainSetSpec>> {
        let config = self;
        let v = &config.validation;
        let Some(file) = &v.class_file else {
            return Ok(None);
        };
        Ok(Some(TrainSetSpec {
            classes: class_file::read(file)?,
            image_root: v.image_root.clone(),
            shots: ShotSchedule::Fixed(v.shots_per_class),
            questions: read_questions(&config.data.questions)?,
            episodes_per_class: v.episodes_per_class,
            seed: config.sampler.seed,
            rules: config.sampler.rules(),
        }))
    }
}

/// Reads the query questions file: `{"questions": [...]}` or a plain JSON array; every
/// question needs one `<image>`.
pub fn read_questions(path: &Path) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum File {
        Wrapped { questions: Vec<String> },
        Plain(Vec<String>),
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the questions", path.display()))?;
    let questions = match serde_json::from_str(&text)
        .with_context(|| format!("{}: expected a JSON array of questions", path.display()))?
    {
        File::Wrapped { questions } | File::Plain(questions) => questions,
    };
    if questions.is_empty() {
        bail!("{}: no questions", path.display());
    }
    if let Some((i, q)) = questions
        .iter()
        .enumerate()
        .find(|(_, q)| q.matches(crate::template::IMAGE_PLACEHOLDER).count() != 1)
    {
        bail!(
            "{}: question {} has no single <image> placeholder: {q:?}",
            path.display(),
            i + 1
        );
    }
    Ok(questions)
}
