//! SentencePiece BPE models (`tokenizer.model`, as LLaMA ships it), read and run in Rust with
//! the same result as the `sentencepiece` library: score-ordered pair merges over characters,
//! then byte fallback for characters outside the vocabulary.

use std::collections::{BinaryHeap, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Piece types of `sentencepiece_model.proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

/// A SentencePiece BPE model.
#[derive(Debug, Clone)]
pub struct SentencePiece {
    pieces: Vec<(String, f32, PieceType)>,
    /// Pieces that can be merge results (normal, user-defined, unused), by text.
    mergeable: HashMap<String, u32>,
    /// Every piece by text.
    by_text: HashMap<String, u32>,
    byte_ids: [Option<u32>; 256],
    unk_id: u32,
    byte_fallback: bool,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
}

impl SentencePiece {
    /// Reads a serialised `ModelProto` (a `tokenizer.model` file).
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        Self::from_bytes(&bytes)
            .with_context(|| format!("{}: not a SentencePiece model", path.display()))
    }

    /// Parses a serialised `ModelProto`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut pieces = Vec::new();
        let mut model_type = 1;
        let mut byte_fallback = false;
        let mut add_dummy_prefix = true;
        let mut remove_extra_whitespaces = true;
        let mut normalizer_name = String::new();
        let mut charsmap_len = 0;
        for field in Fields::new(bytes) {
            let (number, value) = field?;
            match (number, value) {
                (1, Value::Bytes(piece)) => pieces.push(parse_piece(piece)?),
                (2, Value::Bytes(trainer)) => {
                    for field in Fields::new(trainer) {
                        match field? {
                            (3, Value::Varint(v)) => model_type = v,
                            (35, Value::Varint(v)) => byte_fallback = v != 0,
                            _ => {}
                        }
                    }
                }
                (3, Value::Bytes(normalizer)) => {
                    for field in Fields::new(normalizer) {
                        match field? {
                            (1, Value::Bytes(name)) => {
                                normalizer_name = String::from_utf8_lossy(name).into_owned()
                            }
                            (2, Value::Bytes(map)) => charsmap_len = map.len(),
                            (3, Value::Varint(v)) => add_dummy_prefix = v != 0,
                            (4, Value::Varint(v)) => remove_extra_whitespaces = v != 0,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if model_type != 2 {
            bail!(
                "model type {model_type} is not BPE (2); only BPE models such as LLaMA's are supported"
            );
        }
        if charsmap_len > 0 {
            bail!(
                "normalizer {normalizer_name:?} uses a precompiled character map, which is not supported (LLaMA uses identity)"
            );
        }
        if pieces.is_empty() {
            bail!("the model has no pieces");
        }
        let mut mergeable = HashMap::new();
        let mut by_text = HashMap::new();
        let mut byte_ids = [None; 256];
        let mut unk_id = None;
        for (id, (text, _, kind)) in pieces.iter().enumerate() {
            let id = id as u32;
            by_text.entry(text.clone()).or_insert(id);
            match kind {
                PieceType::Normal | PieceType::UserDefined | PieceType::Unused => {
                    mergeable.entry(text.clone()).or_insert(id);
                }
                PieceType::Unknown => unk_id = unk_id.or(Some(id)),
                PieceType::Byte => {
                    if let Some(byte) = parse_byte_piece(text) {
                        byte_ids[byte as usize] = Some(id);
                    }
                }
                PieceType::Control => {}
            }
        }
        Ok(Self {
            pieces,
            mergeable,
            by_text,
            byte_ids,
            unk_id: unk_id.context("the model has no unknown piece")?,
            byte_fallback,
            add_dummy_prefix,
            remove_extra_whitespaces,
        })
    }

    /// Number of pieces.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// Id of a piece by its text (e.g. `<s>`).
    pub fn piece_id(&self, piece: &str) -> Option<u32> {
        self.by_text.get(piece).copied()
    }

    /// Text of piece `id`.
    pub fn piece(&self, id: u32) -> Option<&str> {
        self.pieces
            .get(id as usize)
            .map(|(text, _, _)| text.as_str())
    }

    /// Encodes one chunk of text as `sentencepiece.encode` does (dummy prefix included).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let normalized = self.normalize(text);
        if normalized.is_empty() {
            return Vec::new();
        }
        let mut symbols: Vec<Symbol> = Vec::new();
        for (start, ch) in normalized.char_indices() {
            let index = symbols.len();
            symbols.push(Symbol {
                start,
                len: ch.len_utf8(),
                prev: index.checked_sub(1),
                next: None,
            });
            if index > 0 {
                symbols[index - 1].next = Some(index);
            }
        }
        let mut agenda = BinaryHeap::new();
        for left in 0..symbols.len().saturating_sub(1) {
            self.push_pair(&normalized, &symbols, left, left + 1, &mut agenda);
        }
        while let Some(pair) = agenda.pop() {
            let (l, r) = (pair.left, pair.right);
            if symbols[l].len == 0
                || symbols[r].len == 0
                || symbols[l].len + symbols[r].len != pair.len
            {
                continue;
            }
            symbols[l].len += symbols[r].len;
            symbols[r].len = 0;
            symbols[l].next = symbols[r].next;
            if let Some(next) = symbols[r].next {
                symbols[next].prev = Some(l);
            }
            if let Some(prev) = symbols[l].prev {
                self.push_pair(&normalized, &symbols, prev, l, &mut agenda);
            }
            if let Some(next) = symbols[l].next {
                self.push_pair(&normalized, &symbols, l, next, &mut agenda);
            }
        }
        let mut ids = Vec::new();
        let mut cursor = Some(0);
        while let Some(index) = cursor {
            let symbol = &symbols[index];
            let text = &normalized[symbol.start..symbol.start + symbol.len];
            match self.mergeable.get(text) {
                Some(&id) => ids.push(id),
                None if self.byte_fallback => ids.extend(
                    text.bytes()
                        .map(|b| self.byte_ids[b as usize].unwrap_or(self.unk_id)),
                ),
                None => ids.push(self.unk_id),
            }
            cursor = symbol.next;
        }
        ids
    }

    fn push_pair(
        &self,
        text: &str,
        symbols: &[Symbol],
        left: usize,
        right: usize,
        agenda: &mut BinaryHeap<Pair>,
    ) {
        let start = symbols[left].start;
        let len = symbols[left].len + symbols[right].len;
        if let Some(&id) = self.mergeable.get(&text[start..start + len]) {
            agenda.push(Pair {
                score: self.pieces[id as usize].1,
                left,
                right,
                len,
            });
        }
    }

    fn normalize(&self, text: &str) -> String {
        let text = if self.remove_extra_whitespaces {
            text.split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            text.to_string()
        };
        if text.is_empty() {
            return text;
        }
        let escaped = text.replace(' ', "\u{2581}");
        if self.add_dummy_prefix {
            format!("\u{2581}{escaped}")
        } else {
            escaped
        }
    }

    /// Decodes pieces as `sentencepiece.decode` does: `▁` becomes a space, byte pieces are
    /// joined into UTF-8, and the dummy prefix's space is dropped at the start.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            let Some((text, _, kind)) = self.pieces.get(id as usize) else {
                continue;
            };
            match kind {
                PieceType::Byte => bytes.extend(parse_byte_piece(text)),
                PieceType::Control => {}
                PieceType::Unknown => bytes.extend_from_slice(" \u{2047} ".as_bytes()),
                _ => bytes.extend_from_slice(text.replace('\u{2581}', " ").as_bytes()),
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        match (self.add_dummy_prefix, text.strip_prefix(' ')) {
            (true, Some(rest)) => rest.to_string(),
            _ => text,
        }
    }
}

#[derive(Debug, Clone)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge; the heap pops the highest score, then the leftmost.
#[derive(Debug)]
struct Pair {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Pair {}
impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pair {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

fn parse_byte_piece(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

fn parse_piece(bytes: &[u8]) -> Result<(String, f32, PieceType)> {
    let mut text = String::new();
    let mut score = 0.0;
    let mut kind = PieceType::Normal;
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Bytes(t)) => {
                text = String::from_utf8(t.to_vec()).context("piece is not UTF-8")?
            }
            (2, Value::Fixed32(bits)) => score = f32::from_bits(bits),
            (3, Value::Varint(t)) => {
                kind = match t {
                    1 => PieceType::Normal,
                    2 => PieceType::Unknown,
                    3 => PieceType::Control,
                    4 => PieceType::UserDefined,
                    5 => PieceType::Unused,
                    6 => PieceType::Byte,
                    other => bail!("unknown piece type {other}"),
                }
            }
            _ => {}
        }
    }
    Ok((text, score, kind))
}

/// One protobuf field value.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Iterates over the fields of a protobuf message.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at).context("truncated varint")?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        bail!("varint too long")
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .context("truncated field")?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn field(&mut self) -> Result<(u64, Value<'a>)> {
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = self.varint()? as usize;
                Value::Bytes(self.take(len)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            )),
            other => bail!("unsupported protobuf wire type {other}"),
        };
        Ok((key >> 3, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.at = self.bytes.len();
        }
        Some(field)
    }
}
