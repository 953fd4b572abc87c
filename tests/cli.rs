//! The `lcl` program end to end on the tiny fixtures.

mod common;

use std::process::Output;

use common::*;

fn lcl(args: &[&str]) -> Output {
    lcl_command()
        .args(args)
        .current_dir(fixture(""))
        .output()
        .expect("lcl runs")
}

const EPISODE: [&str; 10] = [
    "infer",
    "--model",
    "tiny-lcl",
    "--vision",
    "tiny-clip",
    "--support",
    "images/a.png=cactihog",
    "--support",
    "images/b.jpg=hedgehog",
    "--query",
];

#[test]
fn print_prompt_shows_the_segments_and_ids_without_loading_weights() {
    let mut args = EPISODE.to_vec();
    args.extend(["images/c.png", "--print-prompt"]);
    let output = lcl(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let meta = json("ref/episode.json");
    for (i, segment) in printed.as_array().unwrap().iter().enumerate() {
        assert_eq!(segment["text"], meta["segments"][i]);
        assert_eq!(segment["ids"], meta["segment_ids"][i]);
    }
}

#[test]
fn infer_answers_with_the_reference_greedy_ids_and_logits() {
    let dir = std::env::temp_dir().join(format!("lcl-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let logits_path = dir.join("logits.npy");
    let mut args = EPISODE.to_vec();
    let logits_arg = logits_path.to_str().unwrap();
    args.extend([
        "images/c.png",
        "--json",
        "--max-new-tokens",
        "10",
        "--logits-out",
        logits_arg,
    ]);
    let output = lcl(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let meta = json("ref/episode.json");
    assert_eq!(
        answer["prompt_tokens"],
        meta["input_ids"].as_array().unwrap().len()
    );
    assert_eq!(ids(&answer["generated_ids"]), ids(&meta["greedy_ids"]));
    assert!(answer["text"].is_string());

    let logits = lcl::npy::read(&logits_path).unwrap();
    let reference = reference("episode_logits");
    let vocab = reference.shape[1];
    assert_eq!(logits.shape, vec![vocab]);
    let last_row = &reference.data[reference.data.len() - vocab..];
    // JPEG pixels are Pillow's exactly (tests/preprocess.rs): the f32 tolerance holds.
    assert_close(
        "last prompt logits",
        &logits.data,
        last_row,
        common::f32_tolerance(),
    );
}

#[test]
fn missing_vision_tower_names_the_flag() {
    let output = lcl(&[
        "infer",
        "--model",
        "tiny-lcl",
        "--support",
        "images/a.png=x",
        "--query",
        "images/c.png",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Pass --vision")
            && stderr.contains("mm_vision_tower openai/clip-vit-large-patch14")
            && stderr.contains("HF_HUB_OFFLINE is set"),
        "{stderr}"
    );
}

#[test]
fn a_missing_image_fails_before_loading_weights() {
    let mut args = EPISODE.to_vec();
    args.push("images/nowhere.png");
    let output = lcl(&args);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("images/nowhere.png: cannot read image"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("loading"),
        "weights were loaded first: {stderr}"
    );
}

#[test]
fn support_shots_need_image_and_label() {
    let output = lcl(&[
        "infer",
        "--model",
        "tiny-lcl",
        "--support",
        "images/a.png",
        "--query",
        "images/c.png",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("expected IMG=LABEL"));
}

#[test]
fn a_model_folder_that_does_not_exist_is_named_as_such() {
    let output = lcl(&[
        "infer",
        "--model",
        "no-such-model",
        "--vision",
        "tiny-clip",
        "--support",
        "images/a.png=x",
        "--query",
        "images/c.png",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no-such-model: no such local folder")
            && stderr.contains("no-such-model is not in the Hugging Face cache")
            && !stderr.contains("tokenizer"),
        "{stderr}"
    );
}
