//! Fuzz target `api_sequence`: see `shmq_fuzz_harness::api_sequence`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shmq_fuzz_harness::api_sequence(data));
