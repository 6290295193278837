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
}
