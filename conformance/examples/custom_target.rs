//! Running the suite on your own in-process implementation.
//!
//! Any type that implements `scopebus_sim::iut::Implementation` can be judged:
//! wrap it in `Target::Custom` with a factory that builds a fresh instance
//! per seed, and call `runner::run`. `sim/src/reference.rs` (the reference
//! bus's own adapter) is the template for adapting a real Rust bus.
//!
//! Here the "implementation" is the reference bus behind a wrapper that does
//! not declare the `stats` capability, so the report shows RECLAIM-1 and
//! RECLAIM-2 as "not tested" (never as passed), and the verdict is "not
//! conforming".
//!
//! Run: `cargo run --release -p scopebus-conformance --example custom_target`
//! (`cargo test` runs it too, on fewer seeds).

use scopebus_conformance::iut::{Fault, ImplInfo, Implementation, Preempted};
use scopebus_conformance::report;
use scopebus_conformance::rules::Capability;
use scopebus_conformance::rules::Rule;
use scopebus_conformance::runner::Verdict;
use scopebus_conformance::runner::{Campaign, Seeds, run};
use scopebus_conformance::target::Target;
use scopebus_sim::op::{Interjection, Observation, Op, Reply, TaskRef};
use scopebus_sim::reference::ReferenceImpl;
use scopebus_sim::shrink::Budget;
use std::sync::Arc;

/// The reference bus, minus the `stats` capability.
struct NoStats(ReferenceImpl);

impl Implementation for NoStats {
    fn info(&self) -> ImplInfo {
        let mut info = self.0.info();
        info.name = "no-stats".into();
        info.capabilities = info.capabilities.without(Capability::Stats);
        info
    }
    fn apply(&mut self, op: &Op) -> Result<Reply, Fault> {
        self.0.apply(op)
    }
    fn runnable(&self) -> Vec<TaskRef> {
        self.0.runnable()
    }
    fn poll(&mut self, task: TaskRef) -> Result<bool, Fault> {
        self.0.poll(task)
    }
    fn wake(&mut self, task: TaskRef) -> Result<bool, Fault> {
        self.0.wake(task)
    }
    fn take_observations(&mut self) -> Vec<Observation> {
        self.0.take_observations()
    }
    // The reference declares `preempt` and `migrate`, so these must be
    // forwarded too (the trait's defaults refuse them).
    fn poll_preempted(
        &mut self,
        task: TaskRef,
        with: &Interjection,
    ) -> Result<Option<Preempted>, Fault> {
        self.0.poll_preempted(task, with)
    }
    fn migrate(&mut self, task: TaskRef) -> Result<bool, Fault> {
        self.0.migrate(task)
    }
}

fn main() -> Result<(), String> {
    judge(500)
}

fn judge(seeds: u64) -> Result<(), String> {
    let campaign = Campaign {
        target: Target::Custom {
            name: "no-stats".into(),
            factory: Arc::new(|| Box::new(NoStats(ReferenceImpl::new(None)))),
        },
        seeds: Seeds::range(0, seeds)?,
        ops: 200,
        jobs: 0,
        out_dir: std::env::temp_dir().join("scopebus-custom-target"),
        shrink: Budget::default(),
        progress: false,
        expectations: None,
        profile: Default::default(),
        deadline: None,
    };
    let report = run(&campaign)?;
    print!("{}", report::render(&report));
    // Judged (nothing broke the interface), every rule but the two that need
    // `stats` passed, and those are "not tested": not conforming.
    assert!(report.unjudgeable.is_none(), "{:?}", report.unjudgeable);
    for r in &report.rules {
        let ok = match r.rule {
            Rule::Reclaim1 | Rule::Reclaim2 => matches!(r.verdict, Verdict::NotTested { .. }),
            _ => r.verdict == Verdict::Passed,
        };
        assert!(ok, "{}: {:?}", r.rule, r.verdict);
    }
    assert!(!report.conforming(), "RECLAIM-1 could not be tested");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_reports_what_it_says() {
        super::judge(100).expect("runs");
    }
}
