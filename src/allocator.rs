//! The process's allocator, and how the long-running service tunes it.

// JSON trees are millions of small allocations; glibc's allocator spent
// most of a large scan in page faults (measured: 17 s of 21 s in the
// kernel at 100 k resources).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long freed memory waits before it goes back to the kernel.
/// mimalloc's default (1 s) let a service that decodes request after
/// request on several threads hold 2.5× its live heap
/// (benches/src/bin/telemetry_e2e.rs: 270 MB against 105 MB at 10 ms, at
/// the same rate), and a scan, which frees each chunk of records once it
/// is a batch, hold 1.3× (scan_e2e 100 000: 265 MB against 190 MB after
/// reading, at the same speed).
const PURGE_DELAY_MS: libc::c_long = 10;

// Positions in mimalloc v3's `mi_option_t` (include/mimalloc.h of the
// libmimalloc-sys that Cargo.lock pins); its bindings name only v2's.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Settings for every command, made before it starts a thread (mimalloc's
/// setter is not thread-safe): freed memory goes back soon, and no
/// transparent huge pages, whose 2 MiB faults turn a few live bytes into
/// resident megabytes.
pub fn tune() {
    // SAFETY: both calls only set process-wide flags; mimalloc reads its
    // options on every purge and mapping, and the prctl changes no memory.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
        // Also the arenas mapped before main (mimalloc advised them huge).
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
