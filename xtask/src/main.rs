//! `cargo xtask <command> [--backend NAME] [ARGS...]`: builds the `lcl` program in release
//! mode with the Cargo feature of the chosen backend and runs `lcl <command> ARGS...`.
//!
//! Backends: flex (default, pure-Rust CPU), ndarray (CPU), wgpu (any GPU API wgpu finds),
//! vulkan, metal, cuda (needs the CUDA toolkit and network access at build time).

use std::process::{Command, ExitCode};

const BACKENDS: [&str; 6] = ["flex", "ndarray", "wgpu", "vulkan", "metal", "cuda"];

const USAGE: &str =
    "usage: cargo xtask <command> [--backend flex|ndarray|wgpu|vulkan|metal|cuda] [ARGS...]

Builds `lcl` in release mode with the backend's Cargo feature and runs `lcl <command> ARGS...`.
Commands are those of `lcl` (run `cargo xtask help` to list them), e.g.:
  cargo xtask infer --backend wgpu --model DIR --vision DIR --support a.jpg=cactihog --query q.jpg

  cargo xtask test [--cpu-only]
      the whole test suite on flex, then the transformers-parity tests on wgpu (software
      Vulkan is enough: Debian's mesa-vulkan-drivers); --cpu-only skips the wgpu part.";

/// The integration tests that run again on the wgpu backend.
const WGPU_TESTS: [&str; 5] = [
    "model_parity",
    "train_parity",
    "cli",
    "checkpoint",
    "clip_features",
];

/// The command line split into the backend and what `lcl` gets.
#[derive(Debug, PartialEq)]
struct Invocation {
    backend: String,
    lcl_args: Vec<String>,
}

fn parse(args: &[String]) -> Result<Invocation, String> {
    let mut backend = "flex".to_string();
    let mut lcl_args = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--backend" {
            backend = iter.next().ok_or("--backend needs a value")?.clone();
        } else if let Some(value) = arg.strip_prefix("--backend=") {
            backend = value.to_string();
        } else {
            lcl_args.push(arg.clone());
        }
    }
    if !BACKENDS.contains(&backend.as_str()) {
        return Err(format!(
            "unknown backend {backend:?}; choose one of {}",
            BACKENDS.join(", ")
        ));
    }
    if lcl_args.is_empty() {
        return Err(USAGE.to_string());
    }
    Ok(Invocation { backend, lcl_args })
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
}

/// Runs `command`, failing with its exit code.
fn run(mut command: Command) -> Result<(), ExitCode> {
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(ExitCode::from(
            status.code().unwrap_or(1).clamp(1, 255) as u8
        )),
        Err(err) => {
            eprintln!("cannot run cargo: {err}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// `cargo xtask test`: every test on flex, then the parity tests on wgpu.
fn test(args: &[String]) -> Result<(), ExitCode> {
    let cpu_only = args.iter().any(|a| a == "--cpu-only");
    let mut flex = cargo();
    flex.args(["test", "--workspace"]);
    run(flex)?;
    if cpu_only {
        return Ok(());
    }
    let mut wgpu = cargo();
    wgpu.args([
        "test",
        "--package",
        "lcl",
        "--no-default-features",
        "--features",
        "wgpu",
    ]);
    for test in WGPU_TESTS {
        wgpu.args(["--test", test]);
    }
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
    run(wgpu)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.first().is_some_and(|a| a == "test") {
        return test(&args[1..]).err().unwrap_or(ExitCode::SUCCESS);
    }
    let invocation = match parse(&args) {
        Ok(invocation) => invocation,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args([
            "run",
            "--release",
            "--package",
            "lcl",
            "--bin",
            "lcl",
            "--no-default-features",
            "--features",
        ])
        .arg(&invocation.backend)
        .arg("--")
        .args(&invocation.lcl_args)
        .status();
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(status.code().unwrap_or(1).clamp(1, 255) as u8),
        Err(err) => {
            eprintln!("cannot run cargo: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn backend_flag_is_taken_out_and_the_rest_passed_on() {
        let parsed = parse(&strings(&["infer", "--backend", "wgpu", "--model", "m"])).unwrap();
        assert_eq!(parsed.backend, "wgpu");
        assert_eq!(parsed.lcl_args, strings(&["infer", "--model", "m"]));
        let parsed = parse(&strings(&["infer", "--backend=vulkan"])).unwrap();
        assert_eq!(parsed.backend, "vulkan");
    }

    #[test]
    fn default_backend_is_flex_and_unknown_backends_fail() {
        assert_eq!(parse(&strings(&["infer"])).unwrap().backend, "flex");
        let err = parse(&strings(&["infer", "--backend", "tpu"])).unwrap_err();
        assert!(err.contains("unknown backend \"tpu\""), "{err}");
        assert!(parse(&strings(&["--backend", "flex"])).is_err());
    }
}
