//! The `remote_bodies` target: see fuzz/README.md and `store_remote::fuzzing::fuzz_bodies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| store_remote::fuzzing::fuzz_bodies(data));
