//! The `index` target: see fuzz/README.md and `store_fs::fuzzing::fuzz_index`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| store_fs::fuzzing::fuzz_index(data));
