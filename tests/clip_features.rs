//! The full CLIP model (both towers and projections) and CLIP's tokenizer against
//! transformers 4.29 (`CLIPModel.get_text_features` / `get_image_features`, the fast
//! `CLIPTokenizer`), on the tiny fixture `tests/fixtures/tiny-clip-text`.

mod common;

use burn::tensor::{DType, Tensor, TensorData};
use common::*;
use lcl::image::{normalize, open_rgb, resize_and_crop};
use lcl::tokenizer::ClipTokenizer;
use lcl_model::ClipModel;

const MAX_LEN: usize = 32;

fn model() -> ClipModel {
    ClipModel::from_pretrained(&fixture("tiny-clip-text"), &device(), DType::F32).unwrap()
}

#[test]
fn clip_tokenizer_matches_the_fast_tokenizer_with_truncation() {
    let tokenizer = ClipTokenizer::from_dir(&fixture("tiny-clip-text"), MAX_LEN).unwrap();
    let cases = json("ref/clip_text.json");
    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        assert_eq!(
            tokenizer.encode(name).unwrap(),
            ids(&case["ids"]),
            "{name:?}"
        );
    }
}

/// Many CLIP folders hold `vocab.json` + `merges.txt` and no `tokenizer.json`: the tokenizer
/// built from them gives the same ids (the fixture script asserts transformers does too).
#[test]
fn clip_tokenizer_from_vocab_and_merges_alone_gives_the_same_ids() {
    let dir = scratch("clip-vocab-merges");
    for file in ["vocab.json", "merges.txt"] {
        std::fs::copy(fixture(&format!("tiny-clip-text/{file}")), dir.join(file)).unwrap();
    }
    let tokenizer = ClipTokenizer::from_dir(&dir, MAX_LEN).unwrap();
    for case in json("ref/clip_text.json").as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        assert_eq!(
            tokenizer.encode(name).unwrap(),
            ids(&case["ids"]),
            "{name:?}"
        );
    }
    std::fs::remove_file(dir.join("merges.txt")).unwrap();
    let err = ClipTokenizer::from_dir(&dir, MAX_LEN)
        .unwrap_err()
        .to_string();
    assert!(err.contains("vocab.json with merges.txt"), "{err}");
}

#[test]
fn text_features_match_transformers_one_by_one_and_batched() {
    let model = model();
    let cases = json("ref/clip_text.json");
    let rows: Vec<Vec<u32>> = cases
        .as_array()
        .unwrap()
        .iter()
        .map(|c| ids(&c["ids"]))
        .collect();
    assert_eq!(model.text_tower().max_positions(), MAX_LEN);
    let expected = reference("clip_text_embeds");
    let batched = values(model.text_features(&rows, &device()));
    assert_close(
        "text features (batched)",
        &batched,
        &expected.data,
        f32_tolerance(),
    );
    let width = expected.shape[1];
    let first = values(model.text_features(&rows[1..2], &device()));
    assert_close(
        "text features (one)",
        &first,
        &expected.data[width..2 * width],
        f32_tolerance(),
    );
}

#[test]
fn image_features_match_transformers() {
    let model = model();
    let pixels = reference("clip_image_pixel_values");
    let [n, c, h, w] = pixels.shape[..] else {
        panic!("4-d pixels")
    };
    let input = Tensor::<4>::from_data(
        TensorData::new(pixels.data.clone(), [n, c, h, w]),
        &device(),
    );
    let expected = reference("clip_image_embeds");
    assert_close(
        "image features",
        &values(model.image_features(input)),
        &expected.data,
        f32_tolerance(),
    );
    // our preprocessing (no square padding) gives the processor's pixels for the PNGs
    let plane = c * h * w;
    for (i, name) in ["a.png", "c.png", "d.png", "e_16bit.png"]
        .iter()
        .enumerate()
    {
        let index = [0, 2, 3, 4][i];
        let ours = normalize(&resize_and_crop(
            &open_rgb(&fixture(&format!("images/{name}"))).unwrap(),
            h as u32,
        ));
        assert_close(
            &format!("pixels of {name}"),
            &ours,
            &pixels.data[index * plane..(index + 1) * plane],
            1e-5,
        );
    }
}

#[test]
fn a_clip_folder_without_a_text_tower_is_refused_with_the_missing_tensors() {
    let err = ClipModel::from_pretrained(&fixture("tiny-clip-st"), &device(), DType::F32)
        .expect_err("vision-only checkpoint");
    let message = err.to_string();
    assert!(
        message.contains("text_config") || message.contains("text_model"),
        "{message}"
    );
}

#[test]
fn a_clip_folder_in_burn_format_loads_the_same_model() {
    let dir = scratch("clip-burnpack");
    std::fs::copy(
        fixture("tiny-clip-text/config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    let original = model();
    original.save_burnpack(&dir.join("model.bpk")).unwrap();
    let reloaded = ClipModel::from_pretrained(&dir, &device(), DType::F32).unwrap();
    let rows = vec![vec![0u32, 5, 9, 2]];
    assert_close(
        "text features after a burnpack round trip",
        &values(reloaded.text_features(&rows, &device())),
        &values(original.text_features(&rows, &device())),
        1e-6,
    );
    std::fs::write(dir.join("model.bpk"), b"not a burnpack").unwrap();
    let error = ClipModel::from_pretrained(&dir, &device(), DType::F32).unwrap_err();
    assert!(error.to_string().contains("model.bpk"), "{error}");
}
