//! The scale benchmark (`benches/scale`) at 1/100 of its size: checks that the program works and
//! that the call counts stay within the bounds, which are deterministic. Wall-time ratios are
//! reported by the benchmark, never asserted here (shared, noisy machines).

#[path = "../benches/scale/harness.rs"]
mod harness;

use std::path::PathBuf;

fn settings(work: &tempfile::TempDir) -> harness::Settings {
    harness::Settings {
        size: 0.01,
        // Latency and limits on, as in the full run, but small: this checks counts, not time.
        latency_ms: 2,
        rate_scale: 10.0,
        baseline_sample: 0,
        bin: PathBuf::from(env!("CARGO_BIN_EXE_permit-sync")),
        work: work.path().to_path_buf(),
        scenarios: vec!["S".into(), "L".into(), "W".into()],
    }
}

#[test]
fn small_scale_run_stays_within_the_call_bounds() {
    let work = tempfile::tempdir().unwrap();
    let settings = settings(&work);
    let runs = harness::run_all(&settings, &|_, _| None).unwrap();
    eprintln!("{}", harness::table(&settings, &runs));
    let find = |scenario: &str, contender: &str| {
        runs.iter()
            .find(|r| r.scenario == scenario && r.contender.contains(contender))
            .unwrap_or_else(|| panic!("no run {scenario} / {contender}"))
    };
    for r in runs
        .iter()
        .filter(|r| r.contender.starts_with("permit-sync apply"))
    {
        assert_eq!(
            r.exit_code,
            Some(0),
            "{} / {}: {}",
            r.scenario,
            r.contender,
            r.note
        );
        assert!(r.peak_rss_mb.is_some_and(|m| m > 0.0));
    }

    let cold = find("S", "(cold)");
    for r in runs
        .iter()
        .filter(|r| r.contender.starts_with("permit-sync apply"))
    {
        let ratio = r.at_limits_per_floor.expect("apply runs are replayed");
        assert!(
            ratio <= 1.1,
            "{} / {}: at Permit's limits {:.1} s, floor {:?} s",
            r.scenario,
            r.contender,
            r.projected_real_s,
            r.floor_s
        );
    }
    assert!(
        cold.calls_per_bound <= 1.1,
        "cold apply: {} calls for a bound of {} ({:?})",
        cold.total_calls,
        cold.bound,
        cold.calls
    );
    let again = find("S", "(no change)");
    assert_eq!(again.writes, 0, "re-apply wrote: {:?}", again.calls);
    assert!(
        again.total_calls <= again.bound,
        "re-apply: {} reads, the data needs {} ({:?})",
        again.total_calls,
        again.bound,
        again.bound_detail
    );
    let change = find("S", "(1% changed)");
    assert!(change.writes > 0);
    assert!(
        change.calls_per_bound <= 1.1,
        "1% change: {} calls for a bound of {} ({:?} vs {:?})",
        change.total_calls,
        change.bound,
        change.calls,
        change.bound_detail
    );

    // The baseline's count is exact: one call per object plus the scope lookup.
    let base = find("S", "baseline");
    let shape = harness::Shape::s(settings.size);
    let objects = 2 + 3 + shape.tenants + shape.users * (1 + shape.roles_per_user);
    assert_eq!(base.total_calls, objects as u64 + 1);
    assert!(!base.extrapolated);
    assert!(base.note.is_empty(), "{}", base.note);

    // Watch mode: one PATCH per single-file tenant change, nothing else once ready.
    let w = find("W", "watch");
    assert!(w.latency_p99_ms.is_some());
    assert!(
        w.total_calls <= w.bound,
        "watch: {} calls for {} changes ({:?})",
        w.total_calls,
        w.bound,
        w.calls
    );

    let l_cold = find("L", "(cold)");
    assert!(l_cold.calls_per_bound <= 1.1, "{:?}", l_cold.calls);
    let l_again = find("L", "(no change)");
    assert_eq!(l_again.writes, 0);
    assert!(l_again.total_calls <= l_again.bound);
}

/// The replay behind the benchmark's "at Permit's limits ÷ floor": calls that fit in one window
/// wait for nothing; past a window, the floor is the window and the client's limiter adds only its
/// margin (1 s a window).
#[test]
fn replay_at_permits_limits_spends_each_window_exactly() {
    use permit_sync::local::knobs::LoggedRequest;
    use std::time::Duration;
    let call = |i: u64, method: &str, path: &str| LoggedRequest {
        at: Duration::from_millis(i),
        method: method.into(),
        path: path.into(),
    };
    let reads: Vec<_> = (0..414)
        .map(|i| call(i, "GET", "/v2/facts/p/e/users"))
        .collect();
    let at = harness::replay(&reads);
    assert_eq!((at.limiter, at.floor), (Duration::ZERO, Duration::ZERO));

    // L's cold apply: 190 bulk calls, 100 allowed per 10 minutes.
    let bulk: Vec<_> = (0..190)
        .map(|i| call(i, "PUT", "/v2/facts/p/e/bulk/users"))
        .collect();
    let at = harness::replay(&bulk);
    let secs = |d: Duration| d.as_secs_f64();
    assert!(
        (599.0..=600.0).contains(&secs(at.floor)),
        "floor {:?}",
        at.floor
    );
    assert!(
        at.limiter >= at.floor && secs(at.limiter) <= secs(at.floor) + 2.0,
        "limiter {:?} for a floor of {:?}",
        at.limiter,
        at.floor
    );
}

/// Scenario R (ReBAC on top of S) at 1/100 size: the cold apply within 1.05x the fewest calls
/// Permit's API allows, and a re-apply that writes nothing and lists only the pages the data
/// needs.
#[test]
fn small_scale_rebac_run_stays_within_the_call_bounds() {
    let work = tempfile::tempdir().unwrap();
    let mut settings = settings(&work);
    settings.scenarios = vec!["R".into()];
    let runs = harness::run_all(&settings, &|_, _| None).unwrap();
    eprintln!("{}", harness::table(&settings, &runs));
    let find = |contender: &str| {
        runs.iter()
            .find(|r| r.scenario == "R" && r.contender.contains(contender))
            .unwrap_or_else(|| panic!("no run R / {contender}"))
    };
    let cold = find("(cold)");
    assert_eq!(cold.exit_code, Some(0), "{}", cold.note);
    for kind in [
        "instances upsert (bulk)",
        "tuples create (bulk)",
        "assign (bulk)",
    ] {
        assert!(
            cold.bound_detail.contains_key(kind),
            "{:?}",
            cold.bound_detail
        );
    }
    assert!(
        cold.calls_per_bound <= 1.05,
        "cold: {} calls against a bound of {} ({:?}; {:?})",
        cold.total_calls,
        cold.bound,
        cold.calls,
        cold.bound_detail
    );
    let again = find("(no change)");
    assert_eq!(again.exit_code, Some(0), "{}", again.note);
    assert_eq!(again.writes, 0, "re-apply wrote: {:?}", again.calls);
    assert!(
        again.total_calls <= again.bound,
        "re-apply: {} calls against {} ({:?})",
        again.total_calls,
        again.bound,
        again.bound_detail
    );
}
