//! `ops`: bytes become a workload (ops and scheduling choices, see
//! `scopebus_sim::fuzz`) run on the reference bus against the model; any
//! disagreement or panic is a crash. With `SCOPEBUS_FUZZ_MUTANT=NAME` in the
//! environment it runs on that mutant instead (`cargo xtask fuzz --mutant`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopebus::mutants::Mutant;
use scopebus_sim::trace::TraceFile;
use std::sync::OnceLock;

fn mutant() -> Option<Mutant> {
    static MUTANT: OnceLock<Option<Mutant>> = OnceLock::new();
    *MUTANT.get_or_init(|| {
        let name = std::env::var("SCOPEBUS_FUZZ_MUTANT").ok()?;
        match Mutant::ALL.iter().find(|m| m.name() == name) {
            Some(m) => Some(*m),
            None => panic!("SCOPEBUS_FUZZ_MUTANT={name} names no mutant"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    if let Err(crash) = scopebus_sim::fuzz::ops(data, mutant()) {
        let file = TraceFile::new("reference", crash.trace.clone());
        panic!("{}\n--- trace ---\n{}", crash.failure, file.to_json());
    }
});
