//! shmq: System V message queues in user space, over files mapped into every
//! process that uses them.
#![deny(unsafe_op_in_unsafe_fn)]

mod accounting;
mod cell_pool;
mod layout;
mod sync;
mod type_dir;
mod type_fifo;

#[cfg(test)]
mod test_support;
