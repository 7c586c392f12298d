//! The `reference` target: see fuzz/README.md, `store_remote::fuzzing::fuzz_reference` and
//! `store_core::fuzzing::fuzz_tag`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    store_remote::fuzzing::fuzz_reference(data);
    store_core::fuzzing::fuzz_tag(data);
});
