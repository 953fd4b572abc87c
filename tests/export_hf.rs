//! `lcl export-model --format hf`: the folder it writes is the one transformers 4.29 was
//! checked on (`ref/export_hf.json`, made by tests/fixtures/make-export-reference.sh, which
//! loads the export with `LlamaForCausalLM` + `CLIPVisionModel` + the projector alone),
//! gives transformers' logits, and reads back into this project's loader bit for bit.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::store::ModuleSnapshot;
use burn::tensor::DType;
use lcl::infer::{InferRequest, SupportShot};
use lcl::model_folder::{Precision, load_model, tower_repo_id};
use lcl::tokenizer::LclTokenizer;
use lcl::train::export::{ExportFormat, ExportRequest, export_model};
use lcl_model::GenerationConfig;
use sha2::{Digest, Sha256};

use common::{fixture, scratch};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A Hugging Face export of `model` (f16 unless said otherwise) into `out`.
fn hf_request(model: PathBuf, out: PathBuf) -> ExportRequest {
    ExportRequest {
        model,
        vision: None,
        weights: None,
        precision: Precision::F16,
        out,
        vision_out: None,
        depth: None,
        format: ExportFormat::Hf,
        max_shard_bytes: 5_000_000_000,
        vision_repo: None,
    }
}

/// The export of the shipped miniature exactly as make-export-reference.sh makes it.
fn export_miniature(name: &str) -> PathBuf {
    let out = scratch(name).join("export");
    let reference = common::json("ref/export_hf.json");
    assert_eq!(
        reference["command"],
        "lcl export-model --format hf --model checkpoints/mini/lcl --max-shard-size 1MB",
        "the reference was made by another command than this test runs"
    );
    let mut request = hf_request(repo("checkpoints/mini/lcl"), out.clone());
    request.max_shard_bytes = 1_000_000;
    export_model(&request, &common::device()).expect("export");
    out
}

fn sha256_of_files(folder: &Path) -> BTreeMap<String, String> {
    let mut hashes = BTreeMap::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let digest = Sha256::digest(std::fs::read(&path).unwrap());
            let name = path
                .strip_prefix(folder)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
            hashes.insert(name, hex);
        }
    }
    hashes
}

#[test]
fn the_miniature_exported_is_the_folder_transformers_was_checked_on() {
    let out = export_miniature("hashes");
    let reference = common::json("ref/export_hf.json");
    let expected: BTreeMap<String, String> =
        serde_json::from_value(reference["files"].clone()).unwrap();
    let found = sha256_of_files(&out);
    let differing: Vec<&String> = expected
        .keys()
        .chain(found.keys())
        .filter(|name| expected.get(*name) != found.get(*name))
        .collect();
    assert!(
        differing.is_empty(),
        "the export differs from the one transformers loaded in {differing:?}: if the writer \
         changed on purpose, regenerate with bash tests/fixtures/make-export-reference.sh"
    );
    // Sharded as asked: every shard within 1 MB, the index beside them.
    let shards: Vec<&String> = found.keys().filter(|n| n.starts_with("model-")).collect();
    assert!(shards.len() >= 2, "{shards:?}");
    assert!(found.contains_key("model.safetensors.index.json"));
    assert!(found.contains_key("vision/model.safetensors.index.json"));
    assert!(found.contains_key("vision/preprocessor_config.json"));
    assert!(found.contains_key("tokenizer.model") && found.contains_key("added_tokens.json"));
}

#[test]
fn the_exported_miniature_gives_the_logits_transformers_gives() {
    let out = export_miniature("logits");
    let reference = common::json("ref/export_hf.json");
    let logits_out = out.parent().unwrap().join("logits.npy");
    let support = reference["support"]
        .as_array()
        .unwrap()
        .iter()
        .map(|shot| SupportShot {
            image: fixture(shot["image"].as_str().unwrap()),
            label: shot["label"].as_str().unwrap().to_string(),
        })
        .collect();
    let request = InferRequest {
        model: out.clone(),
        vision: None,
        weights: None,
        support,
        query: fixture(reference["query"].as_str().unwrap()),
        generation: GenerationConfig {
            max_new_tokens: 1,
            ..GenerationConfig::default()
        },
        precision: Precision::F32,
        logits_out: Some(logits_out.clone()),
    };
    let (_, _, segments) = lcl::infer::render_prompt(&request).unwrap();
    let ids: Vec<u32> = segments.iter().flat_map(|s| s.ids.clone()).collect();
    assert_eq!(ids, common::ids(&reference["input_ids"]), "prompt ids");
    lcl::infer::run(&request, &common::device()).expect("episode on the export");
    let ours = lcl::npy::read(&logits_out).unwrap();
    let theirs = common::reference("export_hf_logits");
    common::assert_close(
        "exported miniature, next-token logits vs transformers 4.29",
        &ours.data,
        &theirs.data,
        common::f32_tolerance(),
    );
}

/// Every tensor of a loaded model, by its path in the module, as stored bytes.
fn tensors(model: &impl ModuleSnapshot) -> BTreeMap<String, (DType, Vec<u8>)> {
    model
        .collect(None, None, false)
        .into_iter()
        .map(|t| (t.name.clone(), (t.dtype, t.to_bytes().unwrap().to_vec())))
        .collect()
}

fn assert_same_weights(source: &Path, source_vision: &Path, export: &Path, precision: Precision) {
    let device = common::device();
    let tokenizer = LclTokenizer::from_dir(source).unwrap();
    let original = load_model(source, source_vision, &tokenizer, &device, precision).unwrap();
    let vision = lcl::model_folder::resolve_vision_dir(export, None).unwrap();
    let exported = load_model(export, &vision, &tokenizer, &device, precision).unwrap();
    let (original, exported) = (tensors(&original), tensors(&exported));
    assert_eq!(
        original.keys().collect::<Vec<_>>(),
        exported.keys().collect::<Vec<_>>()
    );
    for (name, value) in &original {
        assert!(exported[name] == *value, "{name} differs after the export");
    }
}

#[test]
fn a_trained_model_reads_back_bit_for_bit() {
    let out = export_miniature("bits");
    assert_same_weights(
        &repo("checkpoints/mini/lcl"),
        &repo("checkpoints/mini/clip"),
        &out,
        Precision::F16,
    );
    // Its tower was trained here, so it travels as an HF CLIP folder the config names.
    let config = common::json(out.join("config.json").to_str().unwrap());
    assert_eq!(config["mm_vision_tower"], "vision");
    assert_eq!(config["model_type"], "shikra");
    assert_eq!(config["torch_dtype"], "float16");
}

#[test]
fn a_hugging_face_checkpoint_exported_in_f32_shards_reads_back_bit_for_bit() {
    let out = scratch("f32").join("export");
    let mut request = hf_request(fixture("tiny-lcl"), out.clone());
    request.vision = Some(fixture("tiny-clip"));
    request.precision = Precision::F32;
    request.max_shard_bytes = 100_000;
    export_model(&request, &common::device()).unwrap();
    assert_same_weights(
        &fixture("tiny-lcl"),
        &fixture("tiny-clip"),
        &out,
        Precision::F32,
    );
    let config = common::json(out.join("config.json").to_str().unwrap());
    // The source's own fields are kept (the release's pad -1, bos 0, eos 1).
    assert_eq!(config["pad_token_id"], -1);
    assert_eq!(config["bos_token_id"], 0);
    assert_eq!(config["torch_dtype"], "float32");
    let clip = common::json(out.join("vision/config.json").to_str().unwrap());
    assert_eq!(clip["model_type"], "clip");
    assert_eq!(clip["vision_config"]["model_type"], "clip_vision_model");
}

#[test]
fn a_vision_tower_alone_is_exported_as_clip_vision_model() {
    // tiny-clip-st: a CLIPModel config, but only the vision tower's weights, stored under
    // Shikra's `model.vision_tower.vision_tower.` prefix.
    let out = scratch("tower-alone").join("export");
    let mut request = hf_request(fixture("tiny-lcl"), out.clone());
    request.vision = Some(fixture("tiny-clip-st"));
    request.precision = Precision::F32;
    export_model(&request, &common::device()).unwrap();
    assert_same_weights(
        &fixture("tiny-lcl"),
        &fixture("tiny-clip-st"),
        &out,
        Precision::F32,
    );
    let clip = common::json(out.join("vision/config.json").to_str().unwrap());
    assert_eq!(clip["model_type"], "clip_vision_model");
    assert_eq!(clip["architectures"][0], "CLIPVisionModel");
}

#[test]
fn a_stock_tower_named_by_repo_id_stays_named() {
    let tiny = fixture("tiny-lcl");
    // tiny-lcl's config names openai/clip-vit-large-patch14 and it has no vision/ folder.
    let named = tower_repo_id(&tiny, None);
    assert_eq!(named.as_deref(), Some("openai/clip-vit-large-patch14"));
    assert_eq!(tower_repo_id(&tiny, Some(&fixture("tiny-clip"))), None);
    assert_eq!(
        tower_repo_id(&tiny, Some(Path::new("org/some-clip"))).as_deref(),
        Some("org/some-clip")
    );
    let out = scratch("stock").join("export");
    let mut request = hf_request(tiny, out.clone());
    request.vision = Some(fixture("tiny-clip"));
    request.vision_repo = named;
    export_model(&request, &common::device()).unwrap();
    assert!(!out.join("vision").exists(), "a stock tower is not copied");
    let config = common::json(out.join("config.json").to_str().unwrap());
    assert_eq!(config["mm_vision_tower"], "openai/clip-vit-large-patch14");
    assert!(
        out.join("model.safetensors").is_file(),
        "one file below the shard size"
    );
}

#[test]
fn a_folder_that_holds_weights_is_refused() {
    let out = scratch("refused");
    std::fs::write(out.join("model.bpk"), b"old").unwrap();
    let mut request = hf_request(fixture("tiny-lcl"), out.clone());
    request.vision = Some(fixture("tiny-clip"));
    let err = format!(
        "{:#}",
        export_model(&request, &common::device()).unwrap_err()
    );
    assert!(err.contains("already holds weights (model.bpk)"), "{err}");
    assert_eq!(std::fs::read(out.join("model.bpk")).unwrap(), b"old");
}
