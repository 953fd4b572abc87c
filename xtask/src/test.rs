//! `cargo xtask test`: one test build holding several backends (flex, ndarray, wgpu), run once
//! on flex in full, then the transformers-parity tests again on ndarray and on wgpu (the same
//! binaries: Burn picks the device at run time, `LCL_DEVICE` says which), then the embedding
//! example on the tiny fixtures (the example binary of that same build: `cargo run -p
//! lcl-model` would build Burn a second time with lcl-model's features alone), then the client
//! checks of `lcl serve` with that build's `lcl` (`tests/clients/run.sh`: the openai Python
//! client and headless Chromium on the page).

use crate::{cargo, run};

/// The integration tests that run again on ndarray.
const PARITY_TESTS: [&str; 5] = [
    "model_parity",
    "train_parity",
    "cli",
    "checkpoint",
    "clip_features",
];

/// Those that run again on wgpu, where every test binary compiles its kernels anew (about a
/// minute each on lavapipe): `checkpoint` is left out, its file parsing is the host's and the
/// device side of loading is what `model_parity` does on wgpu.
const WGPU_PARITY_TESTS: [&str; 4] = ["model_parity", "train_parity", "cli", "clip_features"];

/// Runs the tests; `cpu_only` leaves wgpu out (no Vulkan driver needed).
pub fn test(cpu_only: bool) -> Result<(), String> {
    let features = if cpu_only {
        "lcl/ndarray"
    } else {
        "lcl/ndarray,lcl/wgpu"
    };
    let suite = |device: &str, only: &[&str]| {
        let mut command = cargo();
        command.args(["test", "--workspace", "--features", features]);
        for test in only {
            command.args(["--test", test]);
        }
        command.env("LCL_DEVICE", device);
        command
    };
    eprintln!("xtask: every test on flex");
    run(&mut suite("flex", &[]))?;
    eprintln!("xtask: the parity tests on ndarray");
    run(&mut suite("ndarray", &PARITY_TESTS))?;
    if !cpu_only {
        eprintln!("xtask: the parity tests on wgpu");
        let mut wgpu = suite("wgpu", &WGPU_PARITY_TESTS);
        // One test thread: a software Vulkan device runs one kernel at a time anyway.
        wgpu.args(["--", "--test-threads", "1"]);
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            // Mesa's Vulkan drivers complain on every device creation without one.
            let runtime = std::env::temp_dir().join("lcl-xdg-runtime");
            if std::fs::create_dir_all(&runtime).is_ok() {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700));
                wgpu.env("XDG_RUNTIME_DIR", runtime);
            }
        }
        run(&mut wgpu)?;
    }
    let listing = cargo()
        .args(["test", "--workspace", "--features", features, "--no-run"])
        .args(["--quiet", "--message-format=json"])
        .output()
        .map_err(|e| format!("cannot ask cargo for the test build's programs: {e}"))?;
    let messages = String::from_utf8_lossy(&listing.stdout);
    example(&messages)?;
    clients(&messages)
}

/// Runs `tests/clients/run.sh` (the openai client and headless Chromium against `lcl serve`)
/// with the test build's `lcl`, on flex.
fn clients(messages: &str) -> Result<(), String> {
    eprintln!("xtask: the client checks of lcl serve (tests/clients/run.sh)");
    let lcl = executable(messages, "bin", "lcl").ok_or("the test build made no `lcl` program")?;
    run(std::process::Command::new("bash")
        .args(["tests/clients/run.sh", &lcl, "--browser"])
        .env("LCL_DEVICE", "flex"))
}

/// Runs `model/examples/episode.rs` on the tiny fixtures, on flex, and checks its answer
/// against the transformers reference.
fn example(messages: &str) -> Result<(), String> {
    eprintln!("xtask: the embedding example (model/examples/episode.rs)");
    let executable = executable(messages, "example", "episode")
        .ok_or("the test build made no `episode` example (model/examples/episode.rs)")?;
    let fixtures = "tests/fixtures";
    let output = std::process::Command::new(&executable)
        .env("BURN_DEVICE", "flex")
        .args([
            format!("{fixtures}/tiny-lcl"),
            format!("{fixtures}/tiny-clip"),
            format!("{fixtures}/ref/episode.json"),
            format!("{fixtures}/ref/episode_pixel_values.npy"),
        ])
        .output()
        .map_err(|e| format!("cannot run the example: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the example failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let answer = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let reference = std::fs::read_to_string(format!("{fixtures}/ref/episode.json"))
        .map_err(|e| format!("{fixtures}/ref/episode.json: {e}"))?;
    let expected = greedy_ids(&reference).ok_or("no greedy_ids in ref/episode.json")?;
    if answer != expected {
        return Err(format!(
            "the example answered {answer}, transformers {expected}"
        ));
    }
    eprintln!("xtask: the example answered {answer}, as transformers does");
    Ok(())
}

/// The executable of target `name` of `kind` (`bin`, `example`) in cargo's JSON build
/// messages: the program itself, not its unit-test harness.
fn executable(messages: &str, kind: &str, name: &str) -> Option<String> {
    let line = messages.lines().find(|line| {
        line.contains(&format!("\"kind\":[\"{kind}\"]"))
            && line.contains(&format!("\"name\":\"{name}\""))
            && line.contains("\"test\":false")
            && !line.contains("\"executable\":null")
    })?;
    let start = line.find("\"executable\":\"")? + "\"executable\":\"".len();
    let end = start + line[start..].find('"')?;
    Some(line[start..end].to_string())
}

/// The `"greedy_ids": [...]` array of a reference episode, without spaces.
fn greedy_ids(json: &str) -> Option<String> {
    let start = json.find("\"greedy_ids\"")?;
    let open = start + json[start..].find('[')?;
    let close = open + json[open..].find(']')?;
    Some(
        json[open..=close]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_is_found_in_cargo_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"episode"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["example"],"crate_types":["bin"],"name":"episode"},"profile":{"test":true},"executable":"/t/debug/deps/episode-2e"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["example"],"crate_types":["bin"],"name":"episode"},"profile":{"test":false},"executable":"/t/debug/examples/episode-1f"}"#,
        );
        assert_eq!(
            super::executable(messages, "example", "episode").as_deref(),
            Some("/t/debug/examples/episode-1f")
        );
        assert_eq!(super::executable(messages, "example", "other"), None);
        assert_eq!(super::executable(messages, "bin", "episode"), None);
    }

    #[test]
    fn greedy_ids_are_read_from_a_reference_episode() {
        let json = "{\"input_ids\": [1, 2],\n \"greedy_ids\": [\n  10,\n  165\n ], \"x\": 1}";
        assert_eq!(super::greedy_ids(json).unwrap(), "[10,165]");
    }
}
