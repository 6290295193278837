//! What a receive asks for and what it gets: the small types that the data
//! path (`transfer`) and the System V layer (`queue`) share, below both.

/// Which message a receive wants (`msgtyp` and MSG_EXCEPT, decoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Selector {
    /// `msgtyp == 0`: the oldest message.
    Any,
    /// `msgtyp > 0`: the oldest message of this type.
    Type(i64),
    /// `msgtyp > 0` with `MSG_EXCEPT`: the oldest message of any other type.
    Except(i64),
    /// `msgtyp < 0`: the oldest message of the lowest type `<= |msgtyp|`.
    AtMost(i64),
}

impl Selector {
    /// Decodes `msgtyp` and `MSG_EXCEPT` as Linux's `convert_mode` does.
    pub fn from_msgtyp(msgtyp: i64, except: bool) -> Selector {
        if msgtyp == 0 {
            Selector::Any
        } else if msgtyp < 0 {
            // -LONG_MIN overflows; the kernel clamps it the same way.
            Selector::AtMost(msgtyp.checked_neg().unwrap_or(i64::MAX))
        } else if except {
            Selector::Except(msgtyp)
        } else {
            Selector::Type(msgtyp)
        }
    }

    pub(crate) fn matches(self, mtype: i64) -> bool {
        match self {
            Selector::Any => true,
            Selector::Type(t) => mtype == t,
            Selector::Except(t) => mtype != t,
            Selector::AtMost(t) => mtype <= t,
        }
    }
}

/// A received message: its type and the number of text bytes copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The message's `mtype`.
    pub mtype: i64,
    /// Bytes copied into the buffer.
    pub len: usize,
}
