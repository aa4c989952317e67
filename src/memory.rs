//! How much memory the phases of a large sync hold (`RUST_LOG=permit_sync::memory=debug`), which
//! is how they were sized. The binary allocates with jemalloc, which returns freed pages as they
//! are freed (`src/main.rs`), so nothing here hands memory back.

/// Logs resident, allocated and peak memory after `phase`, when the memory log is on.
pub fn log_phase(phase: &str) {
    if tracing::enabled!(target: "permit_sync::memory", tracing::Level::DEBUG)
        && let Some((resident, peak)) = resident_mb()
    {
        tracing::debug!(
            target: "permit_sync::memory",
            "after {phase}: {resident} MB resident ({} MB allocated), peak {peak} MB",
            allocated_mb()
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

/// Bytes jemalloc has handed out and not had back, in MB: what is alive, as against what is
/// resident. Zero where jemalloc is not the allocator (tests of the library).
fn allocated_mb() -> u64 {
    #[cfg(not(target_env = "msvc"))]
    {
        use tikv_jemalloc_ctl::{epoch, stats};
        // The statistics are a snapshot taken when the epoch advances.
        if epoch::advance().is_ok() {
            return stats::allocated::read().map_or(0, |b| b as u64 / (1024 * 1024));
        }
    }
    0
}
