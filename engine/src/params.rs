//! System parameters of a namespace (`msgmax`, `msgmnb`, `msgmni`, `msgtql`),
//! fixed when the namespace is created: from the environment, else the
//! namespace's `config` file, else (for `msgmax`, `msgmnb` and `msgmni`) the
//! host's `/proc/sys/kernel/msg*` as the creating process sees them (its IPC
//! namespace's), else Linux's defaults.

use crate::layout::{QBYTES_LIMIT, SLOTS_LIMIT};
use std::path::Path;

/// Limits of a namespace, as `ipcs -l` shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message text, in bytes (`msgmax`; by default the host's
    /// `kernel.msgmax`, 8192 if it cannot be read).
    pub msgmax: u64,
    /// Default `qbytes` of a new queue (`msgmnb`; by default the host's
    /// `kernel.msgmnb`, 16384 if it cannot be read).
    pub msgmnb: u64,
    /// Most queues in the namespace (`msgmni`; by default the host's
    /// `kernel.msgmni`, 32000 if it cannot be read).
    pub msgmni: u32,
    /// Messages in the whole namespace; 0 = unlimited (the default). Like
    /// Linux, which reports but does not enforce it.
    pub msgtql: u64,
    /// Largest `qbytes` IPC_SET may set, even for root (`SHMQ_QBYTES_MAX`,
    /// default `4 * msgmnb`): a queue's memory is sized for it at creation.
    pub qbytes_max: u64,
    /// Threads that may use one queue at once (`SHMQ_SLOTS`, default 1024).
    pub slots: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            msgmax: 8192,
            msgmnb: 16384,
            msgmni: 32000,
            msgtql: 0,
            qbytes_max: 4 * 16384,
            slots: 1024,
        }
    }
}

/// The names of the parameters, in the config file and (upper-cased, with a
/// `SHMQ_` prefix) in the environment.
const NAMES: [&str; 6] = [
    "msgmax",
    "msgmnb",
    "msgmni",
    "msgtql",
    "qbytes_max",
    "slots",
];

/// Where the host's limits are: the kernel's, for the IPC namespace of the
/// process that reads them.
const HOST_SYSCTL_DIR: &str = "/proc/sys/kernel";

/// The largest `msgmni` and `msgmax` a namespace can have (the id table and
/// a queue's cells are addressed with these).
const MSGMNI_LIMIT: u32 = 1 << 20;
const MSGMAX_LIMIT: u64 = 1 << 26;

/// One host limit (`/proc/sys/kernel/NAME` under `sysctl_dir`), brought into
/// what shmq can address: `None` if it cannot be read or is not a number.
/// The kernel accepts 0 and values up to `INT_MAX`; shmq needs at least 1
/// and at most `max`.
fn host_value(sysctl_dir: &Path, name: &str, max: u64) -> Option<u64> {
    let text = std::fs::read_to_string(sysctl_dir.join(name)).ok()?;
    let v: i64 = text.trim().parse().ok()?;
    Some((v.max(1) as u64).min(max))
}

impl Limits {
    /// Linux's defaults with `msgmax`, `msgmnb` and `msgmni` replaced by the
    /// host's (`sysctl_dir/msgmax`, ...) where they can be read, clamped to
    /// what shmq can address (`msgmni` 1..=2^20, `msgmax` 1..=2^26, `msgmnb`
    /// 1..=`QBYTES_LIMIT`).
    pub(crate) fn from_host(sysctl_dir: &Path) -> Limits {
        let mut l = Limits::default();
        if let Some(v) = host_value(sysctl_dir, "msgmax", MSGMAX_LIMIT) {
            l.msgmax = v;
        }
        if let Some(v) = host_value(sysctl_dir, "msgmnb", QBYTES_LIMIT) {
            l.msgmnb = v;
        }
        if let Some(v) = host_value(sysctl_dir, "msgmni", MSGMNI_LIMIT as u64) {
            l.msgmni = v as u32;
        }
        l
    }

    /// Limits for a new namespace in `dir`: the host's (see
    /// [`Limits::from_host`]), then `dir/config` (`name = value` lines, `#`
    /// comments), then `SHMQ_*` variables.
    pub(crate) fn for_new_namespace(dir: &Path) -> Result<Limits, String> {
        Limits::for_new_namespace_on(dir, Path::new(HOST_SYSCTL_DIR))
    }

    /// [`Limits::for_new_namespace`] with the host's limits read from
    /// `sysctl_dir` (tests give a directory of their own).
    fn for_new_namespace_on(dir: &Path, sysctl_dir: &Path) -> Result<Limits, String> {
        let mut l = Limits::from_host(sysctl_dir);
        let (mut qbytes_max_given, mut msgmnb_given) = (false, false);
        if let Ok(text) = std::fs::read_to_string(dir.join("config")) {
            for (n, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let (name, value) = line
                    .split_once('=')
                    .ok_or_else(|| format!("config line {}: expected name = value", n + 1))?;
                if name.trim().starts_with("mq_") {
                    continue; // POSIX queues' limits (`mq::limits`), read there
                }
                qbytes_max_given |= name.trim() == "qbytes_max";
                msgmnb_given |= name.trim() == "msgmnb";
                l.set(name.trim(), value.trim())
                    .map_err(|e| format!("config line {}: {e}", n + 1))?;
            }
        }
        for name in NAMES {
            let var = format!("SHMQ_{}", name.to_ascii_uppercase());
            if let Ok(v) = std::env::var(&var) {
                qbytes_max_given |= name == "qbytes_max";
                msgmnb_given |= name == "msgmnb";
                l.set(name, &v).map_err(|e| format!("{var}: {e}"))?;
            }
        }
        if !qbytes_max_given {
            l.qbytes_max = (4 * l.msgmnb).clamp(1, QBYTES_LIMIT);
        } else if !msgmnb_given && l.qbytes_max != 0 {
            // A `qbytes_max` given explicitly caps the host's (or the
            // default) `msgmnb`, so that a config written for one host does
            // not become invalid on a host with a larger `kernel.msgmnb`.
            l.msgmnb = l.msgmnb.min(l.qbytes_max);
        }
        l.validate()?;
        Ok(l)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        if !NAMES.contains(&name) {
            return Err(format!(
                "unknown parameter {name:?} (known: {})",
                NAMES.join(", ")
            ));
        }
        let v: u64 = value
            .parse()
            .map_err(|_| format!("{value:?} is not a number"))?;
        match name {
            "msgmax" => self.msgmax = v,
            "msgmnb" => self.msgmnb = v,
            "msgmni" => {
                self.msgmni = u32::try_from(v).map_err(|_| "msgmni too large".to_string())?
            }
            "msgtql" => self.msgtql = v,
            "qbytes_max" => self.qbytes_max = v,
            "slots" => self.slots = u32::try_from(v).map_err(|_| "slots too large".to_string())?,
            _ => {
                return Err(format!(
                    "unknown parameter {name:?} (known: {})",
                    NAMES.join(", ")
                ))
            }
        }
        Ok(())
    }

    /// Checks the limits against what the layout can address.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.msgmax == 0 || self.msgmax > MSGMAX_LIMIT {
            return Err(format!("msgmax {} out of range 1..=67108864", self.msgmax));
        }
        if self.msgmnb == 0 || self.msgmnb > self.qbytes_max {
            return Err(format!(
                "msgmnb {} out of range 1..=qbytes_max ({})",
                self.msgmnb, self.qbytes_max
            ));
        }
        if self.qbytes_max > QBYTES_LIMIT {
            return Err(format!(
                "qbytes_max {} above {QBYTES_LIMIT}",
                self.qbytes_max
            ));
        }
        if self.msgmni == 0 || self.msgmni > MSGMNI_LIMIT {
            return Err(format!("msgmni {} out of range 1..=1048576", self.msgmni));
        }
        if self.slots == 0 || self.slots > SLOTS_LIMIT {
            return Err(format!(
                "slots {} out of range 1..={SLOTS_LIMIT}",
                self.slots
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of its own under the temporary directory, removed when
    /// dropped.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(what: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("shmq-params-{what}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A stand-in for `/proc/sys/kernel` holding `values`.
    fn sysctls(what: &str, values: &[(&str, &str)]) -> TempDir {
        let d = TempDir::new(what);
        for (name, v) in values {
            std::fs::write(d.0.join(name), format!("{v}\n")).unwrap();
        }
        d
    }

    #[test]
    fn config_file_sets_limits_and_rejects_nonsense() {
        let dir = TempDir::new("config");
        let host = sysctls("config-host", &[]);
        let dir = &dir.0;
        std::fs::write(dir.join("config"), "# comment\nmsgmax = 100\nmsgmni=50\n").unwrap();
        let l = Limits::for_new_namespace_on(dir, &host.0).unwrap();
        assert_eq!((l.msgmax, l.msgmni, l.msgmnb), (100, 50, 16384));
        std::fs::write(dir.join("config"), "msgmax = lots\n").unwrap();
        assert!(Limits::for_new_namespace_on(dir, &host.0)
            .unwrap_err()
            .contains("line 1"));
        std::fs::write(dir.join("config"), "colour = blue\n").unwrap();
        assert!(Limits::for_new_namespace_on(dir, &host.0)
            .unwrap_err()
            .contains("unknown parameter"));
    }

    #[test]
    fn a_new_namespace_takes_the_hosts_limits_unless_its_config_says_otherwise() {
        let dir = TempDir::new("host");
        let host = sysctls(
            "host-sysctl",
            &[("msgmax", "2048"), ("msgmnb", "4096"), ("msgmni", "100")],
        );
        let l = Limits::for_new_namespace_on(&dir.0, &host.0).unwrap();
        assert_eq!((l.msgmax, l.msgmnb, l.msgmni), (2048, 4096, 100));
        assert_eq!((l.msgtql, l.qbytes_max, l.slots), (0, 4 * 4096, 1024));
        // The config file wins over the host, parameter by parameter.
        std::fs::write(dir.0.join("config"), "msgmni = 7\n").unwrap();
        let l = Limits::for_new_namespace_on(&dir.0, &host.0).unwrap();
        assert_eq!((l.msgmax, l.msgmnb, l.msgmni), (2048, 4096, 7));
        // A qbytes_max given below the host's msgmnb caps it ...
        std::fs::write(dir.0.join("config"), "qbytes_max = 1024\n").unwrap();
        let l = Limits::for_new_namespace_on(&dir.0, &host.0).unwrap();
        assert_eq!((l.msgmnb, l.qbytes_max), (1024, 1024));
        // ... but an msgmnb given above it is an error, as it was.
        std::fs::write(dir.0.join("config"), "qbytes_max = 1024\nmsgmnb = 2048\n").unwrap();
        assert!(Limits::for_new_namespace_on(&dir.0, &host.0)
            .unwrap_err()
            .contains("msgmnb 2048"));
    }

    #[test]
    fn host_limits_that_cannot_be_read_are_the_defaults_and_others_are_clamped() {
        let d = Limits::default();
        // Missing files, and text that is not a number.
        let host = sysctls("host-bad", &[("msgmax", "lots"), ("msgmnb", "")]);
        let l = Limits::from_host(&host.0);
        assert_eq!(
            (l.msgmax, l.msgmnb, l.msgmni),
            (d.msgmax, d.msgmnb, d.msgmni)
        );
        // 0 (which the kernel accepts) and values beyond what shmq addresses.
        let host = sysctls(
            "host-range",
            &[
                ("msgmax", "0"),
                ("msgmnb", "2147483647"),
                ("msgmni", "16777216"),
            ],
        );
        let l = Limits::from_host(&host.0);
        assert_eq!(
            (l.msgmax, l.msgmnb, l.msgmni),
            (1, QBYTES_LIMIT, MSGMNI_LIMIT)
        );
        let host = sysctls("host-big", &[("msgmax", "2147483647")]);
        assert_eq!(Limits::from_host(&host.0).msgmax, MSGMAX_LIMIT);
        // The real host's, as this process sees them.
        let real = Limits::from_host(Path::new(HOST_SYSCTL_DIR));
        if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/msgmni") {
            let v: u64 = v.trim().parse().unwrap();
            assert_eq!(real.msgmni as u64, v.clamp(1, MSGMNI_LIMIT as u64));
        }
    }
}
