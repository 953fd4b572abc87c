//! The `lcl` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use lcl::backend::{backend_name, device};
use lcl::config::{RunConfig, read_questions};
use lcl::data::class_file;
use lcl::data::eval_episodes::draw_test_classes;
use lcl::data::image_folder::ImageFolder;
use lcl::data::split::ClassSplit;
use lcl::data::train_set::{EpisodeSampler, TrainSetSpec};
use lcl::eval::job::{AblationKind, EvalRequest, evaluate};
use lcl::eval::run::ScoreMode;
use lcl::infer::{InferRequest, Precision, SupportShot, render_prompt, run};
use lcl::neighbors::{NeighborJob, NeighborSettings};
use lcl_model::GenerationConfig;

/// Link-Context Learning for multimodal LLMs, in Burn.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer one LCL episode: support images with labels, then a query image.
    ///
    /// Example: lcl infer --model LCL_2WAY_WEIGHT --vision clip-vit-large-patch14
    ///   --support cactihog1.jpg=cactihog --support hedgehog1.jpg=hedgehog --query q.jpg
    Infer(InferArgs),
    /// Compute every training class's hard-negative neighbours with CLIP and write the
    /// per-class file the LCL samplers read (the original's train900_pairs.jsonl).
    ///
    /// Example: lcl neighbors --clip clip-vit-base-patch16 --data imagenet/train
    ///   --out datasets/train900_pairs.jsonl
    Neighbors(NeighborsArgs),
    /// Print training episodes as a config samples them (JSON lines: support images and
    /// labels, question, answer), without reading any image: to check a config and its data.
    ///
    /// Example: lcl episodes --config configs/lcl-2way-weight.toml --count 5
    Episodes(EpisodesArgs),
    /// Draw the ImageNet-100 test file (per held-out class: context and query images) from
    /// an image folder, in the format of the original's test100_pairs.jsonl.
    ///
    /// Example: lcl test-classes --data imagenet/val --out datasets/test100_pairs.jsonl
    TestClasses(TestClassesArgs),
    /// Evaluate a checkpoint on a suite at several shot counts (greedy answers, the
    /// original's scoring), with an optional ablation; resumable.
    ///
    /// Example: lcl eval --model LCL_2WAY_WEIGHT --vision clip-vit-large-patch14
    ///   --suite isekai-10 --data lcl-data --shots 0,2,4,6,8,10,12,14,16 --out runs/isekai
    Eval(EvalArgs),
    /// Fine-tune a Shikra/LCL checkpoint on LCL episodes with Burn's Learner (the config's
    /// strategy, optimiser, LoRA and validation); checkpoints every N steps, resumable.
    ///
    /// Example: lcl train --config configs/lcl-2way-weight.toml --model shikra-7b
    ///   --out runs/2way-weight      (then: lcl train ... --resume after an interruption)
    Train(TrainArgs),
    /// Fold a LoRA run's adapters into the base weights: a weights file `lcl eval --weights`
    /// and `lcl infer` read like a full fine-tune's.
    ///
    /// Example: lcl merge-lora --config runs/lora/config.toml --weights runs/lora/model.bpk
    ///   --out runs/lora/merged.bpk
    MergeLora(MergeLoraArgs),
    /// Generate the miniature two-world data set: a "real world" of species (image folders
    /// and names, some held out) and a novel world of hybrids with ISEKAI-style suites.
    ///
    /// Example: lcl gen-world --seed 42 --out world
    GenWorld(GenWorldArgs),
    /// Train a CLIP model (both towers) from scratch, contrastively, on an image folder whose
    /// class names are the captions; writes a CLIP folder in Burn's format.
    ///
    /// Example: lcl train-clip --config configs/mini/clip.json --tokenizer tests/fixtures/tiny-clip-text
    ///   --data world/real/images --split world/real/heldout-classes.txt --out models/mini-clip
    TrainClip(TrainClipArgs),
    /// Write a model folder with fresh random LLaMA + projector weights over a CLIP tower:
    /// the start of a model trained from scratch (the miniature's captioner).
    ///
    /// Example: lcl init-model --llm configs/mini/llama.json --vision models/mini-clip
    ///   --tokenizer tests/fixtures/tiny-lcl --out models/mini-init
    InitModel(InitModelArgs),
    /// Write a self-contained copy of a model folder (and its CLIP) at another precision,
    /// optionally with fine-tuned weights folded in: how the shipped miniature checkpoints
    /// are made (f16 halves their size; loading casts back to the dtype asked for).
    ///
    /// Example: lcl export-model --model runs/mini-lcl/model --dtype f16
    ///   --out checkpoints/mini/lcl --vision-out checkpoints/mini/clip
    ExportModel(ExportModelArgs),
    /// Benchmark this project against PyTorch + transformers on this machine, in one run:
    /// CLIP ViT-L/14, one LLaMA-7B layer (4,900-token prefill, one decode step), the tiny
    /// model's training step and evaluation loop, and a large matmul as the machine's
    /// reference; a table of medians and ratios, and a JSON report.
    ///
    /// Example: lcl bench --out runs/bench.json      (cargo xtask bench --backend wgpu ...)
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Items to run, comma-separated (default: all): matmul, clip-b1, clip-b16,
    /// llama-layer-prefill, llama-layer-decode, llama-7b-prefill, tiny-train-step,
    /// tiny-generate, tiny-generate-reuse, tiny-eval-reuse, tiny-eval-no-reuse.
    #[arg(long, value_delimiter = ',')]
    items: Vec<String>,
    /// Measure one item in this process and print its JSON result (what the run spawns).
    #[arg(long, hide = true)]
    item: Option<String>,
    /// Skip the PyTorch side (which needs Debian's python3-torch; the script installs it).
    #[arg(long)]
    no_torch: bool,
    /// PyTorch device: cpu (f32), or cuda (bf16) next to a GPU backend.
    #[arg(long, default_value = "cpu")]
    torch_device: String,
    /// Fewest timed runs per item (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    min_runs: usize,
    /// Fewest seconds of timed runs per item.
    #[arg(long, default_value_t = 2.0)]
    min_seconds: f64,
    /// The JSON report.
    #[arg(long, default_value = "runs/bench.json")]
    out: PathBuf,
}

fn bench(args: BenchArgs) -> Result<()> {
    use lcl::bench::{BenchRequest, ITEMS, Timing, default_torch_script, items::measure};
    let timing = Timing {
        min_runs: args.min_runs,
        min_seconds: args.min_seconds,
    };
    if let Some(item) = args.item {
        let measurement = measure(&item, &device()?, timing)?;
        println!("{}", serde_json::to_string(&measurement)?);
        return Ok(());
    }
    let request = BenchRequest {
        items: if args.items.is_empty() {
            ITEMS.iter().map(|(name, ..)| name.to_string()).collect()
        } else {
            args.items
        },
        torch: !args.no_torch,
        torch_script: default_torch_script(),
        torch_device: args.torch_device,
        timing,
        out: args.out,
    };
    let report = lcl::bench::run(&request, backend_name())?;
    print!("{}", report.markdown());
    eprintln!("report in {}", request.out.display());
    Ok(())
}

#[derive(Args)]
struct ExportModelArgs {
    /// Model folder to export.
    #[arg(long)]
    model: PathBuf,
    /// CLIP folder (default: MODEL/vision, else the config's mm_vision_tower).
    #[arg(long)]
    vision: Option<PathBuf>,
    /// Fine-tuned weights to fold in (`lcl train`'s model.bpk).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Precision the weights are stored at.
    #[arg(long, value_enum, default_value_t = Precision::F16)]
    dtype: Precision,
    /// The model folder to write.
    #[arg(long)]
    out: PathBuf,
    /// Where the CLIP folder goes (default: OUT/vision); models can share one.
    #[arg(long)]
    vision_out: Option<PathBuf>,
    /// Deepen the decoder to this many layers: identity blocks (copies of the layer before,
    /// output projections zero, as in LLaMA Pro) spread evenly, so outputs start unchanged.
    #[arg(long)]
    depth: Option<usize>,
}

fn export_model(args: ExportModelArgs) -> Result<()> {
    let request = lcl::train::export::ExportRequest {
        model: args.model,
        vision: args.vision,
        weights: args.weights,
        precision: args.dtype,
        out: args.out,
        vision_out: args.vision_out,
        depth: args.depth,
    };
    lcl::train::export::export_model(&request, &device()?)?;
    eprintln!("{}: model written", request.out.display());
    Ok(())
}

#[derive(Args)]
struct InitModelArgs {
    /// LLaMA config.json (sizes; mm_hidden_size is taken from the vision tower).
    #[arg(long)]
    llm: PathBuf,
    /// CLIP folder (copied into OUT/vision).
    #[arg(long)]
    vision: PathBuf,
    /// Folder with the LLaMA tokenizer files (copied).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Standard deviation of the fresh weights.
    #[arg(long, default_value_t = 0.02)]
    std: f64,
    /// Seed of the fresh weights.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The model folder to write.
    #[arg(long)]
    out: PathBuf,
}

fn init_model(args: InitModelArgs) -> Result<()> {
    let request = lcl::train::init::InitRequest {
        llm: args.llm,
        vision: args.vision,
        tokenizer: args.tokenizer,
        std: args.std,
        seed: args.seed,
        out: args.out,
    };
    lcl::train::init::init_model(&request, &device()?)?;
    eprintln!("{}: fresh model written", request.out.display());
    Ok(())
}

#[derive(Args)]
struct TrainClipArgs {
    /// CLIP config.json with the sizes of both towers.
    #[arg(long)]
    config: PathBuf,
    /// Folder holding the CLIP tokenizer.json (copied into --out).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Image folder: one sub-folder per class.
    #[arg(long)]
    data: PathBuf,
    /// Names file (default: LOC_synset_mapping.txt / names.tsv beside the folder).
    #[arg(long)]
    names: Option<PathBuf>,
    /// Classes to leave out (one id per line).
    #[arg(long)]
    split: Option<PathBuf>,
    /// Optimiser steps.
    #[arg(long, default_value_t = 1500)]
    steps: usize,
    /// Classes per contrastive batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Peak learning rate (5% warm-up, then cosine).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Softmax temperature.
    #[arg(long, default_value_t = 0.07)]
    temperature: f64,
    /// Seed of initialisation and batches.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The CLIP folder to write.
    #[arg(long)]
    out: PathBuf,
}

fn train_clip(args: TrainClipArgs) -> Result<()> {
    let config = lcl_model::ClipConfig::from_file(&args.config)?;
    let request = lcl::train::clip::ClipTrainRequest {
        config,
        tokenizer: args.tokenizer,
        data: args.data,
        names: args.names,
        split: args.split,
        steps: args.steps,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        temperature: args.temperature,
        seed: args.seed,
        out: args.out.clone(),
    };
    let summary = lcl::train::clip::train_clip(&request, &device()?)?;
    eprintln!(
        "{}: {} classes, {} steps in {:.1} s; final loss {:.4}; zero-shot naming accuracy {:.1}%",
        args.out.display(),
        summary.classes,
        request.steps,
        summary.seconds,
        summary.final_loss,
        100.0 * summary.naming_accuracy
    );
    Ok(())
}

#[derive(Args)]
struct GenWorldArgs {
    /// Seed of every choice (same seed, same bytes).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Folder to write (created; existing files are overwritten).
    #[arg(long, default_value = "world")]
    out: PathBuf,
    /// Real species.
    #[arg(long, default_value_t = 300)]
    species: usize,
    /// Real species held out of training (even).
    #[arg(long, default_value_t = 40)]
    heldout: usize,
    /// Pictures per real species.
    #[arg(long, default_value_t = 40)]
    images_per_species: usize,
    /// Novel concepts (hybrids of two real species).
    #[arg(long, default_value_t = 20)]
    concepts: usize,
    /// Pictures per concept and per look-alike parent in the novel folder.
    #[arg(long, default_value_t = 32)]
    concept_images: usize,
    /// Support pictures per class in the suites (the rest of a concept's are queries).
    #[arg(long, default_value_t = 8)]
    support_per_class: usize,
    /// Queries per ordered concept pair in isekai-pair.jsonl.
    #[arg(long, default_value_t = 2)]
    pair_queries: usize,
    /// Picture side in pixels.
    #[arg(long, default_value_t = 64)]
    image_size: u32,
}

fn gen_world(args: GenWorldArgs) -> Result<()> {
    let spec = lcl::world::WorldSpec {
        seed: args.seed,
        species: args.species,
        heldout: args.heldout,
        images_per_species: args.images_per_species,
        concepts: args.concepts,
        concept_images: args.concept_images,
        support_per_class: args.support_per_class,
        pair_queries: args.pair_queries,
        image_size: args.image_size,
    };
    let started = std::time::Instant::now();
    let bar = lcl::progress::bar(0, "{msg} [{bar:40}] {pos}/{len} pictures ETA {eta}");
    bar.set_message("drawing");
    let world = lcl::world::generate(&spec, &args.out, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    eprintln!(
        "{}: {} species ({} held out), {} novel concepts, in {:.1} s",
        args.out.display(),
        world.species.len(),
        world.heldout.len(),
        world.concepts.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Args)]
struct TrainArgs {
    /// Run config (TOML): [model] [data] [sampler] [mix] [training] [validation].
    #[arg(long)]
    config: PathBuf,
    /// Run folder: checkpoint/, steps.jsonl, validation.jsonl, Burn's logs, model.bpk.
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// Continue the run in --out from its last complete checkpoint.
    #[arg(long)]
    resume: bool,
    /// Checkpoint folder to start from (overrides [model] base).
    #[arg(long)]
    model: Option<PathBuf>,
    /// CLIP checkpoint folder (overrides [model] vision).
    #[arg(long)]
    vision: Option<PathBuf>,
    /// Folder the class file's images are relative to (overrides [data] image_root).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Per-class file (overrides [data] class_file).
    #[arg(long)]
    class_file: Option<PathBuf>,
    /// Longest invented name, in letters (overrides [sampler] label_letters).
    #[arg(long)]
    label_letters: Option<usize>,
    /// Passes over the episodes (overrides [training] epochs).
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many optimiser steps in all, as an interruption (resume later).
    #[arg(long)]
    stop_after: Option<usize>,
}

#[derive(Args)]
struct MergeLoraArgs {
    /// The LoRA run's config (its [model] and [training.lora]).
    #[arg(long)]
    config: PathBuf,
    /// The run's adapters (model.bpk or checkpoint/model-N.bpk).
    #[arg(long)]
    weights: PathBuf,
    /// The merged weights file to write.
    #[arg(long)]
    out: PathBuf,
}

fn train(args: TrainArgs) -> Result<()> {
    let mut config = RunConfig::from_file(&args.config)?;
    if let Some(model) = args.model {
        config.model.base = model;
    }
    if let Some(vision) = args.vision {
        config.model.vision = vision;
    }
    if let Some(data) = args.data {
        config.data.image_root = data;
    }
    if let Some(class_file) = args.class_file {
        config.data.class_file = class_file;
    }
    if let Some(letters) = args.label_letters {
        config.sampler.label_letters = letters;
    }
    if let Some(epochs) = args.epochs {
        config.training.epochs = epochs;
    }
    config
        .validate()
        .with_context(|| format!("{}: invalid with the overrides", args.config.display()))?;
    let request = lcl::train::TrainRequest {
        config,
        out: args.out,
        resume: args.resume,
        stop_after: args.stop_after,
    };
    let device = device()?;
    eprintln!("training on {} ({device:?})", backend_name());
    let summary = lcl::train::train(&request, &device)?;
    eprintln!(
        "{} optimiser steps done; {} episodes in {:.1} s ({:.3} episodes/s); last checkpoint: {}",
        summary.steps,
        summary.episodes,
        summary.seconds,
        summary.episodes as f64 / summary.seconds.max(1e-9),
        summary
            .last_checkpoint
            .map_or("none".to_string(), |n| n.to_string())
    );
    match summary.weights {
        Some(weights) => eprintln!("trained weights: {}", weights.display()),
        None => eprintln!(
            "stopped before the end: continue with --resume --out {}",
            request.out.display()
        ),
    }
    Ok(())
}

fn merge_lora(args: MergeLoraArgs) -> Result<()> {
    let config = RunConfig::from_file(&args.config)?;
    let device = device()?;
    let count = lcl::train::lora::merge_file(&config, &args.weights, &args.out, &device)?;
    eprintln!("{}: {count} merged tensors", args.out.display());
    Ok(())
}

#[derive(Args)]
struct EvalArgs {
    /// Shikra/LCL checkpoint folder. Without it (and without --suite): the default
    /// evaluation, the shipped miniature models (checkpoints/mini) on the generated world
    /// (drawn into --data, default runs/mini-world, when absent): ISEKAI-10, ISEKAI-pair,
    /// held-out species and the false-label ablation, vanilla vs LCL.
    #[arg(long, requires = "suite")]
    model: Option<PathBuf>,
    /// CLIP checkpoint folder (default: MODEL/vision, else the config's mm_vision_tower).
    #[arg(long)]
    vision: Option<PathBuf>,
    /// Fine-tuned weights to put over MODEL's (`lcl train`'s model.bpk, or a merged LoRA).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// `isekai-10`, `isekai-pair`, `imagenet-100` (looked up under --data as NAME.jsonl), or
    /// a suite file: ISEKAI JSON lines or an ImageNet-100 test file (lcl test-classes).
    #[arg(long, requires = "model")]
    suite: Option<String>,
    /// Folder holding the named suites.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Folder the suite's image paths are relative to (default: the suite file's folder).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Support images in all (the paper's shot counts), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,2,4,6,8,10,12,14,16")]
    shots: Vec<usize>,
    /// Run an ablation of the paper instead of the plain suite.
    #[arg(long, value_enum)]
    ablation: Option<AblationKind>,
    /// False-label ratios of --ablation false-ratio, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,0.25,0.5,0.75,1")]
    false_ratios: Vec<f64>,
    /// Support size of --ablation position (each position 1..N is corrupted in turn).
    #[arg(long, default_value_t = 16)]
    position_shots: usize,
    /// Output folder: predictions.jsonl (resumed from), results.json, results.md (default:
    /// runs/eval; runs/eval-default for the default evaluation).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Episodes per batch (left-padded).
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Most generated tokens per answer.
    #[arg(long, default_value_t = 20)]
    max_new_tokens: usize,
    /// Seed of support shuffling and ablations.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Precision of the weights.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
    /// Most image features kept on the device (each image used again is not re-encoded).
    #[arg(long, default_value_t = 1024)]
    cached_images: usize,
    /// Re-encode the support set for every query instead of computing it once per support
    /// set (slower; the answers are the same).
    #[arg(long)]
    no_prefix_reuse: bool,
    /// Scoring: `generate` (greedy answer, the original's rule), `likelihood` (the more
    /// likely of the two candidate answers) and/or `prototype` (a vision-only baseline: the
    /// support label whose mean vision feature is nearest the query's; no language model),
    /// comma-separated; each gives its own rows.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "generate")]
    score: Vec<ScoreMode>,
    /// Most episodes per shot column, spread evenly over the suite (default: all; 80 in
    /// the default evaluation).
    #[arg(long)]
    limit: Option<usize>,
    /// The default evaluation's models: a folder with `vanilla/` and `lcl/` (default: the
    /// shipped checkpoints/mini).
    #[arg(long, conflicts_with = "model")]
    checkpoints: Option<PathBuf>,
    /// Discard the predictions in --out when they were made with other inputs (another
    /// model, weights, dtype, suite, seed or answer length), instead of refusing.
    #[arg(long)]
    overwrite: bool,
}

fn eval(args: EvalArgs) -> Result<()> {
    let (Some(model), Some(suite)) = (args.model.clone(), args.suite.clone()) else {
        return default_eval(args);
    };
    let request = EvalRequest {
        model,
        vision: args.vision,
        weights: args.weights,
        suite,
        data: args.data,
        images: args.images,
        shots: args.shots,
        ablation: args.ablation,
        false_ratios: args.false_ratios,
        position_shots: args.position_shots,
        out: args.out.unwrap_or_else(|| PathBuf::from("runs/eval")),
        batch_size: args.batch_size,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        precision: args.dtype,
        cached_images: args.cached_images,
        prefix_reuse: !args.no_prefix_reuse,
        scores: args.score,
        limit: args.limit,
        overwrite: args.overwrite,
    };
    eprintln!("backend: {}", backend_name());
    let results = evaluate(&request, &device()?)?;
    print!("{}", results.markdown());
    eprintln!("results in {}", request.out.display());
    Ok(())
}

/// `lcl eval` with no model: the shipped miniature, vanilla vs LCL.
fn default_eval(args: EvalArgs) -> Result<()> {
    use lcl::eval::default::{DefaultEvalRequest, evaluate_default, markdown};
    let mut request =
        DefaultEvalRequest::new(Path::new(env!("CARGO_MANIFEST_DIR")), Path::new("runs"));
    if let Some(data) = args.data {
        request.world = data;
    }
    if let Some(out) = args.out {
        request.out = out;
    }
    if let Some(limit) = args.limit {
        request.limit = limit;
    }
    if let Some(checkpoints) = args.checkpoints {
        request.checkpoints = checkpoints;
    }
    request.batch_size = args.batch_size;
    request.precision = args.dtype;
    request.overwrite = args.overwrite;
    eprintln!(
        "backend: {}; the default evaluation: {} on {}",
        backend_name(),
        request.checkpoints.display(),
        request.world.display()
    );
    let started = std::time::Instant::now();
    let results = evaluate_default(&request, &device()?)?;
    print!("{}", markdown(&request, &results));
    eprintln!(
        "done in {:.0} s; results and plots in {}",
        started.elapsed().as_secs_f64(),
        request.out.display()
    );
    Ok(())
}

#[derive(Args)]
struct EpisodesArgs {
    /// Run configuration (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Sample the main phase of the strategy (default: the fixed phase).
    #[arg(long)]
    main_phase: bool,
    /// Epoch to sample.
    #[arg(long, default_value_t = 0)]
    epoch: u64,
    /// First episode index.
    #[arg(long, default_value_t = 0)]
    start: usize,
    /// Number of episodes.
    #[arg(long, default_value_t = 10)]
    count: usize,
}

#[derive(Args)]
struct TestClassesArgs {
    #[command(flatten)]
    folder: FolderArgs,
    /// Where to write the test file (JSON lines).
    #[arg(long)]
    out: PathBuf,
    /// Support images per class.
    #[arg(long, default_value_t = 32)]
    context: usize,
    /// Query images per class.
    #[arg(long, default_value_t = 50)]
    queries: usize,
    /// Seed of the draw.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn episodes(args: EpisodesArgs) -> Result<()> {
    let config = RunConfig::from_file(&args.config)?;
    let spec = TrainSetSpec {
        classes: class_file::read(&config.data.class_file)?,
        image_root: config.data.image_root.clone(),
        shots: if args.main_phase {
            config.sampler.schedule()
        } else {
            config.sampler.fixed_schedule()
        },
        questions: read_questions(&config.data.questions)?,
        episodes_per_class: config.sampler.episodes_per_class,
        seed: config.sampler.seed,
        rules: config.sampler.rules(),
    };
    let sampler = EpisodeSampler::new(std::sync::Arc::new(spec), args.epoch)?;
    for index in args.start..(args.start + args.count).min(sampler.len()) {
        let episode = sampler.episode(index)?;
        let record = serde_json::json!({
            "epoch": args.epoch,
            "index": index,
            "support": episode.support.iter().map(|s| serde_json::json!([s.image, s.label])).collect::<Vec<_>>(),
            "query": episode.query,
            "question": episode.question,
            "answer": episode.answer,
        });
        println!("{record}");
    }
    Ok(())
}

fn test_classes(args: TestClassesArgs) -> Result<()> {
    let Some(split) = args.folder.split()? else {
        anyhow::bail!("test-classes needs held-out classes: --split imagenet100 or FILE");
    };
    let folder = ImageFolder::scan(&args.folder.data, args.folder.names.as_deref())?;
    let (_, test) = split.apply(&folder.classes)?;
    let classes = draw_test_classes(&test, args.context, args.queries, args.seed)?;
    lcl::data::jsonl::write(&args.out, &classes)?;
    eprintln!("wrote {} classes to {}", classes.len(), args.out.display());
    Ok(())
}

/// An image folder and its class split.
#[derive(Args)]
struct FolderArgs {
    /// Image-folder data root: ROOT/<class>/<images>.
    #[arg(long)]
    data: PathBuf,
    /// Class names file (LOC_synset_mapping.txt, map_clsloc.txt or id<TAB>name). Default:
    /// one found in ROOT or its parent, else the folder names.
    #[arg(long)]
    names: Option<PathBuf>,
    /// Held-out classes: `imagenet100` (the original's 100 test classes, in pair order),
    /// `none`, or a file listing test class ids one per line.
    #[arg(long, default_value = "imagenet100")]
    split: String,
}

impl FolderArgs {
    /// The split named by --split (`None` for `none`).
    fn split(&self) -> Result<Option<ClassSplit>> {
        Ok(match self.split.as_str() {
            "imagenet100" => Some(ClassSplit::imagenet100()),
            "none" => None,
            file => Some(ClassSplit::from_file(std::path::Path::new(file))?),
        })
    }
}

#[derive(Args)]
struct NeighborsArgs {
    /// Full CLIP checkpoint folder (both towers and tokenizer.json), e.g.
    /// openai/clip-vit-base-patch16 as the original used.
    #[arg(long)]
    clip: PathBuf,
    #[command(flatten)]
    folder: FolderArgs,
    /// The per-class file to write (JSON lines).
    #[arg(long)]
    out: PathBuf,
    /// Feature cache folder; a rerun after an interruption resumes from it. Default:
    /// OUT.features/ beside the output.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Images averaged into a class's image feature.
    #[arg(long, default_value_t = 100)]
    images_per_class: usize,
    /// Neighbour tiers (one neighbour per tier).
    #[arg(long, default_value_t = 36)]
    tiers: usize,
    /// Sample images written per class.
    #[arg(long, default_value_t = 36)]
    samples: usize,
    /// Average raw image features before normalising, as the released script does, instead
    /// of normalised ones as the method describes.
    #[arg(long)]
    raw_image_mean: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn neighbors(args: NeighborsArgs) -> Result<()> {
    let split = args.folder.split()?;
    let cache = args.cache.unwrap_or_else(|| {
        let mut name = args.out.file_name().unwrap_or_default().to_os_string();
        name.push(".features");
        args.out.with_file_name(name)
    });
    let job = NeighborJob {
        clip: args.clip,
        data: args.folder.data,
        names: args.folder.names,
        split,
        out: args.out,
        cache,
        settings: NeighborSettings {
            images_per_class: args.images_per_class,
            tiers: args.tiers,
            samples_per_class: args.samples,
            seed: args.seed,
            normalize_each_image: !args.raw_image_mean,
            batch_size: args.batch_size,
        },
    };
    eprintln!("backend: {}", backend_name());
    let count = lcl::neighbors::run(&job, &device()?)?;
    eprintln!("wrote {count} classes to {}", job.out.display());
    Ok(())
}

#[derive(Args)]
struct InferArgs {
    /// Shikra/LCL checkpoint folder (config.json, weights, tokenizer.model or tokenizer.json,
    /// added_tokens.json).
    #[arg(long)]
    model: PathBuf,
    /// CLIP checkpoint folder. Default: MODEL/vision, else the config's mm_vision_tower when
    /// it is a local folder.
    #[arg(long)]
    vision: Option<PathBuf>,
    /// Fine-tuned weights to put over MODEL's (`lcl train`'s model.bpk, or a merged LoRA).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// A support shot IMG=LABEL; repeat it, in prompt order (the first gets the system text).
    #[arg(long = "support", value_name = "IMG=LABEL")]
    support: Vec<SupportShot>,
    /// The query image.
    #[arg(long)]
    query: PathBuf,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// Precision of the weights.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
    /// Sampling temperature; 0 = greedy, as the original evaluates.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus sampling mass (with --temperature > 0).
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Sampling seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print prompt token count, generated ids and text as JSON.
    #[arg(long)]
    json: bool,
    /// Write the next-token logits at the last prompt position as a float32 .npy vector.
    #[arg(long, value_name = "FILE.npy")]
    logits_out: Option<PathBuf>,
    /// Print the rendered prompt segments and their token ids as JSON, and exit without
    /// loading weights.
    #[arg(long)]
    print_prompt: bool,
}

fn infer(args: InferArgs) -> Result<()> {
    let request = InferRequest {
        model: args.model,
        vision: args.vision,
        weights: args.weights,
        support: args.support,
        query: args.query,
        generation: GenerationConfig {
            max_new_tokens: args.max_new_tokens,
            temperature: args.temperature,
            top_p: args.top_p,
            seed: args.seed,
            ..GenerationConfig::default()
        },
        precision: args.dtype,
        logits_out: args.logits_out,
    };
    if args.print_prompt {
        let (_, _, segments) = render_prompt(&request)?;
        println!("{}", serde_json::to_string_pretty(&segments)?);
        return Ok(());
    }
    eprintln!("backend: {}", backend_name());
    let output = run(&request, &device()?)?;
    if args.json {
        println!("{}", serde_json::to_string(&output)?);
    } else {
        println!("{}", output.text);
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Infer(args) => infer(args),
        Command::Neighbors(args) => neighbors(args),
        Command::Episodes(args) => episodes(args),
        Command::TestClasses(args) => test_classes(args),
        Command::Eval(args) => eval(args),
        Command::Train(args) => train(args),
        Command::MergeLora(args) => merge_lora(args),
        Command::GenWorld(args) => gen_world(args),
        Command::TrainClip(args) => train_clip(args),
        Command::InitModel(args) => init_model(args),
        Command::ExportModel(args) => export_model(args),
        Command::Bench(args) => bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
