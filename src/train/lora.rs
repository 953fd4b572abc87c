//! LoRA on the LLaMA linear layers with Burn's built-in reparameterisation; the projector stays
//! trained in full. Merging folds every adapter into its base weight for export.

use anyhow::{Result, anyhow};
use burn::module::{Lora, Module, ParamGroup};
use burn::tensor::FloatDType;

use crate::config::LoraConfig;
use crate::train::trainer::{LclTrainer, cast_params};

/// The LLaMA weights `config.targets` names (`q_proj`, `mlp.down_proj`, ...).
pub fn target_group(config: &LoraConfig) -> Result<ParamGroup> {
    let names = config
        .targets
        .iter()
        .map(|t| regex_escape(t))
        .collect::<Vec<_>>()
        .join("|");
    let pattern = format!(r"^llm\.layers\.\d+\.(self_attn|mlp)\.({names})\.weight$");
    ParamGroup::from_regex(&pattern).map_err(|err| anyhow!("training.lora.targets: {err:?}"))
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escape = !(c.is_ascii_alphanumeric() || c == '_');
            escape.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

/// Freezes `trainer`, attaches adapters to the targeted LLaMA weights and trains the
/// projector in full. Adapters start at `A ~ N(0, 1/rank)`, `B = 0` (the model is unchanged).
/// The frozen LLaMA weights are stored in the trainer's compute dtype (bf16 halves them);
/// the adapters are f32, and the projector keeps its dtype.
pub fn apply(mut trainer: LclTrainer, config: &LoraConfig) -> Result<LclTrainer> {
    let compute = trainer.compute();
    trainer.llm = cast_params(trainer.llm, compute);
    let group = target_group(config)?;
    let mut adapted = 0;
    trainer.visit(&mut CountMatches {
        group: &group,
        count: &mut adapted,
        path: Vec::new(),
    });
    if adapted == 0 {
        return Err(anyhow!(
            "training.lora.targets {:?} match no LLaMA weight (names: q_proj, k_proj, v_proj, \
             o_proj, gate_proj, up_proj, down_proj)",
            config.targets
        ));
    }
    Ok(trainer
        .apply_lora(
            Lora::new(config.rank, config.alpha)
                .set_param_group(group)
                .set_dtype(FloatDType::F32),
        )
        .unfreeze_group(ParamGroup::from_predicate("projector.")))
}

/// Folds every adapter into its base weight: the plain model, ready to save or evaluate.
pub fn merge(trainer: LclTrainer) -> LclTrainer {
    trainer.valid().materialize()
}

/// Counts the parameters a group matches, by their record paths.
struct CountMatches<'a> {
    group: &'a ParamGroup,
    count: &'a mut usize,
    path: Vec<String>,
}

impl burn::module::ModuleVisitor for CountMatches<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        let path = self.path.join(".");
        if self.group.matches(&param.id, Some(&path)) {
            *self.count += 1;
        }
    }
}

/// `lcl merge-lora`: loads the run's base model, attaches adapters as the run did, puts the
/// adapters and projector of `weights` on them, merges, and writes every trainable tensor to
/// `out`. Returns the number of tensors written.
pub fn merge_file(
    config: &crate::config::RunConfig,
    weights: &std::path::Path,
    out: &std::path::Path,
    device: &burn::tensor::Device,
) -> Result<usize> {
    use crate::train::checkpoint::{Keep, write_record};
    if !config.training.lora.enabled {
        return Err(anyhow!(
            "the config's [training.lora] is not enabled: its weights hold no adapter to merge"
        ));
    }
    let base = &crate::model_folder::locate_model(&config.model.base)?;
    let tokenizer = crate::tokenizer::LclTokenizer::from_dir(base)?;
    let vision_dir = crate::model_folder::resolve_vision_dir(base, config.model.vision.as_deref())?;
    // Merged in f32, whatever the run computed in: W + s * A @ B without rounding.
    let model = crate::model_folder::load_model(
        base,
        &vision_dir,
        &tokenizer,
        device,
        crate::model_folder::Precision::F32,
    )?;
    let trainer = apply(LclTrainer::new(model), &config.training.lora)?;
    let record = burn::store::ModuleRecord::load(weights)
        .map_err(|err| anyhow!("{}: cannot read: {err}", weights.display()))?;
    let trainer = trainer
        .try_load_record(record.allow_partial(true))
        .map_err(|err| anyhow!("{}: does not fit the LoRA model: {err}", weights.display()))?;
    write_record(merge(trainer).into_record(), Keep::All, out)
}
