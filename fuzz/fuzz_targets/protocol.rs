//! `protocol`: bytes fed to the adapter server as requests and to the
//! runner as an adapter's replies (see `scopebus_conformance::fuzz`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = scopebus_conformance::fuzz::protocol(data) {
        panic!("{e}");
    }
});
