//! `lcl-model` embedded in another Burn program, through its public API only: load a
//! Shikra/LCL folder and its CLIP, encode the episode's images, answer greedily.
//!
//! The tokenizer and the image preprocessing are the caller's (the `lcl` application has
//! both); this example reads an episode already prepared: prompt ids as JSON
//! (`{"input_ids": [...]}`) and pixel values `[images, 3, size, size]` as a float32 `.npy`.
//!
//! ```text
//! cargo run -p lcl-model --example episode -- tests/fixtures/tiny-lcl tests/fixtures/tiny-clip \
//!     tests/fixtures/ref/episode.json tests/fixtures/ref/episode_pixel_values.npy
//! ```

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use lcl_model::{GenerationConfig, LclModel, LoadOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_dir, clip_dir, prompt, pixels] = args.as_slice() else {
        return Err("usage: episode MODEL_DIR CLIP_DIR PROMPT.json PIXELS.npy".into());
    };
    let prompt: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(prompt)?)?;
    let ids: Vec<u32> = serde_json::from_value(prompt["input_ids"].clone())?;
    let (shape, values) = read_npy_f32(Path::new(pixels))?;
    let [images, channels, height, width] = shape[..] else {
        return Err("pixel values must be [images, channels, height, width]".into());
    };

    // README begin
    let device = Device::default();
    let model = LclModel::from_pretrained(
        model_dir.as_ref(),
        clip_dir.as_ref(),
        &device,
        LoadOptions::default(),
    )?;
    let pixels = Tensor::<4>::from_data(
        TensorData::new(values, [images, channels, height, width]),
        &device,
    );
    let features = model.encode_images(pixels); // [images, patches, hidden]
    let config = GenerationConfig {
        max_new_tokens: 10,
        ..GenerationConfig::default()
    };
    let answer = model.generate(&[ids], Some(features), &config)?;
    // README end

    println!("{}", serde_json::to_string(&answer.tokens[0])?);
    Ok(())
}

/// A little-endian float32 `.npy` file (C order): its shape and values.
fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
        return Err(format!("{}: not a .npy file", path.display()).into());
    }
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        let len = u32::from_le_bytes(bytes[8..12].try_into()?) as usize;
        (len, 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len])?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(format!("{}: not little-endian float32 in C order", path.display()).into());
    }
    let dims = header
        .split_once("'shape': (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .ok_or("no shape in the .npy header")?
        .0;
    let shape = dims
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim().parse())
        .collect::<Result<Vec<usize>, _>>()?;
    let values = bytes[start + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok((shape, values))
}
