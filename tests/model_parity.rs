//! The Burn model against transformers 4.29 on the tiny fixtures: CLIP hidden states, LLaMA
//! logits, whole LCL episodes, greedy generation, KV cache, left padding, and every
//! checkpoint variant.

mod common;

use burn::tensor::{DType, Tensor, TensorData};
use common::*;
use lcl_model::checkpoint::naming::{SHIKRA_VISION_PREFIX, vision_ignorable, vision_prefix};
use lcl_model::config::ClipVisionConfig;
use lcl_model::{
    ClipVisionTransformer, GenerationConfig, LclModel, LoadOptions, TokenBatch, WeightFiles,
    WeightLoader,
};

const IMAGE_PATCH_ID: u32 = 512;

fn tiny_model(variant: &str, dtype: DType) -> LclModel {
    LclModel::from_pretrained(
        &fixture(variant),
        &fixture("tiny-clip"),
        &device(),
        LoadOptions {
            dtype,
            image_patch_id: Some(IMAGE_PATCH_ID),
            ..LoadOptions::default()
        },
    )
    .expect("tiny checkpoint loads")
}

fn clip_tower(dir: &str) -> ClipVisionTransformer {
    let dir = fixture(dir);
    let config = ClipVisionConfig::from_file(&dir.join("config.json")).unwrap();
    let files = WeightFiles::open(&dir).unwrap();
    let prefix = vision_prefix(&files);
    let mut loader = WeightLoader::load(&files, prefix, &device(), DType::F32);
    let tower = ClipVisionTransformer::load(&mut loader, &config).unwrap();
    loader
        .finish(|name| vision_ignorable(name, prefix))
        .unwrap();
    tower
}

fn pixels(name: &str) -> Tensor<4> {
    let array = reference(name);
    let shape: [usize; 4] = array.shape.clone().try_into().unwrap();
    Tensor::from_data(TensorData::new(array.data, shape), &device())
}

fn episode(name: &str) -> (Vec<u32>, Tensor<4>, Vec<u32>) {
    let meta = json(&format!("ref/{name}.json"));
    (
        ids(&meta["input_ids"]),
        pixels(&format!("{name}_pixel_values")),
        ids(&meta["greedy_ids"]),
    )
}

#[test]
fn clip_hidden_states_match_transformers() {
    for dir in ["tiny-clip", "tiny-clip-st"] {
        let tower = clip_tower(dir);
        let states = tower.hidden_states(pixels("clip_pixel_values"));
        let expected = reference("clip_hidden_states");
        assert_eq!(states.len(), expected.shape[0]);
        let actual: Vec<f32> = states.into_iter().flat_map(values).collect();
        assert_close(
            &format!("{dir} hidden states"),
            &actual,
            &expected.data,
            f32_tolerance(),
        );
        let pooled = values(tower.pooled(pixels("clip_pixel_values")));
        assert_close(
            "pooled",
            &pooled,
            &reference("clip_post_layernorm_pooled").data,
            f32_tolerance(),
        );
    }
}

#[test]
fn shikra_prefixed_vision_tower_is_found() {
    let files = WeightFiles::open(&fixture("tiny-clip-st")).unwrap();
    assert_eq!(vision_prefix(&files), SHIKRA_VISION_PREFIX);
    let files = WeightFiles::open(&fixture("tiny-clip")).unwrap();
    assert_eq!(vision_prefix(&files), "");
}

#[test]
fn text_logits_match_transformers() {
    let model = tiny_model("tiny-lcl", DType::F32);
    let input = ids(&json("ref/llama_text.json")["input_ids"]);
    let logits = model
        .forward_logits(&TokenBatch::left_padded(&[input], 0), None)
        .unwrap();
    assert_close(
        "text logits",
        &values(logits),
        &reference("llama_text_logits").data,
        f32_tolerance(),
    );
}

#[test]
fn episode_features_logits_and_greedy_ids_match_transformers() {
    let model = tiny_model("tiny-lcl", DType::F32);
    for name in ["episode", "episode2"] {
        let (input, pixels, greedy) = episode(name);
        let features = model.encode_images(pixels);
        assert_close(
            &format!("{name} image features"),
            &values(features.clone()),
            &reference(&format!("{name}_image_features")).data,
            f32_tolerance(),
        );
        let batch = TokenBatch::left_padded(std::slice::from_ref(&input), 0);
        let logits = model
            .forward_logits(&batch, Some(features.clone()))
            .unwrap();
        assert_close(
            &format!("{name} logits"),
            &values(logits),
            &reference(&format!("{name}_logits")).data,
            f32_tolerance(),
        );
        let config = GenerationConfig {
            max_new_tokens: greedy.len(),
            ..GenerationConfig::default()
        };
        let generated = model.generate(&[input], Some(features), &config).unwrap();
        assert_eq!(generated.tokens[0], greedy, "{name} greedy ids");
    }
}

/// An episode of JPEG files (4:2:0, progressive, YCCK, grey, restart markers) decoded and
/// preprocessed here, not by Python: pixels, logits and greedy answer as transformers gives
/// them from Pillow's decoding.
#[test]
fn an_episode_of_jpeg_files_decoded_here_matches_transformers() {
    let model = tiny_model("tiny-lcl", DType::F32);
    let meta = json("ref/episode_jpeg.json");
    let files: Vec<_> = meta["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| fixture(f.as_str().unwrap()))
        .collect();
    assert!(files.iter().all(|f| f.extension().unwrap() == "jpg"));
    let pixels = lcl::image::pixel_batch(&files, 56, &device()).unwrap();
    assert_close(
        "JPEG episode pixel values",
        &values(pixels.clone()),
        &reference("episode_jpeg_pixel_values").data,
        1e-6,
    );
    let input = ids(&meta["input_ids"]);
    let features = model.encode_images(pixels);
    let batch = TokenBatch::left_padded(std::slice::from_ref(&input), 0);
    let logits = model
        .forward_logits(&batch, Some(features.clone()))
        .unwrap();
    assert_close(
        "JPEG episode logits",
        &values(logits),
        &reference("episode_jpeg_logits").data,
        f32_tolerance(),
    );
    let greedy = ids(&meta["greedy_ids"]);
    let config = GenerationConfig {
        max_new_tokens: greedy.len(),
        ..GenerationConfig::default()
    };
    let generated = model.generate(&[input], Some(features), &config).unwrap();
    assert_eq!(generated.tokens[0], greedy, "JPEG episode greedy ids");
}

#[test]
fn a_decoder_grown_by_identity_blocks_gives_the_same_logits() {
    let mut model = tiny_model("tiny-lcl", DType::F32);
    let layers = model.llm.num_layers();
    model.llm = lcl::train::grow::grow(model.llm, 2 * layers + 1).unwrap();
    assert_eq!(model.llm.num_layers(), 2 * layers + 1);
    let (input, pixels, greedy) = episode("episode");
    let features = model.encode_images(pixels);
    let batch = TokenBatch::left_padded(std::slice::from_ref(&input), 0);
    let logits = model
        .forward_logits(&batch, Some(features.clone()))
        .unwrap();
    assert_close(
        "grown decoder's episode logits",
        &values(logits),
        &reference("episode_logits").data,
        f32_tolerance(),
    );
    let config = GenerationConfig {
        max_new_tokens: greedy.len(),
        ..GenerationConfig::default()
    };
    let generated = model.generate(&[input], Some(features), &config).unwrap();
    assert_eq!(generated.tokens[0], greedy, "grown decoder's greedy ids");
}

/// Greedy decoding by recomputing the whole sequence at every step, without a cache.
fn greedy_without_cache(
    model: &LclModel,
    prompt: &[u32],
    pixels: Tensor<4>,
    steps: usize,
) -> Vec<u32> {
    let features = model.encode_images(pixels);
    let mut sequence = prompt.to_vec();
    for _ in 0..steps {
        let batch = TokenBatch::left_padded(std::slice::from_ref(&sequence), 0);
        let logits = model
            .forward_logits(&batch, Some(features.clone()))
            .unwrap();
        let [_, len, vocab] = logits.dims();
        let last = values(logits.slice([0..1, len - 1..len, 0..vocab]));
        sequence.push(lcl_model::generate::argmax(&last));
    }
    sequence[prompt.len()..].to_vec()
}

#[test]
fn kv_cache_generation_equals_full_recompute() {
    let model = tiny_model("tiny-lcl", DType::F32);
    let (input, pixels, _) = episode("episode2");
    let steps = 12;
    let recomputed = greedy_without_cache(&model, &input, pixels.clone(), steps);
    let config = GenerationConfig {
        max_new_tokens: steps,
        eos_token_id: u32::MAX,
        ..GenerationConfig::default()
    };
    let cached = model
        .generate(&[input], Some(model.encode_images(pixels)), &config)
        .unwrap();
    assert_eq!(cached.tokens[0], recomputed);
}

#[test]
fn left_padded_batch_equals_each_row_alone() {
    let model = tiny_model("tiny-lcl", DType::F32);
    let (long, long_pixels, long_greedy) = episode("episode");
    let (short, short_pixels, short_greedy) = episode("episode2");
    assert!(short.len() < long.len());
    let features = model.encode_images(Tensor::cat(vec![long_pixels, short_pixels], 0));
    let rows = [long.clone(), short.clone()];
    let batch = TokenBatch::left_padded(&rows, 0);
    let logits = model
        .forward_logits(&batch, Some(features.clone()))
        .unwrap();
    let [_, len, vocab] = logits.dims();
    let long_logits = values(logits.clone().slice([0..1, 0..len, 0..vocab]));
    assert_close(
        "padded row 0",
        &long_logits,
        &reference("episode_logits").data,
        f32_tolerance(),
    );
    let pad = len - short.len();
    let short_logits = values(logits.slice([1..2, pad..len, 0..vocab]));
    assert_close(
        "padded row 1",
        &short_logits,
        &reference("episode2_logits").data,
        f32_tolerance(),
    );

    let steps = long_greedy.len().min(short_greedy.len());
    let config = GenerationConfig {
        max_new_tokens: steps,
        eos_token_id: u32::MAX,
        ..GenerationConfig::default()
    };
    let generated = model.generate(&rows, Some(features), &config).unwrap();
    assert_eq!(generated.tokens[0], long_greedy[..steps]);
    assert_eq!(generated.tokens[1], short_greedy[..steps]);
}

#[test]
fn every_checkpoint_variant_gives_the_same_logits() {
    let input = ids(&json("ref/llama_text.json")["input_ids"]);
    let batch = TokenBatch::left_padded(&[input], 0);
    let expected = reference("llama_text_logits").data;
    for variant in [
        "tiny-lcl",
        "tiny-lcl-st",
        "tiny-lcl-st-sharded",
        "tiny-lcl-bf16",
    ] {
        let logits = values(
            tiny_model(variant, DType::F32)
                .forward_logits(&batch, None)
                .unwrap(),
        );
        assert_close(variant, &logits, &expected, f32_tolerance());
    }
    let fp16 = values(
        tiny_model("tiny-lcl-fp16", DType::F32)
            .forward_logits(&batch, None)
            .unwrap(),
    );
    let fp16_reference =
        lcl::npy::read(&fixture("tiny-lcl-fp16/fp16_reference_logits.npy")).unwrap();
    assert_close(
        "tiny-lcl-fp16",
        &fp16,
        &fp16_reference.data,
        f32_tolerance(),
    );
}

#[test]
fn half_precision_weights_stay_close_to_f32() {
    let input = ids(&json("ref/llama_text.json")["input_ids"]);
    let batch = TokenBatch::left_padded(&[input], 0);
    let expected = reference("llama_text_logits").data;
    let spread = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for dtype in [DType::BF16, DType::F16] {
        if !device().supports_dtype(dtype) {
            let err = LclModel::from_pretrained(
                &fixture("tiny-lcl"),
                &fixture("tiny-clip"),
                &device(),
                LoadOptions {
                    dtype,
                    image_patch_id: Some(IMAGE_PATCH_ID),
                    ..LoadOptions::default()
                },
            )
            .expect_err("an unsupported dtype is refused")
            .to_string();
            assert!(err.contains("cannot compute in"), "{err}");
            eprintln!("{dtype:?} is not supported by this device: refused as expected");
            continue;
        }
        let model = tiny_model("tiny-lcl", dtype);
        assert_eq!(model.dtype(), dtype);
        let logits = values(model.forward_logits(&batch, None).unwrap());
        // bf16 keeps 8 bits of mantissa: allow 5% of the logit range.
        assert_close(&format!("{dtype:?}"), &logits, &expected, 0.05 * spread);
    }
}

#[test]
fn image_count_must_match_patch_tokens() {
    let model = tiny_model("tiny-lcl", DType::F32);
    let (input, pixels, _) = episode("episode");
    let two_images = pixels.slice([0..2, 0..3, 0..56, 0..56]);
    let err = model
        .forward_logits(
            &TokenBatch::left_padded(std::slice::from_ref(&input), 0),
            Some(model.encode_images(two_images)),
        )
        .unwrap_err();
    assert!(
        err.0
            .contains("48 <im_patch> tokens but 2 images x 16 patches"),
        "{err}"
    );
    let err = model
        .forward_logits(&TokenBatch::left_padded(&[input], 0), None)
        .unwrap_err();
    assert!(err.0.contains("no image was given"), "{err}");
}

/// The reference episode's ids split into its support prefix and its query segment.
fn split_reference_episode() -> (Vec<u32>, Vec<u32>) {
    let meta = json("ref/episode.json");
    let mut segments: Vec<Vec<u32>> = meta["segment_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids)
        .collect();
    let query = segments.pop().unwrap();
    (segments.concat(), query)
}

#[test]
fn a_support_prefix_computed_once_gives_the_reference_answers() {
    let model = tiny_model("tiny-lcl", DType::F32);
    let (input, pixels, greedy) = episode("episode");
    let (prefix, query) = split_reference_episode();
    assert_eq!([prefix.clone(), query.clone()].concat(), input);
    let features = model.encode_images(pixels);
    let [images, patches, width] = features.dims();
    let support_features = features
        .clone()
        .slice([0..images - 1, 0..patches, 0..width]);
    let query_features = features.slice([images - 1..images, 0..patches, 0..width]);
    let cache = model.prefill(&prefix, Some(support_features)).unwrap();
    let config = GenerationConfig {
        max_new_tokens: greedy.len(),
        ..GenerationConfig::default()
    };
    // two queries after one support set: both continue the shared cache
    let generated = model
        .generate_after(
            &cache,
            &[query.clone(), query.clone()],
            Some(Tensor::cat(vec![query_features.clone(), query_features], 0)),
            &config,
        )
        .unwrap();
    assert_eq!(generated.tokens[0], greedy, "reused prefix, row 0");
    assert_eq!(generated.tokens[1], greedy, "reused prefix, row 1");
    let logits = reference("episode_logits");
    let vocab = logits.shape[1];
    let last = &logits.data[logits.data.len() - vocab..];
    let ours = values(generated.prompt_logits);
    assert_close(
        "prefix-reuse prompt logits",
        &ours[..vocab],
        last,
        f32_tolerance(),
    );
    assert_close(
        "prefix-reuse prompt logits row 1",
        &ours[vocab..],
        last,
        f32_tolerance(),
    );
}

#[test]
fn distinct_queries_after_one_prefix_answer_as_their_whole_prompts() {
    let model = tiny_model("tiny-lcl", DType::F32);
    let (input, pixels, _) = episode("episode");
    let (prefix, query) = split_reference_episode();
    let features = model.encode_images(pixels);
    let [images, patches, width] = features.dims();
    let (_, other_pixels, _) = episode("episode2");
    let other = model.encode_images(other_pixels);
    let queries = Tensor::cat(
        vec![
            features
                .clone()
                .slice([images - 1..images, 0..patches, 0..width]),
            other.slice([1..2, 0..patches, 0..width]),
        ],
        0,
    );
    let config = GenerationConfig {
        max_new_tokens: 8,
        eos_token_id: u32::MAX,
        ..GenerationConfig::default()
    };
    let support_features = features
        .clone()
        .slice([0..images - 1, 0..patches, 0..width]);
    let mut expected = Vec::new();
    for row in 0..2 {
        let all = Tensor::cat(
            vec![
                support_features.clone(),
                queries.clone().slice([row..row + 1, 0..patches, 0..width]),
            ],
            0,
        );
        expected.push(
            model
                .generate(std::slice::from_ref(&input), Some(all), &config)
                .unwrap(),
        );
    }
    let cache = model.prefill(&prefix, Some(support_features)).unwrap();
    let reused = model
        .generate_after(
            &cache,
            &[query.clone(), query.clone()],
            Some(queries),
            &config,
        )
        .unwrap();
    let vocab = reused.prompt_logits.dims()[1];
    let reused_logits = values(reused.prompt_logits);
    for row in 0..2 {
        assert_close(
            &format!("row {row} prompt logits"),
            &reused_logits[row * vocab..(row + 1) * vocab],
            &values(expected[row].prompt_logits.clone()),
            f32_tolerance(),
        );
        assert_eq!(reused.tokens[row], expected[row].tokens[0], "row {row}");
    }
}
