//! Examples live beside this crate: `sender.rs`, `receiver.rs`.
