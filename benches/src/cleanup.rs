//! Everything a run creates (shmq queues, kernel queues, POSIX queue names,
//! temporary namespaces, child processes) is registered here with the action
//! that removes it. The owner runs the action when it drops its [`Guard`]
//! (also when a panic unwinds); if the run is interrupted (Ctrl-C, SIGTERM,
//! SIGHUP), the thread started by [`install_signal_cleanup`] runs every action
//! still registered, then ends the process.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

type Action = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Registry {
    next: u64,
    actions: BTreeMap<u64, Action>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Runs its action when dropped, unless the signal thread ran it first.
#[must_use = "dropping the guard runs the cleanup at once"]
#[derive(Debug)]
pub struct Guard {
    id: u64,
}

/// Registers `action`, which removes something just created.
pub fn register(action: impl FnOnce() + Send + 'static) -> Guard {
    let mut r = registry();
    r.next += 1;
    let id = r.next;
    r.actions.insert(id, Box::new(action));
    Guard { id }
}

impl Guard {
    /// Forgets the action without running it (the resource was handed on).
    pub fn disarm(self) {
        registry().actions.remove(&self.id);
        std::mem::forget(self);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let action = registry().actions.remove(&self.id);
        if let Some(a) = action {
            a();
        }
    }
}

/// Runs every registered action (newest first: children before the queues
/// they use), as the signal thread does.
pub fn run_all() {
    loop {
        let next = registry().actions.pop_last();
        match next {
            Some((_, a)) => a(),
            None => break,
        }
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and starts a
/// thread that waits for them, runs [`run_all`] and exits with status
/// `128 + signal`. Call it first thing, before the process starts other
/// threads (they inherit the mask; a thread that does not block the signals
/// could take one and die without cleaning up). Idempotent.
pub fn install_signal_cleanup() -> std::io::Result<()> {
    static STARTED: OnceLock<()> = OnceLock::new();
    if STARTED.get().is_some() {
        return Ok(());
    }
    crate::sys::block_stop_signals()?;
    std::thread::Builder::new()
        .name("shmq-bench-cleanup".into())
        .spawn(|| {
            let sig = crate::sys::wait_stop_signal();
            eprintln!("\nshmq bench: interrupted; removing the queues it created");
            run_all();
            std::process::exit(128 + sig);
        })?;
    let _ = STARTED.set(());
    Ok(())
}

/// Creates a shmq namespace directory of its own (`shmq-bench-PID-TAG<n>`
/// in `/dev/shm`, or the temporary directory where there is none) whose
/// `config` file is `config`, removed with the returned guard.
pub(crate) fn temporary_namespace_dir(
    tag: &str,
    config: &str,
) -> std::io::Result<(std::path::PathBuf, Guard)> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!(
        "shmq-bench-{}-{tag}{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir)?;
    let removal = dir.clone();
    let guard = register(move || {
        let _ = std::fs::remove_dir_all(&removal);
    });
    std::fs::write(dir.join("config"), config)?;
    Ok((dir, guard))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn guards_run_once_and_disarm_forgets() {
        let n = Arc::new(AtomicUsize::new(0));
        let c = n.clone();
        let g = register(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        drop(g);
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let c = n.clone();
        register(move || {
            c.fetch_add(10, Ordering::SeqCst);
        })
        .disarm();
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }
}
