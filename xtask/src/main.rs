//! `cargo xtask <command> [--backend NAME] [ARGS...]`: builds the `lcl` program in release
//! mode with the Cargo feature of the chosen backend and runs `lcl <command> ARGS...`; plus
//! `build`, `lint` and `test` for the project itself.

mod backend;
mod llvm;
mod test;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

const USAGE: &str =
    "usage: cargo xtask <command> [--backend flex|ndarray|wgpu|vulkan|metal|cuda] [ARGS...]

Builds `lcl` in release mode with the backend's Cargo feature and runs `lcl <command> ARGS...`.
Commands are those of `lcl` (run `cargo xtask help` to list them), e.g.:
  cargo xtask infer --backend wgpu --model DIR --vision DIR --support a.jpg=cactihog --query q.jpg

  cargo xtask build --backend NAME
      only build target/release/lcl for that backend (cuda: LLVM 23 is prepared from PyPI
      once, into ~/.cache/lcl/llvm; LCL_LLVM_PREFIX uses an LLVM 23 you have)
  cargo xtask test [--cpu-only]
      one test build with the flex, ndarray and wgpu backends: every test on flex, the
      transformers-parity tests again on ndarray and on wgpu (software Vulkan is enough:
      Debian's mesa-vulkan-drivers), then the embedding example and the client checks of
      `lcl serve` (tests/clients/run.sh); --cpu-only leaves wgpu out
  cargo xtask lint [--no-cuda]
      clippy over the whole workspace with every backend compiled in (cuda included, so that
      its code path is checked without a GPU), warnings as errors";

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
}

/// Runs `command`, failing with its exit status.
fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed ({status})", command.get_program()))
    }
}

/// The environment a build with `backends` (comma-separated) needs (LLVM for cuda).
fn build_env(backends: &str) -> Result<Vec<(String, String)>, String> {
    if backends.split(',').any(|b| b == "cuda") {
        llvm::build_env()
    } else {
        Ok(Vec::new())
    }
}

/// Builds `lcl` in release mode for `backend` (or several, comma-separated); returns the
/// binary.
fn build(backend: &str) -> Result<PathBuf, String> {
    let mut command = cargo();
    command
        .args(["build", "--release", "--package", "lcl", "--bin", "lcl"])
        .args(["--no-default-features", "--features", backend])
        .envs(build_env(backend)?);
    run(&mut command)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    Ok(target.join("release/lcl"))
}

/// `cargo xtask lint`: clippy with every backend compiled in.
fn lint(cuda: bool) -> Result<(), String> {
    let features = if cuda {
        "lcl/ndarray,lcl/wgpu,lcl/cuda"
    } else {
        "lcl/ndarray,lcl/wgpu"
    };
    let mut command = cargo();
    command
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            features,
        ])
        .args(["--", "-D", "warnings"])
        .envs(build_env(if cuda { "cuda" } else { "flex" })?);
    run(&mut command)
}

/// Runs the command; `lcl`'s own exit code is passed on (it has said what went wrong).
fn dispatch(args: &[String]) -> Result<ExitCode, String> {
    let flag = |name: &str| args.iter().any(|a| a == name);
    match args.first().map(String::as_str) {
        Some("--help" | "-h") | None => println!("{USAGE}"),
        Some("test") => test::test(flag("--cpu-only"))?,
        Some("lint") => lint(!flag("--no-cuda"))?,
        Some("build") => {
            let invocation = backend::parse(args, USAGE)?;
            let binary = build(&invocation.backend)?;
            eprintln!("xtask: built {}", binary.display());
        }
        Some(_) => {
            let invocation = backend::parse(args, USAGE)?;
            let binary = build(&invocation.backend)?;
            let status = Command::new(&binary)
                .args(&invocation.lcl_args)
                .status()
                .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
            let code = status.code().unwrap_or(1).clamp(0, 255) as u8;
            return Ok(ExitCode::from(code));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    dispatch(&args).unwrap_or_else(|message| {
        eprintln!("{message}");
        ExitCode::FAILURE
    })
}
