//! The `digest` target: see fuzz/README.md and `store_core::fuzzing::fuzz_digest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| store_core::fuzzing::fuzz_digest(data));
