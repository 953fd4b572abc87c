//! The compute device of the backend this binary was built with (one Cargo feature each:
//! `flex`, `ndarray`, `wgpu`, `vulkan`, `metal`, `cuda`). Model code never looks at it.

use burn::tensor::Device;

/// Name of the backend compiled in (the most capable one when several are).
pub fn backend_name() -> &'static str {
    if cfg!(feature = "cuda") {
        "cuda"
    } else if cfg!(feature = "metal") {
        "metal"
    } else if cfg!(feature = "vulkan") {
        "vulkan"
    } else if cfg!(feature = "wgpu") {
        "wgpu"
    } else if cfg!(feature = "ndarray") {
        "ndarray"
    } else {
        "flex"
    }
}

/// The default device of [`backend_name`].
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    return Device::cuda(0);
    #[cfg(all(feature = "metal", not(feature = "cuda")))]
    return Device::metal(burn::tensor::DeviceKind::DefaultDevice);
    #[cfg(all(feature = "vulkan", not(any(feature = "cuda", feature = "metal"))))]
    return Device::vulkan(burn::tensor::DeviceKind::DefaultDevice);
    #[cfg(all(
        feature = "wgpu",
        not(any(feature = "cuda", feature = "metal", feature = "vulkan"))
    ))]
    return Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    #[cfg(all(
        feature = "ndarray",
        not(any(
            feature = "cuda",
            feature = "metal",
            feature = "vulkan",
            feature = "wgpu"
        ))
    ))]
    return Device::ndarray();
    #[cfg(not(any(
        feature = "cuda",
        feature = "metal",
        feature = "vulkan",
        feature = "wgpu",
        feature = "ndarray"
    )))]
    return Device::flex();
}
