//! Reading and writing NumPy `.npy` files (little-endian `f4`, `u1`, `i8`; C order), for
//! reference fixtures and `--logits-out`.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// An array read from a `.npy` file, converted to f32.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Values in C order.
    pub data: Vec<f32>,
}

/// Writes `data` with `shape` as a float32 `.npy` file.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + data.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

/// Reads a `.npy` file of `<f4`, `|u1` or `<i8` values as f32.
pub fn read(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse(&bytes).with_context(|| format!("{}: not a supported .npy file", path.display()))
}

fn parse(bytes: &[u8]) -> Result<NpyArray> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("missing NumPy magic");
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => (
            u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize,
            12,
        ),
        v => bail!("unsupported version {v}"),
    };
    let header = std::str::from_utf8(
        bytes
            .get(start..start + header_len)
            .context("truncated header")?,
    )?;
    if header.contains("'fortran_order': True") {
        bail!("Fortran order is not supported");
    }
    let descr = field(header, "descr")?.trim_matches('\'').to_string();
    let shape_text = field(header, "shape")?;
    let shape: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let count: usize = shape.iter().product();
    let body = &bytes[start + header_len..];
    let data: Vec<f32> = match descr.as_str() {
        "<f4" => chunks::<4>(body, count)?.map(f32::from_le_bytes).collect(),
        "|u1" | "<u1" => body
            .get(..count)
            .context("truncated data")?
            .iter()
            .map(|&b| f32::from(b))
            .collect(),
        "<i8" => chunks::<8>(body, count)?
            .map(|b| i64::from_le_bytes(b) as f32)
            .collect(),
        other => bail!("dtype {other} is not supported"),
    };
    Ok(NpyArray { shape, data })
}

fn chunks<const N: usize>(body: &[u8], count: usize) -> Result<impl Iterator<Item = [u8; N]> + '_> {
    let body = body.get(..count * N).context("truncated data")?;
    Ok(body
        .chunks_exact(N)
        .map(|c| c.try_into().expect("chunk size")))
}

/// The value text of `'key': value` in a NumPy header dict.
fn field<'a>(header: &'a str, key: &str) -> Result<&'a str> {
    let at = header
        .find(&format!("'{key}':"))
        .with_context(|| format!("no {key} in header"))?;
    let rest = header[at + key.len() + 3..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else {
        rest.find(',')
    }
    .context("malformed header")?;
    Ok(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_round_trip_keeps_shape_and_values() {
        let dir = std::env::temp_dir().join(format!("lcl-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.npy");
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 3.0).collect();
        write_f32(&path, &[3, 4], &data).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((bytes.len() - 12 * 4) % 64, 0, "header padded to 64 bytes");
        let back = read(&path).unwrap();
        assert_eq!(back.shape, vec![3, 4]);
        assert_eq!(back.data, data);
        write_f32(&path, &[5], &data[..5]).unwrap();
        assert_eq!(read(&path).unwrap().shape, vec![5]);
    }
}
