//! `shmq rm`: removes queues by id, by key or all of them, as `ipcrm -q`,
//! `ipcrm -Q` and `ipcrm --all=msg` do, and fails in ipcrm's words
//! (util-linux's `ipcrm.c`: `remove_id`, `key_to_id`).

use crate::args::{parse_key, Key};
use crate::errors::{Failure, EXIT_FAILED};
use shmq::{CtlError, GetError, GetOptions, Namespace};

/// The prefix of ipcrm's messages, kept so that scripts that parse them
/// keep working.
const PREFIX: &str = "ipcrm";

/// Options of `shmq rm`.
#[derive(clap::Args, Debug)]
#[command(allow_negative_numbers = true)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true))]
pub(crate) struct RmArgs {
    /// Remove the queue with this id (repeatable)
    #[arg(short = 'q', long = "queue-id", value_name = "ID", group = "what")]
    ids: Vec<i32>,
    /// Remove the queue with this key: 0x hexadecimal, 0 octal or decimal
    /// (repeatable)
    #[arg(short = 'Q', long = "queue-key", value_name = "KEY", value_parser = parse_key, group = "what")]
    keys: Vec<Key>,
    /// Remove the name of this POSIX queue, /NAME (mq_unlink; repeatable)
    #[arg(long = "mq", value_name = "NAME", group = "what")]
    mq_names: Vec<String>,
    /// Remove every queue of the namespace, POSIX queues' names included
    #[arg(short, long, group = "what")]
    all: bool,
    /// Say what is being done
    #[arg(short, long)]
    verbose: bool,
}

/// Runs `shmq rm`: every removal is attempted; any failure makes exit code 1.
pub(crate) fn run(ns: &Namespace, args: &RmArgs) -> Result<(), Failure> {
    let mut ok = true;
    for &id in &args.ids {
        ok &= remove_id(ns, id, None, args.verbose);
    }
    for key in &args.keys {
        ok &= remove_key(ns, key, args.verbose);
    }
    if args.all {
        for id in ns.ids() {
            ok &= remove_id(ns, id, None, args.verbose);
        }
    }
    ok &= crate::mq::remove(ns, &args.mq_names, args.all, args.verbose);
    if ok {
        Ok(())
    } else {
        Err(Failure::reported(EXIT_FAILED))
    }
}

/// IPC_RMID of `id`; `key` is the key it was found by, if any.
fn remove_id(ns: &Namespace, id: i32, key: Option<&Key>, verbose: bool) -> bool {
    if verbose {
        println!("removing message queue id `{id}'");
    }
    let Err(e) = ns.queue(id).and_then(|q| q.remove()) else {
        return true;
    };
    let (noun, shown) = match key {
        Some(k) => ("key", k.typed.clone()),
        None => ("id", id.to_string()),
    };
    match e {
        CtlError::Access | CtlError::Permission => {
            eprintln!("{PREFIX}: permission denied for {noun} ({shown})")
        }
        CtlError::Invalid => eprintln!("{PREFIX}: invalid {noun} ({shown})"),
        CtlError::Removed => eprintln!("{PREFIX}: already removed {noun} ({shown})"),
        e => eprintln!("{PREFIX}: {noun} failed ({shown}): {e}"),
    }
    false
}

/// Finds the queue of `key` (as `msgget(key, 0)`), then removes it.
fn remove_key(ns: &Namespace, key: &Key, verbose: bool) -> bool {
    if key.value == shmq::IPC_PRIVATE {
        eprintln!("{PREFIX}: illegal key ({})", key.typed);
        return false;
    }
    match ns.get(key.value, GetOptions::new()) {
        Ok(q) => remove_id(ns, q.id(), Some(key), verbose),
        Err(e) => {
            match e {
                GetError::Access => {
                    eprintln!("{PREFIX}: permission denied for key ({})", key.typed)
                }
                GetError::NotFound => eprintln!("{PREFIX}: invalid key ({})", key.typed),
                e => eprintln!("{PREFIX}: key failed ({}): {e}", key.typed),
            }
            if let Some(id) = ns.id_of_key(key.value) {
                if let Some(p) = ns.file_problem(id) {
                    eprintln!("{PREFIX}: {p}; `shmq doctor --remove {id}` removes it");
                }
            }
            false
        }
    }
}
