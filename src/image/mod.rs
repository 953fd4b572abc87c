//! Image preprocessing of the original: open as PIL's `convert('RGB')` does (JPEG through
//! libjpeg-turbo itself, [`jpeg`]; other formats through the `image` crate), pad to a white
//! square (Shikra's `expand2square`), then CLIP's processor: bicubic resize of the shortest
//! side with Pillow's exact fixed-point algorithm, centre crop, scale and normalise.

pub mod jpeg;

use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use image::{DynamicImage, ImageReader, Limits, RgbImage};

/// CLIP's normalisation mean (RGB).
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP's normalisation standard deviation (RGB), with the digits transformers writes.
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// Opens an image file as 8-bit RGB the way `PIL.Image.open(p).convert('RGB')` does:
/// alpha is dropped (not composited), grey is replicated.
pub fn open_rgb(path: &Path) -> Result<RgbImage> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{}: cannot read image", path.display()))?;
    decode_rgb(&bytes).with_context(|| format!("{}: not a readable image", path.display()))
}

/// Decodes an image file's bytes (any supported format, told by its content as Pillow tells
/// it) to RGB8 with Pillow's rules; images over [`jpeg::MAX_PIXELS`] pixels are refused.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage> {
    if jpeg::is_jpeg(bytes) {
        return Ok(jpeg::decode_rgb(bytes)?);
    }
    let reader = || -> Result<ImageReader<Cursor<&[u8]>>> {
        let mut reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .context("cannot read the data")?;
        if reader.format().is_none() {
            bail!("unknown format (not JPEG, PNG, WebP, BMP, GIF or TIFF)");
        }
        let mut limits = Limits::default();
        // Up to 16-bit RGBA: 8 bytes a pixel.
        limits.max_alloc = Some(8 * jpeg::MAX_PIXELS);
        reader.limits(limits);
        Ok(reader)
    };
    let (width, height) = reader()?
        .into_dimensions()
        .context("cannot read the image size")?;
    if u64::from(width) * u64::from(height) > jpeg::MAX_PIXELS {
        bail!(
            "{width} x {height} pixels is over the limit of {} pixels (Pillow's \
             decompression-bomb limit)",
            jpeg::MAX_PIXELS
        );
    }
    let decoded = reader()?
        .decode()
        .context("corrupt or unsupported image data")?;
    Ok(to_rgb_like_pil(decoded))
}

/// Converts any decoded image to RGB8 with Pillow's conversion rules.
fn to_rgb_like_pil(image: DynamicImage) -> RgbImage {
    match image {
        // Pillow opens 16-bit grey as mode I;16 and clips it to 255 when converting.
        DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_) => {
            let grey = image.to_luma16();
            RgbImage::from_fn(grey.width(), grey.height(), |x, y| {
                let v = grey.get_pixel(x, y).0[0].min(255) as u8;
                image::Rgb([v, v, v])
            })
        }
        // Pillow reads 16-bit colour PNGs as 8-bit RGB(A) keeping the high byte.
        DynamicImage::ImageRgb16(_) | DynamicImage::ImageRgba16(_) => {
            let rgb = image.to_rgb16();
            RgbImage::from_fn(rgb.width(), rgb.height(), |x, y| {
                image::Rgb(rgb.get_pixel(x, y).0.map(|v| (v >> 8) as u8))
            })
        }
        other => other.to_rgb8(),
    }
}

/// Pads to a square of the longer side with `background`, the image centred as Shikra's
/// `expand2square` places it (offset `(side - size) / 2`, rounded down).
pub fn expand_to_square(image: &RgbImage, background: [u8; 3]) -> RgbImage {
    let (w, h) = image.dimensions();
    if w == h {
        return image.clone();
    }
    let side = w.max(h);
    let mut square = RgbImage::from_pixel(side, side, image::Rgb(background));
    let (left, top) = ((side - w) / 2, (side - h) / 2);
    image::imageops::replace(&mut square, image, i64::from(left), i64::from(top));
    square
}

/// Bit precision of Pillow's 8-bit resampling coefficients.
const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for a bicubic filter: for each
/// output index, the first input index and the fixed-point weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let weights: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) / filter_scale))
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    let scaled = w * f64::from(1u32 << PRECISION_BITS);
                    if w < 0.0 {
                        (scaled - 0.5) as i32
                    } else {
                        (scaled + 0.5) as i32
                    }
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes with `PIL.Image.resize(size, Image.BICUBIC)` semantics, bit for bit: a
/// horizontal then a vertical pass, each rounded to 8 bits.
pub fn resize_bicubic(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let mut current = image.clone();
    if width != image.width() {
        current = resample_pass(&current, width, true);
    }
    if height != image.height() {
        current = resample_pass(&current, height, false);
    }
    current
}

/// One of Pillow's 8-bit resampling passes, along x (`horizontal`) or y, to `size` pixels.
fn resample_pass(image: &RgbImage, size: u32, horizontal: bool) -> RgbImage {
    let (in_w, in_h) = image.dimensions();
    let (in_size, out_w, out_h) = if horizontal {
        (in_w, size, in_h)
    } else {
        (in_h, in_w, size)
    };
    let coeffs = coefficients(in_size as usize, size as usize);
    RgbImage::from_fn(out_w, out_h, |x, y| {
        let (start, weights) = &coeffs[if horizontal { x } else { y } as usize];
        let mut acc = [1i64 << (PRECISION_BITS - 1); 3];
        for (i, w) in weights.iter().enumerate() {
            let at = (start + i) as u32;
            let p = if horizontal {
                image.get_pixel(at, y)
            } else {
                image.get_pixel(x, at)
            }
            .0;
            for c in 0..3 {
                acc[c] += i64::from(p[c]) * i64::from(*w);
            }
        }
        image::Rgb(acc.map(clip8))
    })
}

/// The CLIP processor's geometry: resize the shortest side to `size` (the other side as
/// `int(size * long / short)`), then centre-crop `size` x `size`.
pub fn resize_and_crop(image: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let (new_w, new_h) = if w <= h {
        (size, (u64::from(size) * u64::from(h) / u64::from(w)) as u32)
    } else {
        ((u64::from(size) * u64::from(w) / u64::from(h)) as u32, size)
    };
    let resized = resize_bicubic(image, new_w, new_h);
    let (left, top) = ((new_w - size) / 2, (new_h - size) / 2);
    image::imageops::crop_imm(&resized, left, top, size, size).to_image()
}

/// Scales to [0, 1] and normalises with CLIP's mean and std: `[3, size, size]`, row-major.
pub fn normalize(image: &RgbImage) -> Vec<f32> {
    let (w, h) = image.dimensions();
    let plane = (w * h) as usize;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, pixel) in image.pixels().enumerate() {
        for c in 0..3 {
            let scaled = f32::from(pixel.0[c]) * (1.0 / 255.0);
            out[c * plane + i] = (scaled - CLIP_MEAN[c]) / CLIP_STD[c];
        }
    }
    out
}

/// `files` preprocessed into one batch `[files, 3, size, size]` on `device`.
pub fn pixel_batch<P: AsRef<Path>>(files: &[P], size: usize, device: &Device) -> Result<Tensor<4>> {
    let mut pixels = Vec::with_capacity(files.len() * 3 * size * size);
    for file in files {
        pixels.extend(preprocess_file(file.as_ref(), size as u32)?);
    }
    Ok(Tensor::from_data(
        TensorData::new(pixels, [files.len(), 3, size, size]),
        device,
    ))
}

/// The whole LCL preprocessing of one file: `[3, size, size]` pixel values.
pub fn preprocess_file(path: &Path, size: u32) -> Result<Vec<f32>> {
    Ok(preprocess_rgb(&open_rgb(path)?, size))
}

/// The whole LCL preprocessing of an image file's bytes (an upload): `[3, size, size]`.
pub fn preprocess_bytes(bytes: &[u8], size: u32) -> Result<Vec<f32>> {
    Ok(preprocess_rgb(&decode_rgb(bytes)?, size))
}

/// Pad to a white square, resize and crop to `size`, normalise: `[3, size, size]`.
fn preprocess_rgb(rgb: &RgbImage, size: u32) -> Vec<f32> {
    let square = expand_to_square(rgb, [255, 255, 255]);
    normalize(&resize_and_crop(&square, size))
}
