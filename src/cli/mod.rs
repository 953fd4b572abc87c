//! The `lcl` command line: one module per command family, each with its arguments and the
//! function that runs them on the library.

mod bench;
mod data;
mod eval;
mod infer;
mod model;
mod parity;
mod serve;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Link-Context Learning for multimodal LLMs, in Burn.
#[derive(Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    /// The command to run.
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Answer one LCL episode: support images with labels, then a query image.
    ///
    /// Example: lcl infer --model LCL_2WAY_WEIGHT --vision clip-vit-large-patch14
    ///   --support cactihog1.jpg=cactihog --support hedgehog1.jpg=hedgehog --query q.jpg
    Infer(infer::InferArgs),
    /// Compute every training class's hard-negative neighbours with CLIP and write the
    /// per-class file the LCL samplers read (the original's train900_pairs.jsonl).
    ///
    /// Example: lcl neighbors --clip clip-vit-base-patch16 --data imagenet/train
    ///   --out datasets/train900_pairs.jsonl
    Neighbors(data::NeighborsArgs),
    /// Print training episodes as a config samples them (JSON lines: support images and
    /// labels, question, answer), without reading any image: to check a config and its data.
    ///
    /// Example: lcl episodes --config configs/lcl-2way-weight.toml --count 5
    Episodes(data::EpisodesArgs),
    /// Draw the ImageNet-100 test file (per held-out class: context and query images) from
    /// an image folder, in the format of the original's test100_pairs.jsonl.
    ///
    /// Example: lcl test-classes --data imagenet/val --out datasets/test100_pairs.jsonl
    TestClasses(data::TestClassesArgs),
    /// Evaluate a checkpoint on a suite at several shot counts (greedy answers, the
    /// original's scoring), with an optional ablation; resumable.
    ///
    /// Example: lcl eval --model LCL_2WAY_WEIGHT --vision clip-vit-large-patch14
    ///   --suite isekai-10 --data lcl-data --shots 0,2,4,6,8,10,12,14,16 --out runs/isekai
    Eval(eval::EvalArgs),
    /// Fine-tune a Shikra/LCL checkpoint on LCL episodes with Burn's Learner (the config's
    /// strategy, optimiser, LoRA and validation); checkpoints every N steps, resumable.
    ///
    /// Example: lcl train --config configs/lcl-2way-weight.toml --model shikra-7b
    ///   --out runs/2way-weight      (then: lcl train ... --resume after an interruption)
    Train(train::TrainArgs),
    /// Fold a LoRA run's adapters into the base weights: a weights file `lcl eval --weights`
    /// and `lcl infer` read like a full fine-tune's.
    ///
    /// Example: lcl merge-lora --config runs/lora/config.toml --weights runs/lora/model.bpk
    ///   --out runs/lora/merged.bpk
    MergeLora(train::MergeLoraArgs),
    /// Generate the miniature two-world data set: a "real world" of species (image folders
    /// and names, some held out) and a novel world of hybrids with ISEKAI-style suites.
    ///
    /// Example: lcl gen-world --seed 42 --out world
    GenWorld(data::GenWorldArgs),
    /// Train a CLIP model (both towers) from scratch, contrastively, on an image folder whose
    /// class names are the captions; writes a CLIP folder in Burn's format.
    ///
    /// Example: lcl train-clip --config configs/mini/clip.json --tokenizer tests/fixtures/tiny-clip-text
    ///   --data world/real/images --split world/real/heldout-classes.txt --out models/mini-clip
    TrainClip(model::TrainClipArgs),
    /// Write a model folder with fresh random LLaMA + projector weights over a CLIP tower:
    /// the start of a model trained from scratch (the miniature's captioner).
    ///
    /// Example: lcl init-model --llm configs/mini/llama.json --vision models/mini-clip
    ///   --tokenizer tests/fixtures/tiny-lcl --out models/mini-init
    InitModel(model::InitModelArgs),
    /// Write a self-contained copy of a model folder (and its CLIP) at another precision,
    /// optionally with fine-tuned weights folded in, in this project's format (how the
    /// shipped miniature checkpoints are made: f16 halves their size; loading casts back to
    /// the dtype asked for) or as a Hugging Face checkpoint transformers loads (--format hf).
    ///
    /// Examples: lcl export-model --model runs/mini-lcl/model --dtype f16
    ///   --out checkpoints/mini/lcl --vision-out checkpoints/mini/clip
    ///   lcl export-model --model LCL_2WAY_WEIGHT --weights runs/my-lcl/model.bpk
    ///   --format hf --dtype bf16 --out my-lcl-hf
    ExportModel(model::ExportModelArgs),
    /// Benchmark this project against PyTorch + transformers on this machine, in one run:
    /// CLIP ViT-L/14, one LLaMA-7B layer (4,900-token prefill, one decode step), the tiny
    /// model's training step and evaluation loop, and a large matmul as the machine's
    /// reference; a table of medians and ratios, and a JSON report.
    ///
    /// Example: lcl bench --out runs/bench.json      (cargo xtask bench --backend wgpu ...)
    Bench(bench::BenchArgs),
    /// Check this build on this device against the transformers fixtures (tests/fixtures:
    /// CLIP, LLaMA and LCL logits, greedy ids, JPEG decoding, a training step's gradients;
    /// bf16/f16 where the device computes in them): a table of largest differences.
    ///
    /// Example: LCL_DEVICE=cuda lcl parity
    Parity(parity::ParityArgs),
    /// Serve a model behind an OpenAI-compatible chat API (POST /v1/chat/completions, images
    /// as data: URLs, streaming) with a web page at / to try link-context learning in a
    /// browser. An episode is a conversation: each support shot a user turn with an image
    /// and an assistant turn with its name; the last user turn's image is the query.
    ///
    /// Example: lcl serve      (the shipped miniature at http://127.0.0.1:8080)
    ///   lcl serve --model LCL_2WAY_WEIGHT --vision openai/clip-vit-large-patch14 --port 8000
    Serve(serve::ServeArgs),
}

impl Command {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        match self {
            Command::Infer(args) => infer::run(args),
            Command::Neighbors(args) => data::neighbors(args),
            Command::Episodes(args) => data::episodes(args),
            Command::TestClasses(args) => data::test_classes(args),
            Command::Eval(args) => eval::run(args),
            Command::Train(args) => train::train(args),
            Command::MergeLora(args) => train::merge_lora(args),
            Command::GenWorld(args) => data::gen_world(args),
            Command::TrainClip(args) => model::train_clip(args),
            Command::InitModel(args) => model::init_model(args),
            Command::ExportModel(args) => model::export_model(args),
            Command::Bench(args) => bench::run(args),
            Command::Parity(args) => parity::run(args),
            Command::Serve(args) => serve::run(args),
        }
    }
}
