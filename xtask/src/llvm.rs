//! LLVM 23 for the `cuda` backend. Burn's CUDA runtime compiles its kernels through LLVM
//! (cubecl-llvm), whose build script normally downloads a prebuilt LLVM from GitHub. Instead,
//! this prepares the same LLVM version from the Python package registry once
//! (`mlc-llvm-static` + `mlc-llvm-static-extra-targets`, which adds NVPTX) into a cache, in the
//! folder layout the download would have made, so the build finds it and downloads nothing.
//! `LCL_LLVM_PREFIX` points at an LLVM 23 you already have instead.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The LLVM version cubecl-llvm's bundler expects, and the folder it looks for.
const TRACEL_FOLDER: &str = "tracel/tracel-llvm-23.1.0-4";
/// The file whose presence tells the bundler LLVM is installed.
const SENTINEL: &str = ".tracel-llvm-installed";
/// The registry packages (a static LLVM SDK, and its extra targets: NVPTX among them).
const WHEELS: [&str; 2] = [
    "mlc-llvm-static==23.1.1.post0",
    "mlc-llvm-static-extra-targets==23.1.1.post0",
];
/// CUDA version of the driver bindings (cudarc): 12.9 runs on every driver from 12.9 on.
const CUDA_BINDINGS: &str = "12090";

/// The environment a `cuda` build needs: where the prepared LLVM is (`XDG_DATA_HOME`, which
/// the bundler reads) and the CUDA bindings' version.
pub fn build_env() -> Result<Vec<(String, String)>, String> {
    let data_home = match std::env::var_os("LCL_LLVM_PREFIX") {
        Some(prefix) => link_user_llvm(Path::new(&prefix))?,
        None => prepare_registry_llvm()?,
    };
    let mut env = vec![("XDG_DATA_HOME".to_string(), data_home.display().to_string())];
    if std::env::var_os("CUDARC_CUDA_VERSION").is_none() {
        env.push(("CUDARC_CUDA_VERSION".into(), CUDA_BINDINGS.into()));
    }
    Ok(env)
}

/// The cache folder: `LCL_LLVM_CACHE`, else `XDG_CACHE_HOME/lcl/llvm`, else
/// `~/.cache/lcl/llvm`.
fn cache_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("LCL_LLVM_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").ok_or("HOME is not set")?).join(".cache"),
    };
    Ok(base.join("lcl/llvm"))
}

/// Prepares LLVM from the registry into the cache when it is not there; returns the folder
/// to give the build as `XDG_DATA_HOME`.
fn prepare_registry_llvm() -> Result<PathBuf, String> {
    let cache = cache_dir()?;
    let data_home = cache.join("data");
    let prefix = data_home.join(TRACEL_FOLDER);
    if prefix.join(SENTINEL).is_file() {
        return Ok(data_home);
    }
    eprintln!(
        "xtask: preparing LLVM 23 for the cuda backend from PyPI ({}, about 90 MB to download, \
         400 MB unpacked) into {} (once)",
        WHEELS.join(" + "),
        prefix.display()
    );
    let wheels = cache.join("wheels");
    run(Command::new(python()?)
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
        ])
        .arg("--dest")
        .arg(&wheels)
        .args(WHEELS))?;
    let partial = data_home.join("tracel/partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    // Unpack the SDK's files (the wheels' `mlc_llvm_static/static/`) with Python's zipfile.
    let unpack = r#"
import sys, zipfile, pathlib
dest = pathlib.Path(sys.argv[1])
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            name = info.filename
            if not name.startswith("mlc_llvm_static/static/") or name.endswith("/"):
                continue
            target = dest / name[len("mlc_llvm_static/static/"):]
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                out.write(src.read())
"#;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&wheels)
        .map_err(|e| format!("{}: {e}", wheels.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            name.ends_with(".whl") && name.starts_with("mlc_llvm_static")
        })
        .collect();
    files.sort();
    run(Command::new(python()?)
        .args(["-c", unpack])
        .arg(&partial)
        .args(&files))?;
    let config = partial.join("bin/llvm-config");
    make_executable(&config)?;
    check_llvm(&config)?;
    let _ = std::fs::remove_dir_all(&prefix);
    std::fs::rename(&partial, &prefix).map_err(|e| format!("{}: {e}", prefix.display()))?;
    std::fs::write(prefix.join(SENTINEL), "prepared by cargo xtask from PyPI\n")
        .map_err(|e| format!("{}: {e}", prefix.display()))?;
    eprintln!("xtask: LLVM ready in {}", prefix.display());
    Ok(data_home)
}

/// Makes the bundler's folder point at an LLVM 23 the user has (`bin/llvm-config` with static
/// libraries); returns its `XDG_DATA_HOME`.
fn link_user_llvm(user: &Path) -> Result<PathBuf, String> {
    let config = user.join("bin/llvm-config");
    check_llvm(&config).map_err(|e| format!("LCL_LLVM_PREFIX: {e}"))?;
    let data_home = cache_dir()?.join("user");
    let prefix = data_home.join(TRACEL_FOLDER);
    let _ = std::fs::remove_dir_all(&prefix);
    std::fs::create_dir_all(&prefix).map_err(|e| format!("{}: {e}", prefix.display()))?;
    for part in ["bin", "lib", "include"] {
        std::os::unix::fs::symlink(user.join(part), prefix.join(part))
            .map_err(|e| format!("{}: {e}", prefix.join(part).display()))?;
    }
    std::fs::write(
        prefix.join(SENTINEL),
        format!("links to {}\n", user.display()),
    )
    .map_err(|e| format!("{}: {e}", prefix.display()))?;
    Ok(data_home)
}

/// Checks that `llvm-config` runs, is LLVM 23 and has the NVPTX target.
fn check_llvm(config: &Path) -> Result<(), String> {
    let output = Command::new(config)
        .args(["--version", "--targets-built"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", config.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.lines().next().unwrap_or_default();
    if !output.status.success() || !version.starts_with("23.") {
        return Err(format!(
            "{} is not LLVM 23 (it says {version:?})",
            config.display()
        ));
    }
    if !text.contains("NVPTX") {
        return Err(format!(
            "{}: this LLVM has no NVPTX target",
            config.display()
        ));
    }
    Ok(())
}

fn make_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The Python that runs pip (the LLVM SDK's `llvm-config` is a Python script too).
fn python() -> Result<&'static str, String> {
    match Command::new("python3").arg("--version").output() {
        Ok(output) if output.status.success() => Ok("python3"),
        _ => Err(
            "the cuda build prepares LLVM with Python's pip and needs python3 with pip \
             (or set LCL_LLVM_PREFIX to an LLVM 23 with NVPTX and static libraries)"
                .into(),
        ),
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed ({status})"))
    }
}
