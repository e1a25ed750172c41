//! `trace`: bytes read as a trace file, as `cargo xtask replay` reads one; a
//! trace that reads must replay on the reference bus without a disagreement.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = scopebus_sim::fuzz::trace(data) {
        panic!("{e}");
    }
});
