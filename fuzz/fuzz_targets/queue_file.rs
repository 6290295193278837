//! Fuzz target `queue_file`: see `shmq_fuzz_harness::queue_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shmq_fuzz_harness::queue_file(data));
