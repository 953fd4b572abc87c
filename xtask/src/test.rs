//! `cargo xtask test`: one test build holding several backends (flex, ndarray, wgpu), run once
//! on flex in full, then the transformers-parity tests again on ndarray and on wgpu (the same
//! binaries: Burn picks the device at run time, `LCL_DEVICE` says which), then the embedding
//! example on the tiny fixtures.

use crate::{cargo, run};

/// The integration tests that run again on every other backend.
const PARITY_TESTS: [&str; 5] = [
    "model_parity",
    "train_parity",
    "cli",
    "checkpoint",
    "clip_features",
];

/// Runs the tests; `cpu_only` leaves wgpu out (no Vulkan driver needed).
pub fn test(cpu_only: bool) -> Result<(), String> {
    let features = if cpu_only {
        "lcl/ndarray"
    } else {
        "lcl/ndarray,lcl/wgpu"
    };
    let suite = |device: &str, parity_only: bool| {
        let mut command = cargo();
        command.args(["test", "--workspace", "--features", features]);
        if parity_only {
            for test in PARITY_TESTS {
                command.args(["--test", test]);
            }
        }
        command.env("LCL_DEVICE", device);
        command
    };
    eprintln!("xtask: every test on flex");
    run(&mut suite("flex", false))?;
    eprintln!("xtask: the parity tests on ndarray");
    run(&mut suite("ndarray", true))?;
    if !cpu_only {
        eprintln!("xtask: the parity tests on wgpu");
        let mut wgpu = suite("wgpu", true);
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
    example()
}

/// Runs `model/examples/episode.rs` on the tiny fixtures and checks its answer against the
/// transformers reference.
fn example() -> Result<(), String> {
    eprintln!("xtask: the embedding example (model/examples/episode.rs)");
    let fixtures = "tests/fixtures";
    let output = cargo()
        .args([
            "run",
            "--quiet",
            "-p",
            "lcl-model",
            "--example",
            "episode",
            "--",
        ])
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
    fn greedy_ids_are_read_from_a_reference_episode() {
        let json = "{\"input_ids\": [1, 2],\n \"greedy_ids\": [\n  10,\n  165\n ], \"x\": 1}";
        assert_eq!(super::greedy_ids(json).unwrap(), "[10,165]");
    }
}
