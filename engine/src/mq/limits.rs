//! The limits of POSIX queues: the host's `/proc/sys/fs/mqueue/*` (as the
//! calling process sees them: its IPC namespace's), unless the namespace's
//! `config` file (`mq_msg_max = N`, ...) or the environment
//! (`SHMQ_MQ_MSG_MAX`, ...) says otherwise. Read at each `mq_open` that
//! creates a queue, as the kernel applies a new `fs.mqueue.*` value to the
//! calls that follow.

use std::path::Path;

/// The kernel's hard ceiling on `mq_maxmsg` (`HARD_MSGMAX`), even with
/// `CAP_SYS_RESOURCE`.
pub(crate) const HARD_MSGMAX: u64 = 65536;
/// The kernel's hard ceiling on `mq_msgsize` (`HARD_MSGSIZEMAX`).
pub(crate) const HARD_MSGSIZEMAX: u64 = 16 * 1024 * 1024;

/// Limits of POSIX queues (`/proc/sys/fs/mqueue/*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MqLimits {
    /// Largest `mq_maxmsg` an unprivileged creator may ask for (`msg_max`).
    pub msg_max: u64,
    /// Largest `mq_msgsize` an unprivileged creator may ask for
    /// (`msgsize_max`).
    pub msgsize_max: u64,
    /// `mq_maxmsg` of a queue created without attributes (`msg_default`,
    /// capped by `msg_max`).
    pub msg_default: u64,
    /// `mq_msgsize` of a queue created without attributes
    /// (`msgsize_default`, capped by `msgsize_max`).
    pub msgsize_default: u64,
    /// Most queues an unprivileged creator may find existing (`queues_max`).
    pub queues_max: u64,
}

impl Default for MqLimits {
    /// Linux's defaults.
    fn default() -> MqLimits {
        MqLimits {
            msg_max: 10,
            msgsize_max: 8192,
            msg_default: 10,
            msgsize_default: 8192,
            queues_max: 256,
        }
    }
}

const NAMES: [&str; 5] = [
    "msg_max",
    "msgsize_max",
    "msg_default",
    "msgsize_default",
    "queues_max",
];

impl MqLimits {
    /// The limits for namespace directory `dir`: each from `SHMQ_MQ_<NAME>`,
    /// else `mq_<name>` in `dir/config`, else the host's
    /// `/proc/sys/fs/mqueue/<name>`, else Linux's default.
    pub fn for_namespace(dir: &Path) -> MqLimits {
        MqLimits::for_namespace_on(dir, Path::new("/proc/sys/fs/mqueue"))
    }

    fn for_namespace_on(dir: &Path, sysctl_dir: &Path) -> MqLimits {
        let config = std::fs::read_to_string(dir.join("config")).unwrap_or_default();
        let mut l = MqLimits::default();
        for name in NAMES {
            let from_env = std::env::var(format!("SHMQ_MQ_{}", name.to_ascii_uppercase()))
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            let from_config = || {
                config.lines().find_map(|line| {
                    let line = line.split('#').next()?.trim();
                    let (n, v) = line.split_once('=')?;
                    (n.trim().strip_prefix("mq_") == Some(name))
                        .then(|| v.trim().parse::<u64>().ok())
                        .flatten()
                })
            };
            let from_host = || {
                std::fs::read_to_string(sysctl_dir.join(name))
                    .ok()
                    .and_then(|t| t.trim().parse::<u64>().ok())
            };
            if let Some(v) = from_env.or_else(from_config).or_else(from_host) {
                *l.field(name) = v;
            }
        }
        l
    }

    fn field(&mut self, name: &str) -> &mut u64 {
        match name {
            "msg_max" => &mut self.msg_max,
            "msgsize_max" => &mut self.msgsize_max,
            "msg_default" => &mut self.msg_default,
            "msgsize_default" => &mut self.msgsize_default,
            _ => &mut self.queues_max,
        }
    }

    /// `(mq_maxmsg, mq_msgsize)` of a queue created without attributes.
    pub fn defaults(&self) -> (u64, u64) {
        (
            self.msg_default.min(self.msg_max),
            self.msgsize_default.min(self.msgsize_max),
        )
    }

    /// Whether the kernel would accept attributes `(maxmsg, msgsize)` for a
    /// new queue from this caller (`mq_attr_ok`): both positive, within
    /// `msg_max` / `msgsize_max` unless the caller has `CAP_SYS_RESOURCE`,
    /// and within the hard ceilings in any case.
    pub(crate) fn accepts(&self, maxmsg: i64, msgsize: i64, privileged: bool) -> bool {
        if maxmsg <= 0 || msgsize <= 0 {
            return false;
        }
        let (m, s) = (maxmsg as u64, msgsize as u64);
        if privileged {
            m <= HARD_MSGMAX && s <= HARD_MSGSIZEMAX
        } else {
            m <= self.msg_max && s <= self.msgsize_max
        }
    }
}

/// Whether the calling process has `CAP_SYS_RESOURCE` in its effective set
/// (from `/proc/self/status`; `false` if that cannot be read).
pub(crate) fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    status_field("CapEff:")
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .is_some_and(|caps| caps >> CAP_SYS_RESOURCE & 1 != 0)
}

/// The calling process's umask (from `/proc/self/status`, which reads it
/// without changing it; `0o022` if that cannot be read).
pub(crate) fn umask() -> u32 {
    status_field("Umask:")
        .and_then(|v| u32::from_str_radix(&v, 8).ok())
        .unwrap_or(0o022)
}

fn status_field(name: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
}

/// Bytes a queue of `maxmsg` messages of `msgsize` bytes counts against
/// its owner's `RLIMIT_MSGQUEUE`, as the kernel's `mqueue_get_inode` counts
/// them on x86_64: the messages' bytes, plus a `struct msg_msg` (48 bytes)
/// per message and a `struct posix_msg_tree_node` (48 bytes) per message
/// up to `MQ_PRIO_MAX`.
pub(crate) fn rlimit_bytes(maxmsg: u64, msgsize: u64) -> u64 {
    const MSG_MSG: u64 = 48;
    const TREE_NODE: u64 = 48;
    let tree = maxmsg.saturating_mul(MSG_MSG).saturating_add(
        maxmsg
            .min(super::MQ_PRIO_MAX as u64)
            .saturating_mul(TREE_NODE),
    );
    maxmsg.saturating_mul(msgsize).saturating_add(tree)
}

/// Whether a new queue of `maxmsg` x `msgsize` fits the caller's
/// `RLIMIT_MSGQUEUE` beside the queues of `dir` that user `uid` owns (the
/// kernel's `EMFILE` check; it applies to privileged callers too). Queues
/// unlinked but still open are not counted (the kernel counts them until
/// their last descriptor goes), nor those the caller cannot open.
pub(crate) fn fits_rlimit(
    dir: &std::path::Path,
    stamp: u64,
    uid: u32,
    maxmsg: u64,
    msgsize: u64,
) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(limit) = rustix::process::getrlimit(rustix::process::Resource::Msgqueue).current
    else {
        return true; // RLIM_INFINITY
    };
    let mut used = rlimit_bytes(maxmsg, msgsize);
    if used > limit {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if meta.uid() != uid || !meta.is_file() {
            continue;
        }
        let Some((maxmsg, msgsize)) = super::attributes_at(&e.path(), stamp) else {
            continue;
        };
        used = used.saturating_add(rlimit_bytes(maxmsg, msgsize));
        if used > limit {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values_unless_config_or_environment_say_otherwise() {
        let base = std::env::temp_dir().join(format!("shmq-mq-limits-{}", std::process::id()));
        let (ns, sys) = (base.join("ns"), base.join("sys"));
        std::fs::create_dir_all(&ns).unwrap();
        std::fs::create_dir_all(&sys).unwrap();
        std::fs::write(sys.join("msg_max"), "20\n").unwrap();
        std::fs::write(sys.join("msgsize_max"), "4096\n").unwrap();
        std::fs::write(
            ns.join("config"),
            "msgmax = 100\nmq_msgsize_max = 512 # small\n",
        )
        .unwrap();
        let l = MqLimits::for_namespace_on(&ns, &sys);
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(l.msg_max, 20);
        assert_eq!(l.msgsize_max, 512);
        assert_eq!((l.msg_default, l.queues_max), (10, 256));
        assert_eq!(l.defaults(), (10, 512));
        assert!(l.accepts(20, 512, false));
        assert!(!l.accepts(21, 512, false));
        assert!(!l.accepts(20, 513, false));
        assert!(l.accepts(21, 513, true));
        assert!(!l.accepts(HARD_MSGMAX as i64 + 1, 1, true));
        assert!(!l.accepts(0, 1, true));
        assert!(!l.accepts(1, -1, true));
    }

    #[test]
    fn rlimit_bytes_as_the_kernel() {
        // 10 x 8192, the default queue: 81920 + 10 * 48 + 10 * 48.
        assert_eq!(super::rlimit_bytes(10, 8192), 82_880);
        // Tree nodes stop at MQ_PRIO_MAX.
        assert_eq!(
            super::rlimit_bytes(40_000, 1),
            40_000 + 40_000 * 48 + 32_768 * 48
        );
    }
}
