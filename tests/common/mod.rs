//! Shared helpers of the integration tests: fixture paths, reference arrays, tolerances.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use lcl::backend::backend_name;
use lcl::npy::{self, NpyArray};

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A reference array from `tests/fixtures/ref/<name>.npy`.
pub fn reference(name: &str) -> NpyArray {
    npy::read(&fixture(&format!("ref/{name}.npy"))).expect("reference array")
}

/// A JSON fixture.
pub fn json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(rel)).expect("fixture")).expect("json")
}

/// The device of the backend the tests were built with.
pub fn device() -> Device {
    lcl::backend::device().expect("the test device (LCL_DEVICE)")
}

/// Largest allowed |difference| to the f32 reference, on every backend (measured: about
/// 2e-5 on flex and on wgpu over lavapipe).
pub fn f32_tolerance() -> f32 {
    1e-4
}

/// A tensor's values as f32.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float tensor")
}

/// Largest |a - b|; panics on length mismatch.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Asserts `actual` is within `tolerance` of `expected` and says by how much.
pub fn assert_close(what: &str, actual: &[f32], expected: &[f32], tolerance: f32) {
    let diff = max_abs_diff(actual, expected);
    assert!(
        diff <= tolerance,
        "{what}: max |diff| {diff:e} > {tolerance:e}"
    );
    eprintln!(
        "{what}: max |diff| {diff:e} (tolerance {tolerance:e}, backend {})",
        backend_name()
    );
}

/// Ids of a JSON array.
pub fn ids(value: &serde_json::Value) -> Vec<u32> {
    value
        .as_array()
        .expect("array of ids")
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect()
}

/// A JSON array of loss labels (-100 where unsupervised).
pub fn labels(value: &serde_json::Value) -> Vec<i64> {
    value
        .as_array()
        .expect("array of labels")
        .iter()
        .map(|v| v.as_i64().expect("label"))
        .collect()
}

/// A fresh, empty scratch folder for one test (under the system temp folder).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lcl-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("target folder");
    for entry in std::fs::read_dir(from).expect("source folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// The `lcl` binary, kept off the network: a repo id is looked up in an empty Hugging Face
/// cache only (`HF_HUB_OFFLINE`), whatever the machine's own cache holds.
pub fn lcl_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lcl"));
    let empty_cache =
        std::env::temp_dir().join(format!("lcl-test-{}-empty-hf-cache", std::process::id()));
    command
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_CACHE", empty_cache);
    command
}

/// Runs the `lcl` binary with `args` in the current folder.
pub fn run_lcl(args: &[&str]) -> std::process::Output {
    lcl_command().args(args).output().expect("lcl runs")
}

/// A finished command's stderr as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
