//! The miniature pipeline end to end with the `lcl` program, every stage a handful of steps on
//! a small generated world (as `scripts/miniature.sh` runs it at full size): world, CLIP,
//! neighbours, fresh model, captioner, its decoder grown deeper and LCL fine-tuned, f16 export,
//! the default evaluation.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use lcl::eval::default::{MODELS, VISION_ONLY};

/// Runs the `lcl` program in `dir`.
fn run_lcl(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lcl"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("lcl runs")
}

/// Runs `lcl` expecting success; returns its standard output.
fn lcl(dir: &Path, args: &[&str]) -> String {
    let output = run_lcl(dir, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "lcl {args:?} failed:\n{stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `lcl` expecting it to fail; returns its error output.
fn lcl_error(dir: &Path, args: &[&str]) -> String {
    let output = run_lcl(dir, args);
    assert!(!output.status.success(), "lcl {args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const CLIP: &str = r#"{
  "projection_dim": 16,
  "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 2, "num_channels": 3, "image_size": 32, "patch_size": 16,
    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5},
  "text_config": {"vocab_size": 814, "hidden_size": 32, "intermediate_size": 64,
    "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 16,
    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}
}"#;

const LLAMA: &str = r#"{"vocab_size": 515, "hidden_size": 64, "intermediate_size": 128,
  "num_hidden_layers": 2, "num_attention_heads": 2, "rms_norm_eps": 1e-6,
  "rope_theta": 10000.0, "max_position_embeddings": 2048, "tie_word_embeddings": false}"#;

const CAPTION: &str = r#"
[sampler]
strategy = "instructions"
[[mix.sources]]
file = "world/real/captions.json"
images = "world/real/images"
[[mix.sources]]
file = "world/text/recall.json"
images = "world/real/images"
[training]
epochs = 1
main_epochs = 0
batch_size = 16
learning_rate = 1e-3
"#;

const LCL: &str = r#"
[data]
class_file = "world/real/classes.jsonl"
image_root = "world/real/images"
questions = "QUESTIONS"
[sampler]
fixed_shots_per_class = 2
max_total_shots = 4
[training]
epochs = 2
main_epochs = 1
batch_size = 4
learning_rate = 1e-3
supervise = "repeated-labels"
"#;

#[test]
fn every_stage_of_the_miniature_runs_and_the_default_evaluation_reports_both_models() {
    let dir = scratch("miniature");
    let questions = std::path::absolute("datasets/query-questions.json").unwrap();
    std::fs::write(dir.join("clip.json"), CLIP).unwrap();
    std::fs::write(dir.join("llama.json"), LLAMA).unwrap();
    std::fs::write(dir.join("caption.toml"), CAPTION).unwrap();
    let lcl_config = LCL.replace("QUESTIONS", &questions.to_string_lossy());
    std::fs::write(dir.join("lcl.toml"), lcl_config).unwrap();
    let clip_tokenizer = fixture("tiny-clip-text");
    let llama_tokenizer = fixture("tiny-lcl");
    let run = |args: &[&str]| lcl(&dir, args);

    #[rustfmt::skip]
    run(&["gen-world", "--seed", "3", "--out", "world", "--species", "12", "--heldout", "4",
        "--images-per-species", "10", "--concepts", "2", "--concept-images", "10",
        "--support-per-class", "8", "--pair-queries", "1", "--image-size", "32"]);
    #[rustfmt::skip]
    run(&["train-clip", "--config", "clip.json", "--tokenizer", clip_tokenizer.to_str().unwrap(),
        "--data", "world/real/images", "--split", "world/real/heldout-classes.txt",
        "--steps", "3", "--batch-size", "4", "--out", "models/clip"]);
    #[rustfmt::skip]
    run(&["neighbors", "--clip", "models/clip", "--data", "world/real/images",
        "--split", "world/real/heldout-classes.txt", "--out", "world/real/classes.jsonl",
        "--images-per-class", "4", "--tiers", "3", "--samples", "8"]);
    #[rustfmt::skip]
    run(&["init-model", "--llm", "llama.json", "--vision", "models/clip",
        "--tokenizer", llama_tokenizer.to_str().unwrap(), "--out", "models/init"]);
    run(&[
        "train",
        "--config",
        "caption.toml",
        "--model",
        "models/init",
        "--out",
        "runs/caption",
    ]);
    #[rustfmt::skip]
    run(&["export-model", "--model", "runs/caption/model", "--out", "ckpt/vanilla",
        "--vision-out", "ckpt/clip"]);

    // The LCL model: the captioner's decoder grown deeper, then LCL episodes with the
    // sampler's names and the epochs set on the command line (as the names stages do).
    #[rustfmt::skip]
    run(&["export-model", "--model", "runs/caption/model", "--depth", "4", "--dtype", "f32",
        "--out", "models/deep"]);
    let deep = std::fs::read_to_string(dir.join("models/deep/config.json")).unwrap();
    assert!(deep.contains("\"num_hidden_layers\": 4"), "{deep}");
    #[rustfmt::skip]
    run(&["train", "--config", "lcl.toml", "--model", "models/deep", "--label-letters", "3",
        "--epochs", "1", "--out", "runs/deep"]);
    let used = std::fs::read_to_string(dir.join("runs/deep/config.toml")).unwrap();
    assert!(
        used.contains("label_letters = 3") && used.contains("epochs = 1"),
        "{used}"
    );
    let invalid = lcl_error(
        &dir,
        &["train", "--config", "lcl.toml", "--label-letters", "0"],
    );
    assert!(invalid.contains("label_letters = 0"), "{invalid}");
    #[rustfmt::skip]
    run(&["export-model", "--model", "models/deep", "--weights", "runs/deep/model.bpk",
        "--out", "ckpt/lcl", "--vision-out", "ckpt/clip"]);
    #[rustfmt::skip]
    let shrink = lcl_error(&dir, &["export-model", "--model", "runs/caption/model", "--depth", "1",
        "--out", "models/shallow"]);
    assert!(shrink.contains("has 2 decoder layers"), "{shrink}");
    // Into the CLIP folder the model already uses: its files stay whole (the evaluation
    // below reads them).
    #[rustfmt::skip]
    run(&["export-model", "--model", "ckpt/vanilla", "--out", "models/vanilla-again",
        "--vision-out", "ckpt/clip"]);

    let size = |path: &str| std::fs::metadata(dir.join(path)).unwrap().len() as f64;
    let ratio = size("ckpt/lcl/model.bpk") / size("runs/deep/model.bpk");
    assert!((0.45..0.6).contains(&ratio), "f16 export is {ratio} of f32");
    let config = std::fs::read_to_string(dir.join("ckpt/lcl/config.json")).unwrap();
    assert!(
        config.contains("\"mm_vision_tower\": \"../clip\""),
        "{config}"
    );

    #[rustfmt::skip]
    let table = run(&["eval", "--checkpoints", "ckpt", "--data", "world", "--out", "runs/eval",
        "--limit", "2"]);
    let models = [MODELS[0].1, MODELS[1].1, VISION_ONLY];
    for model in models {
        for suite in ["ISEKAI-10", "ISEKAI-pair", "held-out species"] {
            let row = format!("| {model} | {suite} |");
            assert!(table.contains(&row), "{row} missing from\n{table}");
        }
    }
    assert!(table.contains("| model | 0% false | 50% false | 100% false |"));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("runs/eval/results.json")).unwrap())
            .unwrap();
    let rows = results["suites"].as_array().unwrap();
    assert_eq!(rows.len(), 9);
    for row in rows {
        let cells = row["accuracy"].as_array().unwrap();
        assert_eq!(cells.len(), 5, "{row}");
        for cell in cells {
            assert!((0.0..=1.0).contains(&cell[1].as_f64().unwrap()), "{row}");
        }
    }
    assert_eq!(results["false_labels"].as_array().unwrap().len(), 2);
    for plot in ["accuracy.png", "false-labels.png"] {
        assert!(dir.join("runs/eval").join(plot).is_file(), "{plot}");
    }
    let predictions =
        std::fs::read_to_string(dir.join("runs/eval/lcl/isekai-10/predictions.jsonl")).unwrap();
    assert_eq!(predictions.lines().count(), 2 * 5, "2 episodes per column");
}
