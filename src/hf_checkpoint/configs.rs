//! The JSON files of a Hugging Face checkpoint folder: a Shikra/LCL `config.json` (the
//! released LCL checkpoints' fields), a CLIP `config.json`, and the CLIP
//! `preprocessor_config.json`.

use burn::tensor::DType;
use lcl_model::{ClipConfig, ClipVisionConfig, LlamaConfig};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// transformers' name of a dtype (`torch_dtype`).
pub fn torch_dtype(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::F64 => "float64",
        _ => "float32",
    }
}

/// `base` with every field of `sizes` that has a value written over it (a `null` leaves
/// the field of `base` as it is), then `defaults` for fields still missing.
fn merged(
    mut base: Map<String, Value>,
    sizes: impl Serialize,
    defaults: Value,
) -> Map<String, Value> {
    if let Ok(Value::Object(sizes)) = serde_json::to_value(sizes) {
        for (key, value) in sizes {
            if !value.is_null() {
                base.insert(key, value);
            }
        }
    }
    if let Value::Object(defaults) = defaults {
        for (key, value) in defaults {
            base.entry(key).or_insert(value);
        }
    }
    base
}

/// The object at `key` of `source`, or an empty one.
fn object_at(source: &Map<String, Value>, key: &str) -> Map<String, Value> {
    match source.get(key) {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    }
}

/// A Shikra/LCL `config.json`: the source folder's fields kept, the model's sizes and tower
/// written over them, and what transformers' `LlamaConfig` and Shikra's code read filled in
/// where missing (as the released checkpoints have them).
pub fn shikra_config(
    source: Map<String, Value>,
    llm: &LlamaConfig,
    dtype: DType,
    bos_id: u32,
    eos_id: u32,
) -> Value {
    let defaults = json!({
        "architectures": ["ShikraLlamaForCausalLM"],
        "model_type": "shikra",
        "hidden_act": "silu",
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "initializer_range": 0.02,
        "use_cache": true,
        "mm_use_im_start_end": true,
        "mm_vision_select_layer": -2,
        "use_mm_proj": true,
        "sep_image_conv_front": false,
        "freeze_mm_mlp_adapter": false,
        "tune_mm_mlp_adapter": false,
    });
    let mut config = merged(source, llm, defaults);
    // Written even when unset: transformers 4.29's default (0) would make row 0 of the embedding
    // a padding row, frozen in training, which it is not here.
    config.entry("pad_token_id").or_insert(Value::Null);
    config.insert("torch_dtype".into(), torch_dtype(dtype).into());
    Value::Object(config)
}

/// A CLIP `config.json` for a whole `CLIPModel` (both towers).
pub fn clip_config(source: Map<String, Value>, clip: &ClipConfig, dtype: DType) -> Value {
    let vision = merged(
        object_at(&source, "vision_config"),
        &clip.vision_config,
        json!({"model_type": "clip_vision_model"}),
    );
    let text = merged(
        object_at(&source, "text_config"),
        &clip.text_config,
        json!({"model_type": "clip_text_model"}),
    );
    let mut config = merged(
        source,
        json!({"projection_dim": clip.projection_dim}),
        json!({
            "architectures": ["CLIPModel"],
            "model_type": "clip",
            "logit_scale_init_value": 2.6592,
        }),
    );
    config.insert("vision_config".into(), Value::Object(vision));
    config.insert("text_config".into(), Value::Object(text));
    config.insert("torch_dtype".into(), torch_dtype(dtype).into());
    Value::Object(config)
}

/// A CLIP `config.json` for the vision tower alone (`CLIPVisionModel`).
pub fn clip_vision_config(vision: &ClipVisionConfig, dtype: DType) -> Value {
    let mut config = merged(
        Map::new(),
        vision,
        json!({"architectures": ["CLIPVisionModel"], "model_type": "clip_vision_model"}),
    );
    config.insert("torch_dtype".into(), torch_dtype(dtype).into());
    Value::Object(config)
}

/// OpenAI CLIP's per-channel mean and std as its `preprocessor_config.json` writes them.
const IMAGE_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
const IMAGE_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// transformers' `CLIPImageProcessor` settings for a tower of this input size: bicubic
/// resize of the shortest side, centre crop, OpenAI's mean and std (what this project's
/// preprocessing computes, [`crate::image`]).
pub fn preprocessor_config(image_size: usize) -> Value {
    json!({
        "crop_size": {"height": image_size, "width": image_size},
        "do_center_crop": true,
        "do_convert_rgb": true,
        "do_normalize": true,
        "do_rescale": true,
        "do_resize": true,
        "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": IMAGE_MEAN,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": IMAGE_STD,
        "resample": 3,
        "rescale_factor": 1.0 / 255.0,
        "size": {"shortest_edge": image_size},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_processor_normalises_as_this_project_does() {
        for c in 0..3 {
            assert_eq!(IMAGE_MEAN[c] as f32, crate::image::CLIP_MEAN[c]);
            assert_eq!(IMAGE_STD[c] as f32, crate::image::CLIP_STD[c]);
        }
    }

    #[test]
    fn source_fields_are_kept_and_sizes_written_over_them() {
        let source = json!({"model_type": "shikra", "pad_token_id": -1, "hidden_size": 1});
        let llm: LlamaConfig = serde_json::from_value(json!({"hidden_size": 64})).unwrap();
        let Value::Object(source) = source else {
            unreachable!()
        };
        let config = shikra_config(source, &llm, DType::F16, 1, 2);
        assert_eq!(config["hidden_size"], 64);
        assert_eq!(config["pad_token_id"], -1);
        assert_eq!(config["torch_dtype"], "float16");
        assert_eq!(config["mm_vision_select_layer"], -2);
        assert!(config.get("num_key_value_heads").is_none());
    }
}
