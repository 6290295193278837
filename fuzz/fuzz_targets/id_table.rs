//! Fuzz target `id_table`: see `shmq_fuzz_harness::id_table`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shmq_fuzz_harness::id_table(data));
