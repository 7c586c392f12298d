//! The `archive_import` target: see fuzz/README.md and `store_archive::fuzzing::fuzz_import`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| store_archive::fuzzing::fuzz_import(data));
