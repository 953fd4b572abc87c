//! Where the project's shipped files are (`checkpoints/mini`, `configs/mini`, `scripts/`):
//! under `LCL_HOME` when it is set, else in the first of the working directory, the
//! executable's folder and their parents that holds the file asked for. So `cargo xtask`,
//! `target/release/lcl` and a copy of the binary run from a checkout all find them.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The environment variable naming the project folder.
pub const HOME_VAR: &str = "LCL_HOME";

/// The shipped file or folder `relative` (e.g. `checkpoints/mini`).
pub fn find(relative: &str) -> Result<PathBuf> {
    if let Some(home) = std::env::var_os(HOME_VAR) {
        let path = Path::new(&home).join(relative);
        if path.exists() {
            return Ok(path);
        }
        bail!(
            "{} has no {relative} ({HOME_VAR} names it as the project folder)",
            Path::new(&home).display()
        );
    }
    let starts = [
        std::env::current_dir().ok(),
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf)),
    ];
    for start in starts.into_iter().flatten() {
        if let Some(found) = start
            .ancestors()
            .map(|dir| dir.join(relative))
            .find(|path| path.exists())
        {
            return Ok(found);
        }
    }
    bail!(
        "cannot find the project's {relative} (looked in the working folder, beside the \
         executable and in their parents): run from a checkout of the project, or set \
         {HOME_VAR} to one"
    )
}

/// The project folder: the one holding `relative`, found as [`find`] finds it.
pub fn project_dir(relative: &str) -> Result<PathBuf> {
    let found = find(relative)?;
    let depth = Path::new(relative).components().count();
    Ok(found
        .ancestors()
        .nth(depth)
        .map(Path::to_path_buf)
        .unwrap_or(found))
}
