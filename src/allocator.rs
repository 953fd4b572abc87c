//! The process's memory allocator settings. Burn's CPU backend allocates and frees a new
//! buffer for most operations; with glibc's defaults every large one is a fresh `mmap` or
//! heap growth that the kernel has to fault in and zero, and freed memory goes straight back.
//! Keeping freed memory for reuse made the miniature's LCL training 1.8x faster (1.50 ->
//! 2.68 episodes/s on 2 cores). `LCL_MALLOC_DEFAULTS=1` keeps glibc's defaults (to compare).

/// Largest allocation served from the heap (glibc's maximum) instead of its own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;
/// Free memory kept at the top of the heap before any is returned to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 1 << 30;

/// Makes glibc keep freed memory for reuse (a no-op elsewhere, or with
/// `LCL_MALLOC_DEFAULTS=1`).
pub fn keep_freed_memory() {
    if std::env::var_os("LCL_MALLOC_DEFAULTS").is_some_and(|v| v == "1") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
