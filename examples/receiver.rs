//! `cargo run --release --example receiver -- KEY TYPE`
//!
//! Opens the existing queue of integer KEY (no IPC_CREAT: ENOENT if nobody
//! created it), receives one message of type TYPE (waiting for it if needed)
//! and prints its text.

use shmq::{GetOptions, Namespace, Selector};

fn main() {
    if let Err(e) = run() {
        eprintln!("receiver: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key, mtype] = &args[..] else {
        eprintln!("usage: receiver KEY TYPE");
        std::process::exit(2);
    };
    let key: i32 = key.parse()?;
    let mtype: i64 = mtype.parse()?;
    let ns = Namespace::open_default()?;
    let q = ns.get(key, GetOptions::new())?;
    let mut buf = vec![0u8; ns.limits().msgmax as usize];
    let m = q.recv(&mut buf, Selector::from_msgtyp(mtype, false))?;
    println!("{}", String::from_utf8_lossy(&buf[..m.len]));
    Ok(())
}
