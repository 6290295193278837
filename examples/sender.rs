//! `cargo run --release --example sender -- KEY TYPE TEXT`
//!
//! Creates the queue of integer KEY (IPC_CREAT | 0660) in the default
//! namespace (`$SHMQ_DIR` or /dev/shm/shmq), sends TEXT as a message of type
//! TYPE, and exits. The message waits in the queue for a receiver.

use shmq::{GetOptions, Namespace};

fn main() {
    if let Err(e) = run() {
        eprintln!("sender: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key, mtype, text] = &args[..] else {
        eprintln!("usage: sender KEY TYPE TEXT");
        std::process::exit(2);
    };
    let key: i32 = key.parse()?;
    let mtype: i64 = mtype.parse()?;
    let ns = Namespace::open_default()?;
    let q = ns.get(key, GetOptions::new().create(true).mode(0o660))?;
    q.send(mtype, text.as_bytes())?;
    println!(
        "sent {} bytes of type {mtype} to queue {}",
        text.len(),
        q.id()
    );
    Ok(())
}
