//! Benchmarks of shmq against kernel IPC (see the benchmarks issue).
