//! How Shikra/LCL and CLIP checkpoints name their tensors: where the CLIP tower sits, and
//! which stored tensors are known and deliberately not loaded.

use super::WeightFiles;

/// Prefix under which Shikra-style checkpoints store the CLIP tower.
pub const SHIKRA_VISION_PREFIX: &str = "model.vision_tower.vision_tower.";

/// Where the CLIP tensors sit in `files`: at the top (`vision_model.*`) or under the Shikra
/// prefix.
pub fn vision_prefix(files: &WeightFiles) -> &'static str {
    let marker = "vision_model.embeddings.class_embedding";
    if files.get(marker).is_none()
        && files
            .get(&format!("{SHIKRA_VISION_PREFIX}{marker}"))
            .is_some()
    {
        SHIKRA_VISION_PREFIX
    } else {
        ""
    }
}

/// Tensors of an LCL checkpoint that are known and not loaded: RoPE buffers, and a vision
/// tower stored inside (it is loaded from the CLIP folder).
pub fn llm_ignorable(name: &str) -> bool {
    name.ends_with("rotary_emb.inv_freq") || name.starts_with("model.vision_tower.")
}

/// Tensors of a CLIP checkpoint that are known and not loaded when only the vision tower is
/// wanted: the text tower, both projections, the logit scale, position-id buffers, and
/// everything outside the tower when it sits inside a bigger checkpoint.
pub fn vision_ignorable(name: &str, prefix: &str) -> bool {
    if name.ends_with("embeddings.position_ids") {
        return true;
    }
    let Some(local) = name.strip_prefix(prefix) else {
        return true;
    };
    [
        "text_model.",
        "visual_projection.",
        "text_projection.",
        "logit_scale",
    ]
    .iter()
    .any(|part| local.starts_with(part))
}

/// The `<im_patch>` id a model folder's `added_tokens.json` gives, if it has one.
pub fn image_patch_id(model_dir: &std::path::Path) -> Option<u32> {
    let text = std::fs::read_to_string(model_dir.join("added_tokens.json")).ok()?;
    let tokens: serde_json::Value = serde_json::from_str(&text).ok()?;
    u32::try_from(tokens.get("<im_patch>")?.as_u64()?).ok()
}
