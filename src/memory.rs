//! Handing freed memory back to the system between the phases of a large sync, and saying how
//! much is held (`RUST_LOG=permit_sync::memory=debug`), which is how the phases were sized.

/// Returns the allocator's free pages to the system after `phase`. glibc keeps what a phase frees
/// (manifests parsed on their own thread, listing pages, request bodies) in its arenas, so the
/// peak RSS of a run of 400,000 objects was the sum of its phases' garbage rather than the
/// largest live set. Cheap (milliseconds), so it is called after each phase that frees much.
pub fn release_free_memory(phase: &str) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    if tracing::enabled!(target: "permit_sync::memory", tracing::Level::DEBUG)
        && let Some((resident, peak)) = resident_mb()
    {
        tracing::debug!(
            target: "permit_sync::memory",
            "after {phase}: {resident} MB resident ({} MB in use), peak {peak} MB",
            in_use_mb()
        );
    }
}

/// Resident and peak resident memory of this process in MB (Linux only).
fn resident_mb() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Bytes the allocator has handed out and not had back, in MB: what is alive, as against what is
/// resident (the difference is free memory the allocator could not return).
fn in_use_mb() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallinfo2 only reads the allocator's counters.
    unsafe {
        let info = libc::mallinfo2();
        ((info.uordblks + info.hblkhd) / (1024 * 1024)) as u64
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    0
}
