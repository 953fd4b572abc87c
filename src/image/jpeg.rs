//! JPEG decoding with libjpeg-turbo's own decoder (the one Pillow links), set up as Pillow
//! sets it up, so that decoded pixels are identical to `Image.open(p).convert('RGB')`:
//! ISLOW IDCT and fancy upsampling (libjpeg's defaults), grey replicated, CMYK (and YCCK,
//! which libjpeg turns into CMYK) read as Adobe-inverted and converted with Pillow's formula;
//! the EXIF orientation is ignored, as the original pipeline ignores it.
//!
//! The decoder is mozjpeg's copy of libjpeg-turbo, built from source by `mozjpeg-sys` with the
//! C compiler alone (no cmake or nasm: the C code paths, which libjpeg-turbo keeps bit-exact
//! with its SIMD ones); `jpeg.c` beside this file drives it with setjmp error handling.

use std::ffi::{CStr, c_char, c_int, c_uint, c_ulong};

use image::RgbImage;
// Linked for the libjpeg symbols `jpeg.c` calls.
use mozjpeg_sys as _;

/// Largest image decoded, in pixels: Pillow's decompression-bomb limit (twice
/// `Image.MAX_IMAGE_PIXELS`), past which Pillow refuses to open a file too.
pub const MAX_PIXELS: u64 = 2 * 89_478_485;

/// Most working memory libjpeg may take for one image (progressive files keep every
/// coefficient of the image).
const MAX_DECODER_MEMORY: u64 = 2 << 30;

/// `JMSG_LENGTH_MAX` of libjpeg.
const MESSAGE_LENGTH: usize = 200;

#[repr(C)]
struct DecodedImage {
    width: c_uint,
    height: c_uint,
    components: c_uint,
    pixels: *mut u8,
    message: [c_char; MESSAGE_LENGTH],
}

unsafe extern "C" {
    fn lcl_jpeg_decode(
        data: *const u8,
        size: c_ulong,
        max_pixels: c_ulong,
        max_memory: c_ulong,
        out: *mut DecodedImage,
    ) -> c_int;
    fn lcl_jpeg_free(image: *mut DecodedImage);
}

/// Why a JPEG could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JpegError {
    /// libjpeg's own message (corrupt data, unsupported coding, ...).
    Corrupt(String),
    /// The data ends inside the image (Pillow: "image file is truncated").
    Truncated,
    /// More pixels than [`MAX_PIXELS`].
    TooLarge { width: u32, height: u32 },
    /// A colour model Pillow does not open either.
    Unsupported(String),
}

impl std::fmt::Display for JpegError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JpegError::Corrupt(message) => write!(f, "corrupt JPEG: {message}"),
            JpegError::Truncated => f.write_str("truncated JPEG: the data ends inside the image"),
            JpegError::TooLarge { width, height } => write!(
                f,
                "JPEG of {width} x {height} pixels is over the limit of {MAX_PIXELS} pixels \
                 (Pillow's decompression-bomb limit)"
            ),
            JpegError::Unsupported(what) => write!(f, "unsupported JPEG: {what}"),
        }
    }
}

impl std::error::Error for JpegError {}

/// Whether `bytes` start like a JPEG stream (the SOI marker and the next marker's 0xFF), as
/// Pillow's format detection reads it.
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Decodes a JPEG file's bytes to RGB exactly as Pillow's `convert('RGB')` gives them.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, JpegError> {
    let mut image = DecodedImage {
        width: 0,
        height: 0,
        components: 0,
        pixels: std::ptr::null_mut(),
        message: [0; MESSAGE_LENGTH],
    };
    // SAFETY: `bytes` outlives the call; `image` is a valid out-parameter the C side fills.
    let status = unsafe {
        lcl_jpeg_decode(
            bytes.as_ptr(),
            bytes.len() as c_ulong,
            MAX_PIXELS as c_ulong,
            MAX_DECODER_MEMORY as c_ulong,
            &mut image,
        )
    };
    let message = || {
        // SAFETY: the C side writes a NUL-terminated message (or leaves zeros).
        unsafe { CStr::from_ptr(image.message.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    match status {
        0 => {}
        2 => return Err(JpegError::Truncated),
        3 => {
            return Err(JpegError::TooLarge {
                width: image.width,
                height: image.height,
            });
        }
        4 => return Err(JpegError::Unsupported(message())),
        _ => return Err(JpegError::Corrupt(message())),
    }
    let (width, height, components) = (image.width, image.height, image.components as usize);
    let len = width as usize * height as usize * components;
    // SAFETY: on success `pixels` holds `len` bytes allocated by the C side, freed below.
    let raw = unsafe { std::slice::from_raw_parts(image.pixels, len) }.to_vec();
    // SAFETY: `image` came from a successful decode and is freed once.
    unsafe { lcl_jpeg_free(&mut image) };
    let rgb = match components {
        1 => raw.iter().flat_map(|&v| [v, v, v]).collect(),
        3 => raw,
        4 => raw.chunks_exact(4).flat_map(adobe_cmyk_to_rgb).collect(),
        n => return Err(JpegError::Unsupported(format!("{n} output components"))),
    };
    Ok(RgbImage::from_raw(width, height, rgb).expect("the buffer has width x height pixels"))
}

/// One pixel of an Adobe CMYK JPEG (stored inverted: Pillow's rawmode `CMYK;I`) to RGB with
/// Pillow's `cmyk2rgb`: `nk - c * nk / 255` with `nk = 255 - k`, in its fixed-point rounding.
fn adobe_cmyk_to_rgb(stored: &[u8]) -> [u8; 3] {
    let [c, m, y, k] = [0, 1, 2, 3].map(|i| 255 - i32::from(stored[i]));
    let nk = 255 - k;
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    [c, m, y].map(|v| (nk - muldiv255(v, nk)).clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adobe_cmyk_follows_pillows_formula() {
        // Stored inverted: 255 means no ink.
        assert_eq!(adobe_cmyk_to_rgb(&[255, 255, 255, 255]), [255, 255, 255]);
        assert_eq!(adobe_cmyk_to_rgb(&[0, 0, 0, 255]), [0, 0, 0]);
        assert_eq!(adobe_cmyk_to_rgb(&[255, 255, 255, 0]), [0, 0, 0]);
        // c = 128, k = 40: nk = 215, 215 - 128 * 215 / 255 = 107.08 -> 107
        assert_eq!(adobe_cmyk_to_rgb(&[127, 255, 255, 215])[0], 107);
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_crashes() {
        assert!(matches!(
            decode_rgb(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]),
            Err(JpegError::Corrupt(_) | JpegError::Truncated)
        ));
        assert!(decode_rgb(b"not a jpeg at all").is_err());
    }
}
