//! `ftok`, as glibc computes it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `ftok(path, proj_id)`: `(proj_id & 0xff) << 24 | (st_dev & 0xff) << 16 |
/// (st_ino & 0xffff)`, glibc's algorithm; an error when `path` cannot be
/// stat'ed (errno as `stat(2)`'s).
pub fn ftok(path: impl AsRef<Path>, proj_id: i32) -> std::io::Result<i32> {
    let m = std::fs::metadata(path)?;
    Ok(
        ((proj_id as u32 & 0xff) << 24 | (m.dev() as u32 & 0xff) << 16 | (m.ino() as u32 & 0xffff))
            as i32,
    )
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    #[test]
    fn matches_glibc() {
        let path = std::ffi::CString::new("/").unwrap();
        // SAFETY: a valid NUL-terminated path.
        let expected = unsafe { libc::ftok(path.as_ptr(), b'x' as i32) };
        assert_eq!(super::ftok("/", b'x' as i32).unwrap(), expected);
        assert!(super::ftok("/no/such/path", 1).is_err());
    }
}
