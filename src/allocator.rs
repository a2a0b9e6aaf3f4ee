//! The process's allocator, and how the commands tune it.

// JSON trees are millions of small allocations; glibc's allocator spent
// most of a large scan in page faults (measured: 17 s of 21 s in the
// kernel at 100 k resources).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long freed memory waits before a command hands it back to the
/// kernel. A scan frees each chunk of records once it is a batch: at 10 ms
/// it spent 9.8 s of 26.6 s in the kernel refaulting pages (scan_e2e
/// 1 000 000), 1.9 s of 17.4 s at mimalloc's default of 1 s; 250 ms held
/// 1 657 MB at its peak against 1 725 MB at 1 s, in the same time.
const BATCH_PURGE_DELAY_MS: libc::c_long = 250;

/// The same for `run`.
/// A service that decodes request after request on several threads held
/// 2.5× its live heap with the default (benches/src/bin/telemetry_e2e.rs:
/// 270 MB against 105 MB at 10 ms, at the same rate).
const SERVICE_PURGE_DELAY_MS: libc::c_long = 10;

// Positions in mimalloc v3's `mi_option_t` (include/mimalloc.h of the
// libmimalloc-sys that Cargo.lock pins); its bindings name only v2's.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Settings for every command, made before it starts a thread (mimalloc's
/// setter is not thread-safe): freed memory back after 250 ms, and no
/// transparent huge pages, whose 2 MiB faults turn a few live bytes into
/// resident megabytes (scan_e2e 100 000: 534 MB with them, 458 MB without,
/// at the same speed).
pub fn tune() {
    // SAFETY: these calls only set process-wide flags; mimalloc reads its
    // options on every mapping, and the prctl changes no memory.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, BATCH_PURGE_DELAY_MS);
        // Also the arenas mapped before main (mimalloc advised them huge).
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// `driftline run`: freed memory also goes back soon. Called before the
/// service starts a thread.
pub fn tune_for_service() {
    // SAFETY: only sets a process-wide flag, read on every purge.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, SERVICE_PURGE_DELAY_MS);
    }
}
