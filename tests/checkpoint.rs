//! Checkpoint import errors (missing, extra, mis-shaped tensors; truncated or absent files)
//! and the round trip through Burn's own format.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::DType;
use common::*;
use lcl_model::config::{ClipVisionConfig, LlamaConfig};
use lcl_model::{LclConfig, LclModel, LoadOptions, TokenBatch, WeightFiles};

/// f32 weights, `<im_patch>` = 512 (the tiny vocabulary's).
fn f32_options() -> LoadOptions<'static> {
    LoadOptions {
        image_patch_id: Some(512),
        ..LoadOptions::default()
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lcl-checkpoint-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

type Tensors = BTreeMap<String, (String, Vec<usize>, Vec<u8>)>;

/// Every tensor of the f32 safetensors fixture: dtype name, shape, bytes.
fn fixture_tensors() -> Tensors {
    let files = WeightFiles::open(&fixture("tiny-lcl-st")).unwrap();
    files
        .names()
        .map(|name| {
            let entry = files.get(name).unwrap();
            let data = entry.read().unwrap();
            (
                name.to_string(),
                (
                    "F32".to_string(),
                    entry.shape.clone(),
                    data.as_bytes().to_vec(),
                ),
            )
        })
        .collect()
}

/// Writes `tensors` as `dir/model.safetensors` next to the fixture's config.json.
fn write_checkpoint(dir: &Path, tensors: &Tensors) {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, (dtype, shape, bytes)) in tensors {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend(header);
    for (_, _, bytes) in tensors.values() {
        file.extend(bytes);
    }
    std::fs::write(dir.join("model.safetensors"), file).unwrap();
    std::fs::copy(fixture("tiny-lcl/config.json"), dir.join("config.json")).unwrap();
}

fn load_error(dir: &Path) -> String {
    let err = LclModel::from_pretrained(dir, &fixture("tiny-clip"), &device(), f32_options())
        .expect_err("loading must fail")
        .to_string();
    eprintln!("{err}");
    err
}

#[test]
fn missing_extra_and_mis_shaped_tensors_are_all_listed() {
    let dir = scratch("mismatch");
    let mut tensors = fixture_tensors();
    tensors.remove("model.layers.1.mlp.up_proj.weight").unwrap();
    let norm = tensors.get_mut("model.norm.weight").unwrap();
    norm.1 = vec![32];
    norm.2.truncate(32 * 4);
    tensors.insert(
        "model.extra_head.weight".into(),
        ("F32".into(), vec![2], vec![0; 8]),
    );
    write_checkpoint(&dir, &tensors);
    let err = load_error(&dir);
    assert!(
        err.contains("1 missing, 1 mis-shaped, 1 unexpected"),
        "{err}"
    );
    assert!(
        err.contains("missing     model.layers.1.mlp.up_proj.weight (expected shape [176, 64])"),
        "{err}"
    );
    assert!(
        err.contains("wrong shape model.norm.weight in")
            && err.contains("expected [64], found [32]"),
        "{err}"
    );
    assert!(
        err.contains("unexpected  model.extra_head.weight in") && err.contains("model.safetensors"),
        "{err}"
    );
}

#[test]
fn rope_buffers_and_an_embedded_vision_tower_are_ignored() {
    let dir = scratch("ignored");
    let mut tensors = fixture_tensors();
    tensors.insert(
        "model.layers.0.self_attn.rotary_emb.inv_freq".into(),
        ("F32".into(), vec![8], vec![0; 32]),
    );
    tensors.insert(
        "model.vision_tower.vision_tower.vision_model.post_layernorm.weight".into(),
        ("F32".into(), vec![32], vec![0; 128]),
    );
    write_checkpoint(&dir, &tensors);
    LclModel::from_pretrained(&dir, &fixture("tiny-clip"), &device(), f32_options()).unwrap();
}

#[test]
fn a_config_that_does_not_fit_lists_what_is_missing() {
    let dir = scratch("config");
    write_checkpoint(&dir, &fixture_tensors());
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        config.replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"),
    )
    .unwrap();
    let err = load_error(&dir);
    assert!(
        err.contains("9 missing, 0 mis-shaped, 0 unexpected"),
        "{err}"
    );
    assert!(
        err.contains("model.layers.2.self_attn.q_proj.weight"),
        "{err}"
    );
}

#[test]
fn the_pad_row_follows_pytorch_and_one_outside_the_vocabulary_is_refused() {
    let config = LlamaConfig::from_file(&fixture("tiny-lcl/config.json")).unwrap();
    // The release's pad_token_id -1 is PyTorch's padding_idx 514: <im_end>, the last row.
    assert_eq!(config.frozen_embedding_row(), Some(514));
    let dir = scratch("pad-id");
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(fixture("tiny-lcl/config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        text.replace("\"pad_token_id\": -1", "\"pad_token_id\": 515"),
    )
    .unwrap();
    let err = LlamaConfig::from_file(&dir.join("config.json"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pad_token_id 515 is outside the vocabulary (515 tokens)"),
        "{err}"
    );
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn truncated_safetensors_fail_when_opened() {
    let dir = scratch("truncated-st");
    let bytes = std::fs::read(fixture("tiny-lcl-st/model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() - 1000]).unwrap();
    std::fs::copy(fixture("tiny-lcl/config.json"), dir.join("config.json")).unwrap();
    let err = load_error(&dir);
    assert!(
        err.contains("model.safetensors") && err.contains("truncated file"),
        "{err}"
    );
}

#[test]
fn truncated_pickle_shard_fails_naming_the_file() {
    let dir = scratch("truncated-bin");
    for name in [
        "config.json",
        "pytorch_model.bin.index.json",
        "pytorch_model-00001-of-00002.bin",
    ] {
        std::fs::copy(fixture(&format!("tiny-lcl/{name}")), dir.join(name)).unwrap();
    }
    let shard = std::fs::read(fixture("tiny-lcl/pytorch_model-00002-of-00002.bin")).unwrap();
    std::fs::write(
        dir.join("pytorch_model-00002-of-00002.bin"),
        &shard[..shard.len() / 2],
    )
    .unwrap();
    let err = load_error(&dir);
    assert!(err.contains("pytorch_model-00002-of-00002.bin"), "{err}");
}

#[test]
fn a_shard_missing_from_disk_is_named() {
    let dir = scratch("missing-shard");
    for name in [
        "config.json",
        "pytorch_model.bin.index.json",
        "pytorch_model-00001-of-00002.bin",
    ] {
        std::fs::copy(fixture(&format!("tiny-lcl/{name}")), dir.join(name)).unwrap();
    }
    let err = load_error(&dir);
    assert!(
        err.contains("pytorch_model-00002-of-00002.bin") && err.contains("no such file"),
        "{err}"
    );
    let err = LclModel::from_pretrained(
        &scratch("empty"),
        &fixture("tiny-clip"),
        &device(),
        f32_options(),
    )
    .expect_err("must fail")
    .to_string();
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn a_folder_without_weights_says_what_was_looked_for() {
    let dir = scratch("no-weights");
    std::fs::copy(fixture("tiny-lcl/config.json"), dir.join("config.json")).unwrap();
    let err = load_error(&dir);
    assert!(
        err.contains("no weights found") && err.contains("pytorch_model.bin"),
        "{err}"
    );
}

#[test]
fn burnpack_round_trip_keeps_the_logits() {
    let model = LclModel::from_pretrained(
        &fixture("tiny-lcl"),
        &fixture("tiny-clip"),
        &device(),
        f32_options(),
    )
    .unwrap();
    let path = scratch("burnpack").join("tiny.bpk");
    model.save_burnpack(&path).unwrap();
    let config = LclConfig {
        llm: LlamaConfig::from_file(&fixture("tiny-lcl/config.json")).unwrap(),
        vision: ClipVisionConfig::from_file(&fixture("tiny-clip/config.json")).unwrap(),
    };
    let reloaded = LclModel::init(&config, 512, 0.02, &device(), DType::F32)
        .try_load_file(&path)
        .unwrap();
    let input = ids(&json("ref/llama_text.json")["input_ids"]);
    let batch = TokenBatch::left_padded(&[input], 0);
    let before = values(model.forward_logits(&batch, None).unwrap());
    let after = values(reloaded.forward_logits(&batch, None).unwrap());
    assert_eq!(before, after);
    let fresh = values(
        LclModel::init(&config, 512, 0.02, &device(), DType::F32)
            .forward_logits(&batch, None)
            .unwrap(),
    );
    assert!(
        max_abs_diff(&fresh, &before) > 1e-3,
        "a fresh model must differ"
    );
}
