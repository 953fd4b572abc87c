//! JSON-lines files: one record per line; a malformed line is an error naming the file and
//! the line, never skipped.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reads every non-blank line of `path` as a `T`.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut records = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line_number = index + 1;
        let line =
            line.with_context(|| format!("{}:{line_number}: cannot read line", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line)
            .with_context(|| format!("{}:{line_number}: malformed record", path.display()))?;
        records.push(record);
    }
    Ok(records)
}

/// Writes `records` to `path`, one JSON object per line, through a temporary file renamed
/// into place (an interrupted write never leaves a half file).
pub fn write<T: Serialize>(path: &Path, records: &[T]) -> Result<()> {
    let partial = path.with_extension("jsonl.partial");
    {
        let file = std::fs::File::create(&partial)
            .with_context(|| format!("{}: cannot create", partial.display()))?;
        let mut out = BufWriter::new(file);
        for record in records {
            serde_json::to_writer(&mut out, record)?;
            out.write_all(b"\n")?;
        }
        out.flush()
            .with_context(|| format!("{}: cannot write", partial.display()))?;
    }
    std::fs::rename(&partial, path).with_context(|| format!("{}: cannot write", path.display()))
}
