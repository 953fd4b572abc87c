//! `lcl parity`: the transformers-parity fixtures on this binary's device.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use lcl::backend::{backend_name, device};

#[derive(Args)]
pub struct ParityArgs {
    /// The fixtures folder (default: the project's tests/fixtures).
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Also write the checks as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: ParityArgs) -> Result<()> {
    let fixtures = match args.fixtures {
        Some(dir) => dir,
        None => lcl::assets::find("tests/fixtures")?,
    };
    let device = device()?;
    let checks = lcl::parity::run(&fixtures, &device)?;
    print!("{}", lcl::parity::markdown(&checks, backend_name()));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&checks)? + "\n")?;
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    if failed > 0 {
        bail!("{failed} of {} parity checks failed", checks.len());
    }
    eprintln!(
        "all {} parity checks hold on {}",
        checks.len(),
        backend_name()
    );
    Ok(())
}
