//! LCL fine-tuning with Burn's Learner on the tiny model (tests/fixtures/tiny-lcl with the
//! tiny CLIP tower) and the tiny image folder: the loss falls, an interrupted and resumed run
//! equals an uninterrupted one, the tower stays frozen and out of checkpoints, and LoRA
//! checkpoints hold only adapters and the projector and merge into the same logits.

mod common;

use std::path::{Path, PathBuf};

use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::train::{Learner, TrainStep};
use common::*;
use lcl::config::RunConfig;
use lcl::data::batch::{EpisodeBatcher, EpisodeItem, Padding};
use lcl::data::class_file;
use lcl::model_folder::is_adapter;
use lcl::model_folder::{Precision, apply_weights, load_model};
use lcl::tokenizer::LclTokenizer;
use lcl::train::{LclTrainer, TrainRequest, lora, train};
use lcl_model::TokenBatch;

/// `tests/fixtures/tiny-train.toml` (the tiny model on the tiny folder's per-class file, 1
/// shot per class, batches of 2) with `epochs` epochs of 6 episodes and a checkpoint every 2
/// steps.
fn tiny_config(epochs: usize) -> RunConfig {
    let mut config = RunConfig::from_file(&fixture("tiny-train.toml")).unwrap();
    config.training.epochs = epochs;
    config.training.main_epochs = 1;
    config.training.checkpoint_every = 2;
    config
}

fn request(config: RunConfig, out: PathBuf) -> TrainRequest {
    TrainRequest {
        config,
        out,
        resume: false,
        stop_after: None,
    }
}

/// `steps.jsonl` as (step, loss) pairs.
fn step_losses(out: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(out.join("steps.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                record["step"].as_u64().unwrap(),
                record["loss"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// Tensor names and bytes of a burnpack file.
fn pack(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut tensors: Vec<(String, Vec<u8>)> = burn_pack::Reader::from_file(path)
        .unwrap()
        .into_tensors()
        .unwrap()
        .into_iter()
        .map(|t| (t.name.clone(), t.to_bytes().unwrap().to_vec()))
        .collect();
    tensors.sort();
    tensors
}

#[test]
fn the_tiny_model_learns_lcl_episodes_and_validates_every_epoch() {
    let dir = scratch("train-learns");
    let out = dir.join("run");
    let summary = train(&request(tiny_config(8), out.clone()), &device()).unwrap();
    assert_eq!(summary.steps, 24, "8 epochs x 6 episodes / batches of 2");
    let losses = step_losses(&out);
    assert_eq!(losses.len(), 24);
    let first = losses[0].1;
    let last: f64 = losses[21..].iter().map(|(_, l)| l).sum::<f64>() / 3.0;
    assert!(
        last < 0.4 * first,
        "loss went from {first:.3} to {last:.3}: {losses:?}"
    );
    let validation = std::fs::read_to_string(out.join("validation.jsonl")).unwrap();
    let passes: Vec<serde_json::Value> = validation
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(passes.len(), 8, "one validation pass per epoch");
    let (v0, v7) = (
        passes[0]["loss"].as_f64().unwrap(),
        passes[7]["loss"].as_f64().unwrap(),
    );
    assert!(v7 < v0, "validation loss {v0} -> {v7}");
    assert!(summary.weights.unwrap().is_file());
}

#[test]
fn an_interrupted_run_resumed_equals_the_uninterrupted_run() {
    let dir = scratch("train-resume");
    let config = tiny_config(2);
    let whole = dir.join("whole");
    train(&request(config.clone(), whole.clone()), &device()).unwrap();

    let parts = dir.join("parts");
    let mut first = request(config.clone(), parts.clone());
    first.stop_after = Some(3);
    let stopped = train(&first, &device()).unwrap();
    assert_eq!(stopped.steps, 3);
    assert_eq!(stopped.last_checkpoint, Some(2));
    assert!(stopped.weights.is_none());

    let again = train(&request(config.clone(), parts.clone()), &device()).unwrap_err();
    assert!(format!("{again:#}").contains("--resume"), "{again:#}");

    let mut resumed = request(config, parts.clone());
    resumed.resume = true;
    let finished = train(&resumed, &device()).unwrap();
    assert_eq!(finished.steps, 6);

    let (a, b) = (step_losses(&whole), step_losses(&parts));
    assert_eq!(a.len(), 6);
    assert_eq!(
        b.len(),
        6,
        "step 3 was redone from checkpoint 2, not logged twice"
    );
    for ((step, la), (_, lb)) in a.iter().zip(&b) {
        assert!(
            (la - lb).abs() <= 1e-6 * la.abs().max(1.0),
            "step {step}: {la} uninterrupted vs {lb} resumed"
        );
    }
    let (wa, wb) = (
        pack(&whole.join("model.bpk")),
        pack(&parts.join("model.bpk")),
    );
    assert_eq!(wa.len(), wb.len());
    for ((name, x), (_, y)) in wa.iter().zip(&wb) {
        let (x, y): (&[f32], &[f32]) = (bytemuck_f32(x), bytemuck_f32(y));
        let diff = max_abs_diff(x, y);
        assert!(diff <= 1e-6, "{name}: trained weights differ by {diff}");
    }
}

fn bytemuck_f32(bytes: &[u8]) -> &[f32] {
    assert_eq!(bytes.len() % 4, 0);
    // SAFETY: f32 has no invalid bit patterns; the burnpack data section is aligned.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 4) }
}

/// The tiny model, its batcher and one batch of two training episodes.
fn tiny_trainer_and_batch() -> (LclTrainer, lcl::data::batch::EpisodeBatch, LclTokenizer) {
    let config = tiny_config(1);
    let tokenizer = LclTokenizer::from_dir(&config.model.base).unwrap();
    let model = load_model(
        &config.model.base,
        config.model.vision.as_deref().unwrap(),
        &tokenizer,
        &device(),
        Precision::F32,
    )
    .unwrap();
    let trainer = LclTrainer::new(model);
    let items: Vec<EpisodeItem> = episode_items(&config);
    let batcher = EpisodeBatcher {
        pad_id: tokenizer.pad_id(),
        padding: Padding::Right,
        image_size: 56,
    };
    let batch = batcher.batch(items, &device().autodiff());
    (trainer, batch, tokenizer)
}

fn episode_items(config: &RunConfig) -> Vec<EpisodeItem> {
    use burn::data::dataset::Dataset;
    use lcl::data::train_set::{EpochEpisodes, TrainSet, TrainSetSpec};
    let spec = TrainSetSpec {
        classes: class_file::read(&config.data.class_file).unwrap(),
        image_root: config.data.image_root.clone(),
        shots: config.sampler.fixed_schedule(),
        questions: lcl::config::read_questions(&config.data.questions).unwrap(),
        episodes_per_class: 1,
        seed: 42,
        rules: Default::default(),
    };
    let set = TrainSet::new(
        EpochEpisodes::new(std::sync::Arc::new(spec), 0).unwrap(),
        std::sync::Arc::new(LclTokenizer::from_dir(&config.model.base).unwrap()),
        16,
        56,
    );
    (0..2).map(|i| set.get(i).unwrap()).collect()
}

#[test]
fn the_vision_tower_gets_no_gradient_and_stays_bit_for_bit_unchanged() {
    let (trainer, batch, _) = tiny_trainer_and_batch();
    let before = trainer.vision().clone().into_record().into_bytes().unwrap();
    let mut learner = Learner::new(trainer.train(), AdamWConfig::new().init(), 1e-2);
    learner.fork(&device().autodiff());
    let trainable = learner.model().num_params();
    for _ in 0..3 {
        let output = learner.train_step(batch.clone());
        assert_eq!(
            output.grads.len(),
            count_params(&learner.model()),
            "one gradient per trainable tensor"
        );
        learner.lr_step();
        learner.optimizer_step(output.grads);
    }
    let model = learner.model();
    assert_eq!(model.num_params(), trainable);
    let tower = model.vision().clone();
    let mut on_autodiff = false;
    tower.visit(&mut AutodiffProbe(&mut on_autodiff));
    assert!(!on_autodiff, "the tower never joins the autodiff graph");
    let after = tower.into_record().into_bytes().unwrap();
    assert!(
        before.to_vec() == after.to_vec(),
        "the frozen tower changed"
    );
    let projector_changed = model.projector.weight.val().to_data()
        != LclTrainer::new(
            load_model(
                &fixture("tiny-lcl"),
                &fixture("tiny-clip"),
                &LclTokenizer::from_dir(&fixture("tiny-lcl")).unwrap(),
                &device(),
                Precision::F32,
            )
            .unwrap(),
        )
        .projector
        .weight
        .val()
        .to_data();
    assert!(projector_changed, "the projector trains");
}

struct AutodiffProbe<'a>(&'a mut bool);

impl burn::module::ModuleVisitor for AutodiffProbe<'_> {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        *self.0 |= param.val().is_autodiff();
    }
}

fn count_params<M: Module>(module: &M) -> usize {
    struct Count(usize);
    impl burn::module::ModuleVisitor for Count {
        fn visit_float<const D: usize>(
            &mut self,
            _param: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            self.0 += 1;
        }
    }
    let mut count = Count(0);
    module.visit(&mut count);
    count.0
}

#[test]
fn accumulated_gradients_are_the_mean_of_the_passes_and_clipped_to_the_global_norm() {
    let (trainer, batch, _) = tiny_trainer_and_batch();
    let trainer = trainer.train();
    let grads = |t: &LclTrainer| -> GradientsParams { TrainStep::step(t, batch.clone()).grads };
    let single = grads(&trainer);
    let weight_id = trainer.projector.weight.id;
    let one: Vec<f32> = values(single.get::<2>(weight_id).unwrap());
    let mut accumulator = burn::optim::GradientsAccumulator::new();
    accumulator.accumulate(&trainer, grads(&trainer));
    accumulator.accumulate(&trainer, grads(&trainer));
    let (mean, norm) = lcl::train::grads::average_and_clip(&trainer, accumulator.grads(), 2, 0.0);
    assert_close(
        "mean of two equal passes",
        &values(mean.get::<2>(weight_id).unwrap()),
        &one,
        1e-6,
    );
    let (clipped, same_norm) =
        lcl::train::grads::average_and_clip(&trainer, grads(&trainer), 1, norm / 4.0);
    assert!((same_norm - norm).abs() < 1e-4 * norm);
    let scaled: Vec<f32> = one.iter().map(|g| g * 0.25).collect();
    assert_close(
        "clipped to a quarter of the norm",
        &values(clipped.get::<2>(weight_id).unwrap()),
        &scaled,
        1e-6,
    );
}

#[test]
fn lora_checkpoints_hold_adapters_and_projector_and_merging_keeps_the_logits() {
    let dir = scratch("train-lora");
    let mut config = tiny_config(1);
    config.training.lora.enabled = true;
    config.training.lora.rank = 2;
    config.training.lora.targets = vec!["q_proj".into(), "v_proj".into(), "down_proj".into()];
    config.training.gradient_checkpointing = true;
    let out = dir.join("run");
    let summary = train(&request(config.clone(), out.clone()), &device()).unwrap();
    let weights = summary.weights.unwrap();
    let names: Vec<String> = pack(&weights).into_iter().map(|(n, _)| n).collect();
    let adapters = names.iter().filter(|n| is_adapter(n)).count();
    assert_eq!(
        adapters,
        2 * 3 * 2,
        "A and B of 3 targets in 2 layers: {names:?}"
    );
    assert!(
        names
            .iter()
            .all(|n| is_adapter(n) || n.starts_with("projector.")),
        "{names:?}"
    );
    assert!(names.contains(&"projector.weight".to_string()));
    let checkpoint = pack(&out.join("checkpoint/model-3.bpk"));
    assert_eq!(
        checkpoint.len(),
        names.len(),
        "checkpoints keep the same tensors"
    );

    // The LoRA model's logits, adapters loaded from the run.
    let tokenizer = LclTokenizer::from_dir(&config.model.base).unwrap();
    let load = || {
        load_model(
            &config.model.base,
            config.model.vision.as_deref().unwrap(),
            &tokenizer,
            &device(),
            Precision::F32,
        )
        .unwrap()
    };
    let adapted = lora::apply(LclTrainer::new(load()), &config.training.lora)
        .unwrap()
        .load_record(
            burn::store::ModuleRecord::load(&weights)
                .unwrap()
                .allow_partial(true),
        )
        .into_model();
    let merged_file = dir.join("merged.bpk");
    lora::merge_file(&config, &weights, &merged_file, &device()).unwrap();
    assert!(pack(&merged_file).iter().all(|(n, _)| !is_adapter(n)));
    let merged = apply_weights(load(), &merged_file).unwrap();
    let refused = apply_weights(load(), &weights).unwrap_err();
    assert!(format!("{refused:#}").contains("merge-lora"), "{refused:#}");

    let ids = tokenizer.encode("USER: what is in the image? ASSISTANT: there is");
    let batch = TokenBatch::left_padded(&[ids], tokenizer.pad_id());
    let a = values(adapted.forward_logits(&batch, None).unwrap());
    let b = values(merged.forward_logits(&batch, None).unwrap());
    let base = values(load().forward_logits(&batch, None).unwrap());
    assert!(
        max_abs_diff(&a, &base) > 1e-4,
        "the adapters changed the model"
    );
    assert_close("merged vs LoRA logits", &b, &a, 1e-4);
}

/// Overwrites one f32 tensor of a safetensors file with NaN.
fn poison_safetensors(path: &Path, tensor: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let offsets = &header[tensor]["data_offsets"];
    let (start, end) = (
        8 + header_len + offsets[0].as_u64().unwrap() as usize,
        8 + header_len + offsets[1].as_u64().unwrap() as usize,
    );
    for chunk in bytes[start..end].chunks_mut(4) {
        chunk.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let dir = scratch("train-nan");
    let clip = dir.join("clip");
    copy_tree(&fixture("tiny-clip-st"), &clip);
    let mut config = tiny_config(1);
    config.model.vision = Some(clip.clone());
    let out = dir.join("run");
    let mut first = request(config.clone(), out.clone());
    first.stop_after = Some(2);
    train(&first, &device()).unwrap();

    poison_safetensors(
        &clip.join("model.safetensors"),
        "model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight",
    );
    // The run is resumed as if it had read the poisoned tower from the start (a resume over
    // changed files is refused otherwise): its recorded inputs are brought up to date.
    let state_path = out.join("checkpoint/state-2.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    state["settings"]["inputs"]["vision"] =
        serde_json::to_value(lcl::identity::folder_identity(&clip).unwrap()).unwrap();
    std::fs::write(&state_path, state.to_string()).unwrap();
    let mut resumed = request(config, out.clone());
    resumed.resume = true;
    let error = format!("{:#}", train(&resumed, &device()).unwrap_err());
    assert!(error.contains("loss is NaN at optimiser step 3"), "{error}");
    assert!(
        error.contains("checkpoint 2 is the last good one"),
        "{error}"
    );
    assert_eq!(step_losses(&out).len(), 2, "the NaN step is not logged");
    for name in [
        "model-2.bpk",
        "optim-2.bpk",
        "scheduler-2.bpk",
        "state-2.json",
    ] {
        assert!(out.join("checkpoint").join(name).is_file(), "{name} kept");
    }
    assert!(!out.join("model.bpk").exists());
}

#[test]
fn lcl_train_reports_progress_resumes_and_its_weights_change_lcl_infer_answers() {
    let dir = scratch("train-cli");
    let out = dir.join("run");
    let out_arg = out.to_str().unwrap();
    let config = "tests/fixtures/tiny-train.toml";
    let stopped = run_lcl(&[
        "train",
        "--config",
        config,
        "--out",
        out_arg,
        "--stop-after",
        "12",
    ]);
    let text = stderr(&stopped);
    assert!(stopped.status.success(), "{text}");
    assert!(text.contains("step 1/60 | epoch 1/20 | loss "), "{text}");
    assert!(text.contains("checkpoint 10 written"), "{text}");
    assert!(text.contains("validation after epoch 1: loss "), "{text}");
    assert!(text.contains("continue with --resume"), "{text}");

    let finished = run_lcl(&["train", "--config", config, "--out", out_arg, "--resume"]);
    let text = stderr(&finished);
    assert!(finished.status.success(), "{text}");
    assert!(
        text.contains("resuming") && text.contains("at step 10 of 60"),
        "{text}"
    );
    assert!(text.contains("step 60/60"), "{text}");
    let weights = out.join("model.bpk");
    assert!(weights.is_file(), "{text}");

    let infer = |extra: &[&str]| {
        let mut args = vec![
            "infer",
            "--model",
            "tests/fixtures/tiny-lcl",
            "--vision",
            "tests/fixtures/tiny-clip",
            "--support",
            "tests/fixtures/folder/n01440764/n01440764_0.png=tench",
            "--support",
            "tests/fixtures/folder/n01443537/n01443537_0.png=goldfish",
            "--query",
            "tests/fixtures/folder/n01440764/n01440764_1.png",
            "--max-new-tokens",
            "4",
            "--json",
        ];
        args.extend_from_slice(extra);
        let output = run_lcl(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()["generated_ids"]
            .clone()
    };
    let trained = infer(&["--weights", weights.to_str().unwrap()]);
    assert_ne!(
        infer(&[]),
        trained,
        "the trained weights answer differently"
    );
    // The fine-tune learned the answer's frame: `there is "` starts the answer.
    let tokenizer = LclTokenizer::from_dir(&fixture("tiny-lcl")).unwrap();
    let ids: Vec<u32> = serde_json::from_value(trained).unwrap();
    assert!(tokenizer.decode(&ids, true).starts_with("there"), "{ids:?}");
}

#[test]
fn a_full_fine_tune_leaves_a_model_folder_that_loads_as_the_base_with_its_weights() {
    let dir = scratch("train-folder");
    let out = dir.join("run");
    let weights = train(&request(tiny_config(1), out.clone()), &device())
        .unwrap()
        .weights
        .unwrap();
    let folder = out.join("model");
    let vision = lcl::model_folder::resolve_vision_dir(&folder, None).unwrap();
    assert_eq!(vision, std::path::absolute(fixture("tiny-clip")).unwrap());
    let tokenizer = LclTokenizer::from_dir(&folder).unwrap();
    let from_folder = load_model(&folder, &vision, &tokenizer, &device(), Precision::F32).unwrap();
    let applied = apply_weights(
        load_model(
            &fixture("tiny-lcl"),
            &vision,
            &tokenizer,
            &device(),
            Precision::F32,
        )
        .unwrap(),
        &weights,
    )
    .unwrap();
    let ids = tokenizer.encode("USER: what is in the image? ASSISTANT: there is");
    let batch = TokenBatch::left_padded(&[ids], tokenizer.pad_id());
    assert_close(
        "the run's model folder vs the base with --weights",
        &values(from_folder.forward_logits(&batch, None).unwrap()),
        &values(applied.forward_logits(&batch, None).unwrap()),
        1e-6,
    );
}

/// The validation losses of a run of the tiny config at the original's learning rate (2e-5,
/// 60 steps) with `[model] dtype = dtype`, and its trained weights.
fn run_at_the_original_learning_rate(dtype: Precision, name: &str) -> (Vec<f64>, PathBuf) {
    let mut config = tiny_config(20);
    config.training.learning_rate = 2e-5;
    config.model.dtype = dtype;
    let out = scratch(name).join("run");
    let summary = train(&request(config, out.clone()), &device()).unwrap();
    let losses = std::fs::read_to_string(out.join("validation.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"]
                .as_f64()
                .unwrap()
        })
        .collect();
    (losses, summary.weights.unwrap())
}

/// Pure bf16 weights and AdamW state barely learn at 2e-5 (the updates round away); mixed
/// precision (f32 master weights, bf16 compute) must learn about as far as f32, and its
/// weights must load where f32 weights do.
#[test]
fn bf16_mixed_precision_learns_as_far_as_f32_at_the_original_learning_rate() {
    if !device().supports_dtype(burn::tensor::DType::BF16) {
        eprintln!("this device cannot compute in bf16: nothing to compare");
        return;
    }
    let (f32_losses, _) = run_at_the_original_learning_rate(Precision::F32, "mixed-f32");
    let (bf16_losses, weights) = run_at_the_original_learning_rate(Precision::Bf16, "mixed-bf16");
    let drop = |l: &[f64]| l[0] - l[l.len() - 1];
    let (f32_drop, bf16_drop) = (drop(&f32_losses), drop(&bf16_losses));
    eprintln!("validation loss: f32 {f32_losses:?}\nbf16 {bf16_losses:?}");
    assert!(f32_drop > 1.0, "the f32 run learns: {f32_losses:?}");
    assert!(
        bf16_drop >= 0.9 * f32_drop,
        "bf16 fell by {bf16_drop:.3}, f32 by {f32_drop:.3}"
    );
    // The master weights are what was saved: f32, loadable at any precision.
    let tensors = burn_pack::Reader::from_file(&weights)
        .unwrap()
        .into_tensors()
        .unwrap();
    assert!(tensors.iter().all(|t| t.dtype == burn::tensor::DType::F32));
    let tokenizer = LclTokenizer::from_dir(&fixture("tiny-lcl")).unwrap();
    let base = load_model(
        &fixture("tiny-lcl"),
        &fixture("tiny-clip"),
        &tokenizer,
        &device(),
        Precision::Bf16,
    )
    .unwrap();
    apply_weights(base, &weights).unwrap();
}

/// Every float parameter's record path and dtype.
fn param_dtypes<M: Module>(module: &M) -> Vec<(String, burn::tensor::DType)> {
    struct Dtypes(Vec<String>, Vec<(String, burn::tensor::DType)>);
    impl burn::module::ModuleVisitor for Dtypes {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.0.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.0.pop();
        }
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            self.1.push((self.0.join("."), param.val().dtype()));
        }
    }
    let mut dtypes = Dtypes(Vec::new(), Vec::new());
    module.visit(&mut dtypes);
    dtypes.1
}

/// LoRA under `dtype = "bf16"`: the frozen LLaMA weights in bf16, the adapters and the
/// projector in f32; the run trains and its adapters merge.
#[test]
fn lora_in_mixed_precision_keeps_a_bf16_base_and_f32_adapters_and_projector() {
    use burn::tensor::DType;
    if !device().supports_dtype(DType::BF16) {
        eprintln!("this device cannot compute in bf16");
        return;
    }
    let mut config = tiny_config(1);
    config.model.dtype = Precision::Bf16;
    config.training.lora.enabled = true;
    config.training.lora.rank = 2;
    let tokenizer = LclTokenizer::from_dir(&config.model.base).unwrap();
    let model = load_model(
        &config.model.base,
        config.model.vision.as_deref().unwrap(),
        &tokenizer,
        &device(),
        Precision::F32,
    )
    .unwrap();
    let trainer = lora::apply(
        LclTrainer::new(model).computing_in(DType::BF16),
        &config.training.lora,
    )
    .unwrap();
    let dtypes = param_dtypes(&trainer);
    assert!(dtypes.iter().any(|(p, _)| p.contains("lora")), "{dtypes:?}");
    for (path, dtype) in &dtypes {
        let expected = if path.contains("lora") || path.starts_with("projector") {
            DType::F32
        } else {
            DType::BF16
        };
        assert_eq!(*dtype, expected, "{path}");
    }
    let out = scratch("lora-bf16").join("run");
    let summary = train(&request(config.clone(), out.clone()), &device()).unwrap();
    assert!(step_losses(&out).iter().all(|(_, l)| l.is_finite()));
    let merged = out.join("merged.bpk");
    lora::merge_file(&config, &summary.weights.unwrap(), &merged, &device()).unwrap();
    assert!(pack(&merged).iter().all(|(n, _)| !is_adapter(n)));
}

/// A resumed run must read the same files, not only files of the same names.
#[test]
fn a_resume_over_changed_input_files_is_refused_naming_them() {
    let dir = scratch("train-resume-inputs");
    let mut config = tiny_config(2);
    let class_file = dir.join("classes.jsonl");
    std::fs::copy(&config.data.class_file, &class_file).unwrap();
    config.data.class_file = class_file.clone();
    let out = dir.join("run");
    let mut first = request(config.clone(), out.clone());
    first.stop_after = Some(2);
    train(&first, &device()).unwrap();
    let text = std::fs::read_to_string(&class_file).unwrap();
    std::fs::write(&class_file, text + "\n").unwrap();
    let mut resumed = request(config, out);
    resumed.resume = true;
    let err = format!("{:#}", train(&resumed, &device()).unwrap_err());
    assert!(
        err.contains("the files the run reads differ") && err.contains("class_file.bytes"),
        "{err}"
    );
}
