//! The backends and the command line of `cargo xtask`: the `--backend` flag taken out, the
//! rest for `lcl`.

/// The backends, each a Cargo feature of `lcl`.
pub const BACKENDS: [&str; 6] = ["flex", "ndarray", "wgpu", "vulkan", "metal", "cuda"];

/// The command line split into the backend and what `lcl` gets.
#[derive(Debug, PartialEq)]
pub struct Invocation {
    /// The backend (feature) to build; several, comma-separated, make one binary that holds
    /// them all (`LCL_DEVICE` picks one at run time).
    pub backend: String,
    /// The arguments of `lcl`.
    pub lcl_args: Vec<String>,
}

/// Splits `args` into the backend (default `flex`) and the rest; `usage` when nothing is left.
pub fn parse(args: &[String], usage: &str) -> Result<Invocation, String> {
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
    if let Some(unknown) = backend.split(',').find(|b| !BACKENDS.contains(b)) {
        return Err(format!(
            "unknown backend {unknown:?}; choose one of {} (or several, comma-separated)",
            BACKENDS.join(", ")
        ));
    }
    if lcl_args.is_empty() {
        return Err(usage.to_string());
    }
    Ok(Invocation { backend, lcl_args })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn backend_flag_is_taken_out_and_the_rest_passed_on() {
        let parsed = parse(
            &strings(&["infer", "--backend", "wgpu", "--model", "m"]),
            "",
        )
        .unwrap();
        assert_eq!(parsed.backend, "wgpu");
        assert_eq!(parsed.lcl_args, strings(&["infer", "--model", "m"]));
        let parsed = parse(&strings(&["infer", "--backend=vulkan"]), "").unwrap();
        assert_eq!(parsed.backend, "vulkan");
        let parsed = parse(&strings(&["build", "--backend", "cuda,wgpu"]), "").unwrap();
        assert_eq!(parsed.backend, "cuda,wgpu");
    }

    #[test]
    fn default_backend_is_flex_and_unknown_backends_fail() {
        assert_eq!(parse(&strings(&["infer"]), "").unwrap().backend, "flex");
        let err = parse(&strings(&["infer", "--backend", "tpu"]), "").unwrap_err();
        assert!(err.contains("unknown backend \"tpu\""), "{err}");
        let err = parse(&strings(&["infer", "--backend", "cuda,tpu"]), "").unwrap_err();
        assert!(err.contains("unknown backend \"tpu\""), "{err}");
        assert_eq!(
            parse(&strings(&["--backend", "flex"]), "usage").unwrap_err(),
            "usage"
        );
    }
}
