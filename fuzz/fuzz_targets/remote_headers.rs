//! The `remote_headers` target: see fuzz/README.md and `store_remote::fuzzing::fuzz_headers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| store_remote::fuzzing::fuzz_headers(data));
