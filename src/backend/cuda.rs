//! Before the first CUDA call: is there a driver, a device, and the libdevice bitcode the
//! LLVM kernel compiler links math functions from? Each missing piece is an error that says
//! what to install, instead of a panic in a device thread.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The driver library cudarc loads.
const DRIVER: &str = "libcuda.so.1";

/// Where cubecl looks for the CUDA toolkit when `CUDA_PATH` is not set.
const CUDA_ROOTS: [&str; 4] = ["/usr/local/cuda", "/opt/cuda", "/usr/lib/cuda", "/usr"];

/// Checks that CUDA device `index` can run this program's kernels.
pub fn check(index: usize) -> Result<()> {
    // SAFETY: loading the NVIDIA driver library runs its initialisers, as cudarc would.
    let driver = match unsafe { libloading::Library::new(DRIVER) } {
        Ok(driver) => driver,
        Err(err) => bail!(
            "CUDA: the NVIDIA driver library {DRIVER} cannot be loaded ({err}). Install the \
             NVIDIA driver (the CUDA toolkit is not needed to run), or pick another backend \
             with LCL_DEVICE"
        ),
    };
    let count = device_count(&driver)?;
    if count == 0 {
        bail!("CUDA: the driver is there but sees no CUDA device");
    }
    if index >= count {
        bail!(
            "CUDA: device {index} asked for, the driver sees {count} (cuda:0..cuda:{})",
            count - 1
        );
    }
    if libdevice().is_none() {
        bail!(
            "CUDA: libdevice.10.bc (the CUDA math library the kernel compiler links) is not \
             found under CUDA_PATH ({}) or {}. Point CUDA_PATH at a CUDA toolkit, or at the \
             nvidia/cuda_nvcc folder of the PyPI wheel nvidia-cuda-nvcc-cu12 \
             (`pip install nvidia-cuda-nvcc-cu12`)",
            std::env::var("CUDA_PATH").unwrap_or_else(|_| "not set".into()),
            CUDA_ROOTS.join(", ")
        );
    }
    Ok(())
}

/// Number of CUDA devices the driver sees.
fn device_count(driver: &libloading::Library) -> Result<usize> {
    type Init = unsafe extern "C" fn(u32) -> i32;
    type Count = unsafe extern "C" fn(*mut i32) -> i32;
    // SAFETY: the driver API's documented signatures (CUresult cuInit(unsigned int),
    // CUresult cuDeviceGetCount(int*)).
    unsafe {
        let init: libloading::Symbol<Init> = driver.get(b"cuInit\0")?;
        let get_count: libloading::Symbol<Count> = driver.get(b"cuDeviceGetCount\0")?;
        let status = init(0);
        if status != 0 {
            bail!(
                "CUDA: the driver failed to start (cuInit error {status}{}); check nvidia-smi",
                if status == 100 {
                    ": no CUDA-capable device"
                } else {
                    ""
                }
            );
        }
        let mut count = 0;
        let status = get_count(&mut count);
        if status != 0 {
            bail!("CUDA: cannot count devices (cuDeviceGetCount error {status})");
        }
        Ok(count.max(0) as usize)
    }
}

/// The libdevice bitcode file, found where cubecl looks for it.
pub fn libdevice() -> Option<PathBuf> {
    let bitcode = |root: &Path| root.join("nvvm/libdevice/libdevice.10.bc");
    match std::env::var_os("CUDA_PATH") {
        Some(root) => Some(bitcode(Path::new(&root))).filter(|p| p.is_file()),
        None => CUDA_ROOTS
            .iter()
            .map(|root| bitcode(Path::new(root)))
            .find(|p| p.is_file()),
    }
}
