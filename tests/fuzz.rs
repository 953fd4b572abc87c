//! Untrusted files never crash the program: seeded mutations of every kind of file the project
//! reads (checkpoint headers and pickles, Burn weight files, model configs, tokenizers, run
//! configs, JSON-lines suites and class files, conversations, images, .npy), plus hand-made
//! hostile headers (a length of 10^12 bytes, shapes whose size overflows). Each input must end
//! in a success or an error that names its file, never in a panic; a global allocator refuses
//! any single allocation over 1 GiB, so a parser that trusts a claimed size aborts the test.
//! Bounded: a fixed number of inputs per target, a few seconds in all (`LCL_FUZZ_SCALE=N`
//! multiplies them for a longer run).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use common::*;
use lcl_model::rng::Rng;

/// `LCL_FUZZ_SCALE=N` multiplies every input count (a longer local run; CI runs 1).
fn scale() -> usize {
    std::env::var("LCL_FUZZ_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The largest single allocation allowed in this test binary.
const MAX_ALLOCATION: usize = 1 << 30;

struct CappedAllocator;

// SAFETY: forwards to the system allocator; refusing (null) is allowed by GlobalAlloc.
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;

/// One way to break a file.
#[derive(Debug, Clone, Copy)]
enum Mutation {
    FlipBits,
    InterestingByte,
    InterestingWord,
    Truncate,
    DuplicateChunk,
    DeleteChunk,
    HugeNumber,
    Punctuation,
}

const MUTATIONS: [Mutation; 8] = [
    Mutation::FlipBits,
    Mutation::InterestingByte,
    Mutation::InterestingWord,
    Mutation::Truncate,
    Mutation::DuplicateChunk,
    Mutation::DeleteChunk,
    Mutation::HugeNumber,
    Mutation::Punctuation,
];

fn below(rng: &mut Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

/// A position, half of the time within the first or last `focus` bytes (headers, zip
/// directories), else anywhere.
fn position(rng: &mut Rng, len: usize, focus: usize) -> usize {
    if len == 0 {
        return 0;
    }
    match below(rng, 4) {
        0 => below(rng, focus.min(len)),
        1 => len - 1 - below(rng, focus.min(len)),
        _ => below(rng, len),
    }
}

fn mutate(bytes: &[u8], mutation: Mutation, rng: &mut Rng, focus: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let len = out.len();
    match mutation {
        Mutation::FlipBits => {
            for _ in 0..1 + below(rng, 8) {
                let at = position(rng, len, focus);
                if at < len {
                    out[at] ^= 1 << below(rng, 8);
                }
            }
        }
        Mutation::InterestingByte => {
            let at = position(rng, len, focus);
            if at < len {
                out[at] = [0x00, 0xFF, 0x7F, 0x80, 0x01][below(rng, 5)];
            }
        }
        Mutation::InterestingWord => {
            let at = position(rng, len.saturating_sub(8), focus);
            let word: u64 = [
                u64::MAX,
                1 << 40,
                1_000_000_000_000,
                i64::MAX as u64,
                1 << 31,
            ][below(rng, 5)];
            for (i, b) in word.to_le_bytes().iter().enumerate() {
                if at + i < len {
                    out[at + i] = *b;
                }
            }
        }
        Mutation::Truncate => out.truncate(position(rng, len, focus)),
        Mutation::DuplicateChunk => {
            let at = position(rng, len, focus);
            let end = (at + 1 + below(rng, 64)).min(len);
            let chunk = out[at.min(len)..end].to_vec();
            out.splice(at.min(len)..at.min(len), chunk);
        }
        Mutation::DeleteChunk => {
            let at = position(rng, len, focus);
            let end = (at + 1 + below(rng, 64)).min(len);
            out.drain(at.min(len)..end);
        }
        Mutation::HugeNumber => {
            // Replace a run of digits with a number no size or count should be.
            let digits: Vec<usize> = (0..len).filter(|&i| out[i].is_ascii_digit()).collect();
            if !digits.is_empty() {
                let at = digits[below(rng, digits.len())];
                let end = (at..len).find(|&i| !out[i].is_ascii_digit()).unwrap_or(len);
                let huge: &[u8] = [
                    b"99999999999999999999".as_slice(),
                    b"1000000000000",
                    b"-1",
                    b"1e308",
                    b"4294967296",
                    b"0",
                ][below(rng, 6)];
                out.splice(at..end, huge.iter().copied());
            }
        }
        Mutation::Punctuation => {
            let at = position(rng, len, focus);
            let c = [b'"', b'{', b'}', b'[', b']', b',', b'\n', b'=', b'\\', 0][below(rng, 10)];
            out.insert(at.min(len), c);
        }
    }
    out
}

/// A file kind and how the project reads it.
struct Target {
    name: &'static str,
    /// The fixture the mutants start from.
    seed: PathBuf,
    /// Where the mutant is written (its folder is prepared by `setup`).
    file_name: &'static str,
    /// Bytes near each end where structure lives.
    focus: usize,
    inputs: usize,
    /// Copies the rest of what the parser reads into the mutant's folder.
    setup: fn(&Path),
    /// Reads the mutant at this path the way the project does.
    read: fn(&Path) -> anyhow::Result<()>,
    /// Whether an error must name the mutated file (false where the error names its folder).
    names_file: bool,
}

fn no_setup(_: &Path) {}

fn copy_dir_except(from: &Path, to: &Path, except: &str) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != except && entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn load_model_folder(dir: &Path) -> anyhow::Result<()> {
    let tokenizer = lcl::tokenizer::LclTokenizer::from_dir(dir)?;
    lcl::model_folder::load_model(
        dir,
        &fixture("tiny-clip"),
        &tokenizer,
        &device(),
        lcl::model_folder::Precision::F32,
    )?;
    Ok(())
}

fn read_tokenizer_folder(path: &Path) -> anyhow::Result<()> {
    lcl::tokenizer::LclTokenizer::from_dir(path.parent().unwrap())?;
    Ok(())
}

fn read_weight_file(path: &Path) -> anyhow::Result<()> {
    let files = lcl_model::WeightFiles::open(path)?;
    let names: Vec<String> = files.names().map(str::to_string).collect();
    for name in names {
        files.get(&name).unwrap().read()?;
    }
    Ok(())
}

/// Every target; the suite and conversation seeds are written into `dir` (no fixture holds
/// them alone).
fn targets(dir: &Path) -> Vec<Target> {
    let (suite, conversations) = text_seeds(dir);
    vec![
        Target {
            name: "safetensors",
            seed: fixture("tiny-lcl-st/model.safetensors"),
            file_name: "model.safetensors",
            focus: 4096,
            inputs: 300,
            setup: no_setup,
            read: read_weight_file,
            names_file: true,
        },
        Target {
            name: "torch pickle (zip)",
            seed: fixture("tiny-lcl-bf16/pytorch_model.bin"),
            file_name: "pytorch_model.bin",
            focus: 4096,
            inputs: 200,
            setup: no_setup,
            read: read_weight_file,
            names_file: true,
        },
        Target {
            name: "CLIP folder weights (whole load)",
            seed: fixture("tiny-clip/pytorch_model.bin"),
            file_name: "pytorch_model.bin",
            focus: 4096,
            inputs: 60,
            setup: |dir| copy_dir_except(&fixture("tiny-clip"), dir, "pytorch_model.bin"),
            read: |path| {
                let dir = path.parent().unwrap();
                let tokenizer = lcl::tokenizer::LclTokenizer::from_dir(&fixture("tiny-lcl"))?;
                lcl::model_folder::load_model(
                    &fixture("tiny-lcl"),
                    dir,
                    &tokenizer,
                    &device(),
                    lcl::model_folder::Precision::F32,
                )?;
                Ok(())
            },
            names_file: true,
        },
        Target {
            name: "model config.json",
            seed: fixture("tiny-lcl-st/config.json"),
            file_name: "config.json",
            focus: 1024,
            inputs: 150,
            setup: |dir| {
                copy_dir_except(&fixture("tiny-lcl-st"), dir, "config.json");
                for file in ["tokenizer.model", "added_tokens.json"] {
                    std::fs::copy(fixture(&format!("tiny-lcl/{file}")), dir.join(file)).unwrap();
                }
            },
            read: |path| load_model_folder(path.parent().unwrap()),
            names_file: true,
        },
        Target {
            name: "Burn weights (.bpk)",
            seed: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("checkpoints/mini/vanilla/model.bpk"),
            file_name: "model.bpk",
            focus: 8192,
            inputs: 80,
            setup: |dir| {
                copy_dir_except(
                    &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("checkpoints/mini/vanilla"),
                    dir,
                    "model.bpk",
                )
            },
            read: |path| {
                let dir = path.parent().unwrap();
                let tokenizer = lcl::tokenizer::LclTokenizer::from_dir(dir)?;
                let clip = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("checkpoints/mini/clip");
                lcl::model_folder::load_model(
                    dir,
                    &clip,
                    &tokenizer,
                    &device(),
                    lcl::model_folder::Precision::F32,
                )?;
                Ok(())
            },
            names_file: true,
        },
        Target {
            name: "tokenizer.model (SentencePiece protobuf)",
            seed: fixture("tiny-lcl/tokenizer.model"),
            file_name: "tokenizer.model",
            focus: 512,
            inputs: 300,
            setup: |dir| {
                std::fs::copy(
                    fixture("tiny-lcl/added_tokens.json"),
                    dir.join("added_tokens.json"),
                )
                .unwrap();
            },
            read: read_tokenizer_folder,
            names_file: true,
        },
        Target {
            name: "added_tokens.json",
            seed: fixture("tiny-lcl/added_tokens.json"),
            file_name: "added_tokens.json",
            focus: 64,
            inputs: 150,
            setup: |dir| {
                std::fs::copy(
                    fixture("tiny-lcl/tokenizer.model"),
                    dir.join("tokenizer.model"),
                )
                .unwrap();
            },
            read: read_tokenizer_folder,
            names_file: true,
        },
        Target {
            name: "run config (TOML)",
            seed: fixture("tiny-train.toml"),
            file_name: "run.toml",
            focus: 1024,
            inputs: 300,
            setup: no_setup,
            read: |path| {
                lcl::config::RunConfig::from_file(path)?;
                Ok(())
            },
            names_file: true,
        },
        Target {
            name: "per-class file (JSON lines)",
            seed: fixture("folder-classes.jsonl"),
            file_name: "classes.jsonl",
            focus: 1024,
            inputs: 300,
            setup: no_setup,
            read: |path| {
                lcl::data::class_file::read(path)?;
                Ok(())
            },
            names_file: true,
        },
        Target {
            name: "image (JPEG)",
            seed: fixture("images/jpeg/prog420.jpg"),
            file_name: "image.jpg",
            focus: 1024,
            inputs: 300,
            setup: no_setup,
            read: |path| {
                lcl::image::open_rgb(path)?;
                Ok(())
            },
            names_file: true,
        },
        Target {
            name: "image (PNG)",
            seed: fixture("images/c.png"),
            file_name: "image.png",
            focus: 256,
            inputs: 200,
            setup: no_setup,
            read: |path| {
                lcl::image::open_rgb(path)?;
                Ok(())
            },
            names_file: true,
        },
        Target {
            name: "image (WebP)",
            seed: fixture("images/f.webp"),
            file_name: "image.webp",
            focus: 256,
            inputs: 200,
            setup: no_setup,
            read: |path| {
                lcl::image::open_rgb(path)?;
                Ok(())
            },
            names_file: true,
        },
        Target {
            name: "ISEKAI suite (JSON lines)",
            seed: suite,
            file_name: "suite.jsonl",
            focus: 256,
            inputs: 300,
            setup: no_setup,
            read: |path| {
                lcl::eval::suite::Suite::load(path.to_str().unwrap(), None, Some(&fixture("")))?;
                Ok(())
            },
            names_file: true,
        },
        Target {
            name: "conversations (LLaVA JSON)",
            seed: conversations,
            file_name: "conv.json",
            focus: 256,
            inputs: 300,
            setup: no_setup,
            read: |path| {
                lcl::data::conversation::read(path)?;
                Ok(())
            },
            names_file: true,
        },
        Target {
            name: ".npy array",
            seed: fixture("ref/decoded_a.npy"),
            file_name: "array.npy",
            focus: 128,
            inputs: 200,
            setup: no_setup,
            read: |path| {
                lcl::npy::read(path)?;
                Ok(())
            },
            names_file: true,
        },
    ]
}

/// A torch checkpoint (a stored zip) whose `data.pkl` is `pickle`, the rest as in `original`:
/// mutations of the pickle itself, past the zip's checksums.
fn with_pickle(original: &[u8], pickle: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(original)).unwrap();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        writer.start_file(name.as_str(), stored).unwrap();
        let bytes = if name.ends_with("data.pkl") {
            pickle
        } else {
            &bytes
        };
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn pickle_of(original: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(original)).unwrap();
    let name = archive
        .file_names()
        .map(|n| n.unwrap().to_string())
        .find(|n| n.ends_with("data.pkl"))
        .unwrap();
    let mut bytes = Vec::new();
    archive
        .by_name(&name)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

#[test]
fn mutated_torch_pickles_end_in_a_clear_error_or_a_success_never_a_panic() {
    let dir = scratch("fuzz-pickle");
    let failures = Mutex::new(Vec::new());
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng::new(42);
    let original = std::fs::read(fixture("tiny-lcl-bf16/pytorch_model.bin")).unwrap();
    let pickle = pickle_of(&original);
    let path = dir.join("pytorch_model.bin");
    std::fs::write(&path, with_pickle(&original, &pickle)).unwrap();
    assert!(check(
        "pickle",
        "none",
        &path,
        true,
        read_weight_file,
        &failures
    ));
    let inputs = 400 * scale();
    let mut read = 0;
    for i in 0..inputs {
        let mutation = MUTATIONS[i % MUTATIONS.len()];
        let mutant = mutate(&pickle, mutation, &mut rng, pickle.len());
        std::fs::write(&path, with_pickle(&original, &mutant)).unwrap();
        read += usize::from(check(
            "torch pickle",
            &format!("{mutation:?} #{i}"),
            &path,
            true,
            read_weight_file,
            &failures,
        ));
    }
    let _ = std::panic::take_hook();
    eprintln!(
        "torch pickle: {inputs} inputs, {read} read, {} refused",
        inputs - read
    );
    assert_no_failures(failures, inputs);
}

/// A suite file and a conversation file to start mutating from.
fn text_seeds(dir: &Path) -> (PathBuf, PathBuf) {
    let suite = dir.join("suite-seed.jsonl");
    let line = serde_json::json!({
        "image_name": "images/a.png",
        "positive_list": ["images/a.png", "images/c.png"],
        "negative_list": ["images/b.jpg", "images/d.png"],
        "positive_promt": "cactihog",
        "negative_promt": "hedgehog",
        "label_name": "cactihog",
    });
    std::fs::write(&suite, format!("{line}\n{line}\n")).unwrap();
    let conversations = dir.join("conversations-seed.json");
    let record = serde_json::json!([{
        "id": "1",
        "image": "a.png",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is it?"},
            {"from": "gpt", "value": "A cactihog."}
        ]
    }]);
    std::fs::write(&conversations, record.to_string()).unwrap();
    (suite, conversations)
}

/// What went wrong with one input.
#[derive(Debug)]
struct Failure {
    target: String,
    mutation: String,
    problem: String,
}

/// Runs `read` on `path`, turning a panic into a failure and checking the error names the
/// file.
fn check(
    target: &str,
    mutation: &str,
    path: &Path,
    names_file: bool,
    read: fn(&Path) -> anyhow::Result<()>,
    failures: &Mutex<Vec<Failure>>,
) -> bool {
    let fail = |problem: String| {
        failures.lock().unwrap().push(Failure {
            target: target.to_string(),
            mutation: mutation.to_string(),
            problem,
        })
    };
    match catch_unwind(AssertUnwindSafe(|| read(path))) {
        Ok(Ok(())) => true,
        Ok(Err(err)) => {
            let message = format!("{err:#}");
            let folder = path.parent().unwrap().display().to_string();
            if names_file
                && !message.contains(&path.display().to_string())
                && !message.contains(&folder)
            {
                fail(format!("the error does not name the file: {message}"));
            }
            false
        }
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            fail(format!("panicked: {text}"));
            false
        }
    }
}

/// Mutates `target`'s seed `inputs x scale` times; returns (inputs, read without error).
fn fuzz(
    target: &Target,
    dir: &Path,
    rng: &mut Rng,
    failures: &Mutex<Vec<Failure>>,
) -> (usize, usize) {
    let folder = dir.join(
        target
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
    );
    std::fs::create_dir_all(&folder).unwrap();
    (target.setup)(&folder);
    let path = folder.join(target.file_name);
    let original = std::fs::read(&target.seed).unwrap();
    std::fs::write(&path, &original).unwrap();
    assert!(
        check(
            target.name,
            "none",
            &path,
            target.names_file,
            target.read,
            failures
        ),
        "{}: the unmutated seed must read",
        target.name
    );
    let inputs = target.inputs * scale();
    let mut read = 0;
    for i in 0..inputs {
        let mutation = MUTATIONS[i % MUTATIONS.len()];
        std::fs::write(&path, mutate(&original, mutation, rng, target.focus)).unwrap();
        read += usize::from(check(
            target.name,
            &format!("{mutation:?} #{i}"),
            &path,
            target.names_file,
            target.read,
            failures,
        ));
    }
    (inputs, read)
}

/// Fails with the first failures, if any.
fn assert_no_failures(failures: Mutex<Vec<Failure>>, tried: usize) {
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {tried} inputs went wrong:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .map(|f| format!("{} ({}): {}", f.target, f.mutation, f.problem))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn mutated_files_end_in_a_clear_error_or_a_success_never_a_panic() {
    let dir = scratch("fuzz");
    let failures = Mutex::new(Vec::new());
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng::new(20_261_202);
    let (mut tried, mut read) = (0, 0);
    for target in targets(&dir) {
        let (inputs, ok) = fuzz(&target, &dir, &mut rng, &failures);
        eprintln!(
            "{}: {inputs} inputs, {ok} read, {} refused",
            target.name,
            inputs - ok
        );
        tried += inputs;
        read += ok;
    }
    let _ = std::panic::take_hook();
    eprintln!("{tried} mutated inputs in all, {read} read");
    assert_no_failures(failures, tried);
}

/// Headers that claim more than any file holds.
#[test]
fn hostile_safetensors_headers_are_refused_without_allocating_what_they_claim() {
    let dir = scratch("fuzz-headers");
    let write = |name: &str, header: &str, extra: usize| {
        let path = dir.join(name);
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, extra));
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let cases = [
        (
            "overflowing-shape.safetensors",
            r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,16]}}"#,
        ),
        (
            "huge-offsets.safetensors",
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,18446744073709551615]}}"#,
        ),
        (
            "claims-a-terabyte.safetensors",
            r#"{"w":{"dtype":"U8","shape":[1000000000000],"data_offsets":[0,1000000000000]}}"#,
        ),
    ];
    for (name, header) in cases {
        let path = write(name, header, 16);
        let err = catch_unwind(|| lcl_model::WeightFiles::open(&path).map(|_| ()))
            .unwrap_or_else(|_| panic!("{name}: panicked"))
            .expect_err(name)
            .to_string();
        assert!(err.contains(name), "{err}");
    }
    // Model sizes no model has (one would allocate a RoPE table of 5 * 10^11 floats, the
    // other divide by zero heads).
    for (field, value, expected) in [
        (
            "hidden_size",
            "1000000000000",
            "hidden_size is 1000000000000, not between 1 and",
        ),
        (
            "num_attention_heads",
            "0",
            "num_attention_heads is 0, not between 1 and",
        ),
    ] {
        let text = std::fs::read_to_string(fixture("tiny-lcl/config.json")).unwrap();
        let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
        config[field] = value.parse::<serde_json::Value>().unwrap();
        let path = dir.join(format!("config-{field}.json"));
        std::fs::write(&path, config.to_string()).unwrap();
        let err = lcl_model::LlamaConfig::from_file(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected) && err.contains("config-"), "{err}");
    }
    // A length field of 10^12 bytes.
    let path = dir.join("huge-header.safetensors");
    let mut bytes = 1_000_000_000_000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&path, bytes).unwrap();
    let err = lcl_model::WeightFiles::open(&path)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("header length"), "{err}");
}
