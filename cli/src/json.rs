//! `shmq ls --json`: the namespace as one JSON object, written by hand.

use crate::ls::{group, user, Row};
use shmq::Namespace;
use std::fmt::Write as _;

/// `s` as a JSON string literal (RFC 8259 escaping).
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    shmq_benches::json::write_str(&mut out, s);
    out
}

/// The namespace, its limits, a summary and every queue, on one line:
///
/// `{"namespace": DIR, "limits": {...}, "summary": {...}, "queues": [{...}]}`
pub(crate) fn listing(ns: &Namespace, rows: &[Row]) -> String {
    let l = ns.limits();
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"namespace\":{},\"limits\":{{\"msgmni\":{},\"msgmax\":{},\"msgmnb\":{},\"msgtql\":{}}}",
        string(&ns.dir().to_string_lossy()),
        l.msgmni,
        l.msgmax,
        l.msgmnb,
        l.msgtql
    );
    let messages: u64 = rows.iter().map(|r| r.stat.qnum).sum();
    let bytes: u64 = rows.iter().map(|r| r.stat.cbytes).sum();
    let _ = write!(
        out,
        ",\"summary\":{{\"queues\":{},\"messages\":{messages},\"bytes\":{bytes}}}",
        rows.len()
    );
    out.push_str(",\"queues\":[");
    for (i, Row { id, stat: s }) in rows.iter().enumerate() {
        let p = &s.perm;
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"key\":{},\"msqid\":{id},\"owner\":{},\"group\":{},\"creator\":{},\"creator_group\":{},\
             \"uid\":{},\"gid\":{},\"cuid\":{},\"cgid\":{},\"perms\":\"{:o}\",\"mode\":{},\"seq\":{},\
             \"used_bytes\":{},\"messages\":{},\"qbytes\":{},\"lspid\":{},\"lrpid\":{},\
             \"stime\":{},\"rtime\":{},\"ctime\":{}}}",
            string(&format!("0x{:08x}", p.key as u32)),
            string(&user(p.uid)),
            string(&group(p.gid)),
            string(&user(p.cuid)),
            string(&group(p.cgid)),
            p.uid,
            p.gid,
            p.cuid,
            p.cgid,
            p.mode & 0o777,
            p.mode & 0o777,
            p.seq,
            s.cbytes,
            s.qnum,
            s.qbytes,
            s.lspid,
            s.lrpid,
            s.stime,
            s.rtime,
            s.ctime
        );
    }
    out.push(']');
    crate::mq::json(&mut out, ns);
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::string;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("plain"), "\"plain\"");
        assert_eq!(string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(string("\n\t\u{1}"), "\"\\n\\t\\u0001\"");
        assert_eq!(string("é"), "\"é\"");
    }
}
