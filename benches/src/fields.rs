//! The line protocol between a parent and its children: a command or an
//! answer is one line, a word followed by `key=value` fields
//! (`ping n=1000 size=64`, `ok n=1000 p50=812`). Values hold no spaces.

use std::collections::BTreeMap;
use std::io;

/// A parsed line: its first word and its `key=value` fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    /// The first word (the command, or `ok`).
    pub word: String,
    map: BTreeMap<String, String>,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Fields {
    /// Parses `word k=v k=v ...`.
    pub fn parse(line: &str) -> io::Result<Fields> {
        let mut parts = line.split_whitespace();
        let word = parts.next().unwrap_or("").to_string();
        let mut map = BTreeMap::new();
        for p in parts {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| bad(format!("expected key=value, got {p:?} in {line:?}")))?;
            map.insert(k.to_string(), v.to_string());
        }
        Ok(Fields { word, map })
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// The value of `key`, which must be present.
    pub fn str(&self, key: &str) -> io::Result<&str> {
        self.get(key)
            .ok_or_else(|| bad(format!("field {key:?} missing in {:?}", self.word)))
    }

    /// The value of `key` as an unsigned number.
    pub fn u64(&self, key: &str) -> io::Result<u64> {
        let v = self.str(key)?;
        v.parse()
            .map_err(|_| bad(format!("field {key}={v:?} is not a number")))
    }

    /// The value of `key` as a signed number.
    pub fn i64(&self, key: &str) -> io::Result<i64> {
        let v = self.str(key)?;
        v.parse()
            .map_err(|_| bad(format!("field {key}={v:?} is not a number")))
    }

    /// The value of `key` as a `usize`.
    pub fn usize(&self, key: &str) -> io::Result<usize> {
        Ok(self.u64(key)? as usize)
    }

    /// The value of `key` as a comma-separated list of signed numbers.
    pub fn i64_list(&self, key: &str) -> io::Result<Vec<i64>> {
        self.str(key)?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_err(|_| bad(format!("field {key}: {s:?} is not a number")))
            })
            .collect()
    }

    /// The value of `key` as a flag (`1` or `0`), `false` when absent.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_words_and_fields() {
        let f = Fields::parse("ping n=10 size=64 types=1,2 parked=1").unwrap();
        assert_eq!(f.word, "ping");
        assert_eq!(f.u64("n").unwrap(), 10);
        assert_eq!(f.i64_list("types").unwrap(), vec![1, 2]);
        assert!(f.flag("parked"));
        assert!(!f.flag("absent"));
        assert!(f.u64("absent").is_err());
        assert!(Fields::parse("ping novalue").is_err());
        assert!(Fields::parse("ping n=x").unwrap().u64("n").is_err());
    }
}
