//! The compute device. A binary holds one or more backends (Cargo features `flex`, `ndarray`,
//! `wgpu`, `vulkan`, `metal`, `cuda`); the device comes from the most capable one compiled
//! in, or from the one `LCL_DEVICE` names (`flex`, `ndarray`, `wgpu`, `vulkan`, `metal`,
//! `cuda`, `cuda:1`). A CUDA device is checked first (driver, device, libdevice), so a
//! machine without one gets an error that says what is missing. Model code never looks here.

#[cfg(feature = "cuda")]
mod cuda;

use anyhow::{Result, bail};
use burn::tensor::Device;

/// The environment variable that picks the backend at run time.
pub const DEVICE_VAR: &str = "LCL_DEVICE";

/// Backends compiled into this binary, most capable first.
pub fn compiled_backends() -> Vec<&'static str> {
    [
        ("cuda", cfg!(feature = "cuda")),
        ("metal", cfg!(feature = "metal")),
        ("vulkan", cfg!(feature = "vulkan")),
        ("wgpu", cfg!(feature = "wgpu")),
        ("ndarray", cfg!(feature = "ndarray")),
        ("flex", cfg!(feature = "flex")),
    ]
    .into_iter()
    .filter_map(|(name, compiled)| compiled.then_some(name))
    .collect()
}

/// A backend and device index, as `LCL_DEVICE` writes them (`cuda:1`).
fn requested() -> Option<(String, usize)> {
    let value = std::env::var(DEVICE_VAR).ok()?;
    let value = value.trim().to_lowercase();
    if value.is_empty() {
        return None;
    }
    let (name, index) = match value.split_once(':') {
        Some((name, index)) => (name.to_string(), index.parse().unwrap_or(usize::MAX)),
        None => (value, 0),
    };
    Some((name, index))
}

/// Name of the backend the device comes from.
pub fn backend_name() -> &'static str {
    let compiled = compiled_backends();
    let default = compiled.first().copied().unwrap_or("none");
    match requested() {
        Some((name, _)) => compiled
            .iter()
            .copied()
            .find(|b| *b == name)
            .unwrap_or(default),
        None => default,
    }
}

/// The device to compute on (see the module documentation).
pub fn device() -> Result<Device> {
    let compiled = compiled_backends();
    let (name, index) = match requested() {
        Some((name, index)) => {
            if !compiled.contains(&name.as_str()) {
                bail!(
                    "{DEVICE_VAR}={name}: this binary has no {name} backend (it has {}; build \
                     with `cargo xtask build --backend {name}`)",
                    compiled.join(", ")
                );
            }
            if index == usize::MAX {
                bail!("{DEVICE_VAR}: the device index after `{name}:` is not a number");
            }
            (name, index)
        }
        None => (backend_name().to_string(), 0),
    };
    if matches!(name.as_str(), "flex" | "ndarray") && index > 0 {
        bail!("{DEVICE_VAR}: the {name} backend has one device (the CPU), not {index}");
    }
    Ok(match name.as_str() {
        #[cfg(feature = "cuda")]
        "cuda" => {
            cuda::check(index)?;
            Device::cuda(index)
        }
        #[cfg(feature = "metal")]
        "metal" => Device::metal(device_kind(index)),
        #[cfg(feature = "vulkan")]
        "vulkan" => Device::vulkan(device_kind(index)),
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(device_kind(index)),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Device::ndarray(),
        #[cfg(feature = "flex")]
        "flex" => Device::flex(),
        other => bail!("no backend {other:?} in this binary"),
    })
}

/// The default GPU for index 0, else the `index`-th discrete GPU.
#[cfg(any(feature = "wgpu", feature = "vulkan", feature = "metal"))]
fn device_kind(index: usize) -> burn::tensor::DeviceKind {
    if index == 0 {
        burn::tensor::DeviceKind::DefaultDevice
    } else {
        burn::tensor::DeviceKind::DiscreteGpu(index)
    }
}
