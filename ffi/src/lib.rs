//! C ABI for shmq (libshmq.so). Filled by the C ABI issue.
