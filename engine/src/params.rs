//! System parameters of a namespace (`msgmax`, `msgmnb`, `msgmni`, `msgtql`),
//! fixed when the namespace is created, from the environment or the
//! namespace's `config` file.

use crate::layout::{QBYTES_LIMIT, SLOTS_LIMIT};
use std::path::Path;

/// Limits of a namespace, as `ipcs -l` shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message text, in bytes (`msgmax`, default 8192).
    pub msgmax: u64,
    /// Default `qbytes` of a new queue (`msgmnb`, default 16384).
    pub msgmnb: u64,
    /// Most queues in the namespace (`msgmni`, default 32000).
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

impl Limits {
    /// Limits for a new namespace in `dir`: defaults, then `dir/config`
    /// (`name = value` lines, `#` comments), then `SHMQ_*` variables.
    pub(crate) fn for_new_namespace(dir: &Path) -> Result<Limits, String> {
        let mut l = Limits::default();
        let mut qbytes_max_given = false;
        if let Ok(text) = std::fs::read_to_string(dir.join("config")) {
            for (n, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let (name, value) = line
                    .split_once('=')
                    .ok_or_else(|| format!("config line {}: expected name = value", n + 1))?;
                qbytes_max_given |= name.trim() == "qbytes_max";
                l.set(name.trim(), value.trim())
                    .map_err(|e| format!("config line {}: {e}", n + 1))?;
            }
        }
        for name in NAMES {
            let var = format!("SHMQ_{}", name.to_ascii_uppercase());
            if let Ok(v) = std::env::var(&var) {
                qbytes_max_given |= name == "qbytes_max";
                l.set(name, &v).map_err(|e| format!("{var}: {e}"))?;
            }
        }
        if !qbytes_max_given {
            l.qbytes_max = (4 * l.msgmnb).clamp(1, QBYTES_LIMIT);
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
        if self.msgmax == 0 || self.msgmax > i32::MAX as u64 || self.msgmax > (1 << 26) {
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
        if self.msgmni == 0 || self.msgmni > 1 << 20 {
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

    #[test]
    fn config_file_sets_limits_and_rejects_nonsense() {
        let dir = std::env::temp_dir().join(format!("shmq-params-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config"), "# comment\nmsgmax = 100\nmsgmni=50\n").unwrap();
        let l = Limits::for_new_namespace(&dir).unwrap();
        assert_eq!((l.msgmax, l.msgmni, l.msgmnb), (100, 50, 16384));
        std::fs::write(dir.join("config"), "msgmax = lots\n").unwrap();
        assert!(Limits::for_new_namespace(&dir)
            .unwrap_err()
            .contains("line 1"));
        std::fs::write(dir.join("config"), "colour = blue\n").unwrap();
        assert!(Limits::for_new_namespace(&dir)
            .unwrap_err()
            .contains("unknown parameter"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
