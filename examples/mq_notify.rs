//! `cargo run --release --example mq_notify -- /NAME [COUNT]`
//!
//! Opens (creating if needed, 0600) the POSIX queue /NAME in the default
//! namespace (`$SHMQ_DIR` or /dev/shm/shmq) and waits for COUNT (default 1)
//! notifications of a message arriving in the empty queue (`mq_notify` with
//! `SIGEV_THREAD`): each time, it registers again first, then receives
//! everything queued and prints it with its priority, the pattern
//! mq_notify(3) recommends. Send from another shell with
//! `shmq send /NAME PRIO TEXT`.

use shmq::{MessageQueue, MqNotify, MqOpenOptions, MqRecvError, Namespace};
use std::sync::mpsc;

fn main() {
    if let Err(e) = run() {
        eprintln!("mq_notify: {e}");
        std::process::exit(1);
    }
}

/// Registers `q` so that a helper thread tells `tx` when a message arrives.
fn arm(q: &MessageQueue, tx: &mpsc::Sender<()>) -> Result<(), shmq::MqNotifyError> {
    let tx = tx.clone();
    q.notify(Some(MqNotify::Thread(Box::new(move || {
        let _ = tx.send(());
    }))))
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, count) = match &args[..] {
        [name] => (name.as_str(), 1),
        [name, count] => (name.as_str(), count.parse()?),
        _ => {
            eprintln!("usage: mq_notify /NAME [COUNT]");
            std::process::exit(2);
        }
    };
    let ns = Namespace::open_default()?;
    let q = MqOpenOptions::new()
        .read(true)
        .create(true)
        .mode(0o600)
        .open(&ns, name)?;
    let (tx, rx) = mpsc::channel();
    let mut buf = vec![0u8; q.message_size() as usize];
    // Whatever is queued already would never make the queue go from empty
    // to non-empty: take it first.
    let drain = |buf: &mut [u8]| -> Result<(), MqRecvError> {
        loop {
            match q.try_recv(buf) {
                Ok((len, prio)) => {
                    println!("prio {prio}: {}", String::from_utf8_lossy(&buf[..len]))
                }
                Err(MqRecvError::Again) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    arm(&q, &tx)?;
    drain(&mut buf)?;
    for i in 0..count {
        println!("waiting for a message in {name} ...");
        rx.recv()?;
        if i + 1 < count {
            arm(&q, &tx)?;
        }
        drain(&mut buf)?;
    }
    q.notify(None)?;
    Ok(())
}
