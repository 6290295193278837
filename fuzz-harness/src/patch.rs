//! Damaging a file's bytes as the fuzzer directs, before anything maps it.
//!
//! A queue file is about 150 KiB, nearly all zeros: random offsets would
//! nearly always hit unused memory. So most patches aim at the words that
//! hold data in the freshly made file (header fields, slot records, type
//! entries, nodes, bitmaps, cell states) and write what corrupts indices
//! best: small numbers, all-ones (`NIL`), a flipped bit, a neighbour's value,
//! a near value.

use crate::input::Input;

/// Offsets of the 8-byte words of `bytes` that are not zero.
fn data_words(bytes: &[u8]) -> Vec<usize> {
    bytes
        .chunks_exact(8)
        .enumerate()
        .filter(|(_, w)| u64::from_ne_bytes((*w).try_into().expect("8 bytes")) != 0)
        .map(|(i, _)| i * 8)
        .collect()
}

/// Applies up to 16 patches decoded from `input` to `bytes`.
pub(crate) fn apply(bytes: &mut [u8], input: &mut Input<'_>) {
    if bytes.len() < 8 {
        return;
    }
    let n = input.u8() % 17;
    if n == 0 {
        return;
    }
    let words = data_words(bytes);
    let word_at = |bytes: &[u8], off: usize| {
        u64::from_le_bytes(bytes[off..off + 8].try_into().expect("8 bytes"))
    };
    for _ in 0..n {
        let how = input.u8();
        let last = bytes.len() - 8;
        let off = match how & 3 {
            // A word that holds data, or one near it.
            0 | 1 if !words.is_empty() => {
                let w = words[input.u16() as usize % words.len()];
                if how & 3 == 1 {
                    (w as i64 + (input.u8() as i8 as i64) * 8).clamp(0, last as i64) as usize
                } else {
                    w
                }
            }
            // Anywhere, 8-byte aligned or not.
            _ => (input.u32() as usize % (last + 1)) & if how & 4 != 0 { !7 } else { !0 },
        };
        let old = word_at(bytes, off);
        let new = match (how >> 3) % 8 {
            0 => input.u64(),
            1 => input.u8() as u64,
            2 => old ^ 1 << (input.u8() % 64),
            3 if !words.is_empty() => word_at(bytes, words[input.u16() as usize % words.len()]),
            4 => old.wrapping_add(input.u8() as i8 as i64 as u64),
            // One 32-bit half: most indices are 32 bits wide.
            5 => {
                let v = input.u16() as u64;
                if input.bool() {
                    old & !0xffff_ffff | v
                } else {
                    old & 0xffff_ffff | v << 32
                }
            }
            6 => old | 0xffff_ffff,
            _ => 0,
        };
        bytes[off..off + 8].copy_from_slice(&new.to_le_bytes());
    }
}

/// A new length for a file of `len` bytes, chosen by `input`.
pub(crate) fn new_len(len: usize, input: &mut Input<'_>) -> usize {
    match input.u8() % 6 {
        0 => 0,
        1 => len.saturating_sub(1),
        2 => len + 1,
        3 => len.saturating_sub(4096),
        4 => len + 4096,
        _ => input.u32() as usize % (2 * len + 1),
    }
}
