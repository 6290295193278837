//! Parsers for argument values clap does not know: keys, modes, durations.

use std::fmt;
use std::time::Duration;

/// A queue key as the user typed it, and its value.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    /// The key (`key_t`).
    pub(crate) value: i32,
    /// The argument as typed (ipcrm quotes it back in its messages).
    pub(crate) typed: String,
}

impl fmt::Display for Key {
    /// `0x1234`, however it was typed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.value as u32)
    }
}

/// Parses a key as `strtoul(s, _, 0)` does: `0x` hex, a leading `0` octal,
/// else decimal; a leading `-` negates; the value must fit in 32 bits.
pub(crate) fn parse_key(s: &str) -> Result<Key, String> {
    let bad = || format!("invalid key {s:?}: expected 0x hexadecimal, 0 octal or decimal");
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, h)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(bad());
    }
    let v = u32::from_str_radix(digits, radix)
        .map_err(|_| format!("key {s:?} does not fit in 32 bits"))?;
    let value = if negative {
        if v > 1 << 31 {
            return Err(format!("key {s:?} does not fit in 32 bits"));
        }
        (v as i32).wrapping_neg()
    } else {
        v as i32
    };
    Ok(Key {
        value,
        typed: s.to_string(),
    })
}

/// Parses a key that can name a queue: not 0, which is `IPC_PRIVATE` (a
/// `msgget` with it always creates a new queue that no key finds).
pub(crate) fn parse_public_key(s: &str) -> Result<Key, String> {
    let key = parse_key(s)?;
    if key.value == 0 {
        return Err("key 0 is IPC_PRIVATE, which names no queue (use a non-zero key)".into());
    }
    Ok(key)
}

/// Parses a mode in octal (`660`, `0660`, `0o660`), at most `0777`.
pub(crate) fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        Ok(_) => Err(format!("mode {s} has bits beyond 0777")),
        Err(_) => Err(format!("mode {s:?} is not an octal number")),
    }
}

/// Parses a duration: a number (fractions allowed) and a unit among `us`,
/// `ms`, `s`, `m`, `h`; a bare number is in seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?} (use us, ms, s, m or h)"
            ))
        }
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 1s, 2m)"))?;
    Duration::try_from_secs_f64(n * scale).map_err(|_| format!("duration {s:?} out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_like_strtoul_base_0() {
        assert_eq!(parse_key("0x1234").unwrap().value, 0x1234);
        assert_eq!(parse_key("0X1234").unwrap().value, 0x1234);
        assert_eq!(parse_key("4660").unwrap().value, 0x1234);
        assert_eq!(parse_key("010").unwrap().value, 8);
        assert_eq!(parse_key("0").unwrap().value, 0);
        assert_eq!(parse_key("0xffffffff").unwrap().value, -1);
        assert_eq!(parse_key("-1").unwrap().value, -1);
        assert_eq!(parse_key("-2147483648").unwrap().value, i32::MIN);
        for bad in [
            "",
            "0x",
            "12a",
            "0x1g",
            "09",
            "0x100000000",
            "-2147483649",
            "--1",
        ] {
            assert!(parse_key(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_key("4660").unwrap().to_string(), "0x1234");
    }

    #[test]
    fn modes_are_octal_up_to_0777() {
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("0o777"), Ok(0o777));
        assert!(parse_mode("1777").is_err());
        assert!(parse_mode("689").is_err());
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        for bad in ["", "s", "1x", "-1s", "1e3s", "1..2s", "1 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
