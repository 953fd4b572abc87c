//! Image loading and preprocessing against Pillow 9.4 + transformers 4.29's
//! `CLIPImageProcessor` (goldens from `tests/fixtures/gen_fixtures.py`).
//!
//! Tolerances: decoding is exact for every format (JPEG through libjpeg-turbo itself, as
//! Pillow decodes it), and so is the whole bicubic resize (Pillow's fixed-point algorithm
//! reproduced bit for bit); normalised values within 1e-6.

mod common;

use common::*;
use lcl::image::{expand_to_square, normalize, open_rgb, preprocess_file, resize_and_crop};

const IMAGES: [(&str, &str); 7] = [
    ("a", "a.png"),
    ("b", "b.jpg"),
    ("c", "c.png"),
    ("d", "d.png"),
    ("e_16bit", "e_16bit.png"),
    ("f", "f.webp"),
    ("g_cmyk", "g_cmyk.jpg"),
];

fn max_level_diff(actual: &[u8], expected: &[f32]) -> f32 {
    let actual: Vec<f32> = actual.iter().map(|&v| f32::from(v)).collect();
    max_abs_diff(&actual, expected)
}

#[test]
fn images_open_like_pil_convert_rgb() {
    for (name, file) in IMAGES {
        let rgb = open_rgb(&fixture(&format!("images/{file}"))).unwrap();
        let expected = reference(&format!("decoded_{name}"));
        assert_eq!(
            expected.shape,
            vec![rgb.height() as usize, rgb.width() as usize, 3],
            "{file}"
        );
        let diff = max_level_diff(rgb.as_raw(), &expected.data);
        assert_eq!(diff, 0.0, "{file}: decoded pixels differ by {diff}");
    }
}

/// Every coding of `images/jpeg/` (gen_jpeg_fixtures.py): the pixels Pillow gives, or the
/// refusal Pillow gives.
#[test]
fn jpeg_files_of_every_coding_decode_exactly_as_pillow() {
    let cases = json("ref/jpeg_cases.json");
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 18, "{} cases", cases.len());
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let coding = case["coding"].as_str().unwrap();
        let decoded = open_rgb(&fixture(file));
        let Some(expected) = case["decoded"].as_str() else {
            let err = format!("{:#}", decoded.expect_err(file));
            assert!(err.contains("truncated"), "{file} ({coding}): {err}");
            continue;
        };
        let rgb = decoded.unwrap_or_else(|err| panic!("{file} ({coding}): {err:#}"));
        let expected = reference(expected.trim_end_matches(".npy"));
        assert_eq!(
            expected.shape,
            vec![rgb.height() as usize, rgb.width() as usize, 3],
            "{file} ({coding})"
        );
        let expected: Vec<u8> = expected.data.iter().map(|&v| v as u8).collect();
        let differing = rgb
            .as_raw()
            .iter()
            .zip(&expected)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 0, "{file} ({coding}): {differing} values differ");
    }
}

#[test]
fn square_resize_and_crop_match_the_clip_processor_bit_for_bit() {
    for (name, file) in IMAGES {
        // Start from Pillow's own decoded pixels, so only the geometry is compared.
        let decoded = reference(&format!("decoded_{name}"));
        let (h, w) = (decoded.shape[0] as u32, decoded.shape[1] as u32);
        let pixels: Vec<u8> = decoded.data.iter().map(|&v| v as u8).collect();
        let rgb = image::RgbImage::from_raw(w, h, pixels).unwrap();
        let processed = resize_and_crop(&expand_to_square(&rgb, [255, 255, 255]), 224);
        let expected = reference(&format!("preprocess_224_{name}"));
        let diff = max_level_diff(processed.as_raw(), &expected.data);
        assert_eq!(diff, 0.0, "{file}: resized pixels differ");
    }
}

#[test]
fn normalised_pixel_values_match_the_processor() {
    let values = preprocess_file(&fixture("images/a.png"), 224).unwrap();
    assert_close(
        "a.png pixel values",
        &values,
        &reference("preprocess_224_a_pixel_values").data,
        1e-6,
    );
    let expected = reference("preprocess_224_a");
    let pixels: Vec<u8> = expected.data.iter().map(|&v| v as u8).collect();
    let image = image::RgbImage::from_raw(224, 224, pixels).unwrap();
    assert_close(
        "normalize",
        &normalize(&image),
        &reference("preprocess_224_a_pixel_values").data,
        1e-6,
    );
}

#[test]
fn episode_pixel_values_match_at_the_tiny_tower_size() {
    let meta = json("ref/episode.json");
    let mut values = Vec::new();
    for image in meta["images"].as_array().unwrap() {
        values.extend(preprocess_file(&fixture(image.as_str().unwrap()), 56).unwrap());
    }
    assert_close(
        "episode pixel values",
        &values,
        &reference("episode_pixel_values").data,
        1e-6,
    );
}

#[test]
fn corrupt_and_missing_images_are_errors_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("lcl-preprocess-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corrupt = dir.join("corrupt.png");
    let mut bytes = std::fs::read(fixture("images/a.png")).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, bytes).unwrap();
    let err = format!("{:#}", preprocess_file(&corrupt, 224).unwrap_err());
    assert!(
        err.contains("corrupt.png") && err.contains("not a readable image"),
        "{err}"
    );
    let missing = dir.join("missing.jpg");
    let err = format!("{:#}", preprocess_file(&missing, 224).unwrap_err());
    assert!(
        err.contains("missing.jpg") && err.contains("cannot read image"),
        "{err}"
    );
}
