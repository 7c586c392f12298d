//! The `readonly_tar` target: see fuzz/README.md and `store_fs::fuzzing::fuzz_readonly_tar`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| store_fs::fuzzing::fuzz_readonly_tar(data));
