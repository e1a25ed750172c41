//! The default conformance run (`cargo xtask conformance`: seeds
//! `0..DEFAULT_SEEDS`, `DEFAULT_OPS` ops each, the strict profile) on the
//! reference bus, as a test: every rule passes and is exercised.
//!
//! This is half of the killer `cargo xtask mutants --external` runs against
//! each mutant cargo-mutants makes of the bus (the bus's own tests are the
//! other half; `.cargo/mutants.toml`), so it must stay a plain `cargo test`
//! target of its own.

use scopebus_conformance::report;
use scopebus_conformance::runner::{Campaign, DEFAULT_OPS, DEFAULT_SEEDS, Seeds, Verdict, run};
use scopebus_conformance::target::Target;
use scopebus_sim::shrink::Budget;

// The bus tests' watchdog: a bus that loops forever inside a poll would
// otherwise hold the run until an outer timeout.
#[path = "../../bus/tests/support/watchdog.rs"]
mod watchdog;

#[test]
fn the_reference_passes_every_rule_in_the_default_run() {
    let _watchdog = watchdog::watchdog();
    let out_dir = std::env::temp_dir().join(format!("scopebus-default-run-{}", std::process::id()));
    let campaign = Campaign {
        target: Target::Reference,
        seeds: Seeds::Range {
            start: 0,
            count: DEFAULT_SEEDS,
        },
        ops: DEFAULT_OPS as usize,
        jobs: 0,
        out_dir: out_dir.clone(),
        shrink: Budget::default(),
        progress: false,
        expectations: None,
        profile: Default::default(),
        deadline: None,
    };
    let report = run(&campaign).unwrap();
    let _ = std::fs::remove_dir_all(&out_dir);
    let failed: Vec<_> = report
        .rules
        .iter()
        .filter(|r| r.verdict != Verdict::Passed || r.checks == 0)
        .map(|r| r.rule.to_string())
        .collect();
    assert!(
        failed.is_empty() && report.conforming() && report.determinism.mismatches.is_empty(),
        "rules not passed or not exercised: {failed:?}\n{}",
        report::render(&report)
    );
    assert_eq!(report.seed_count(), DEFAULT_SEEDS);
}
