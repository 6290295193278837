//! The child side of a session: a process started by [`crate::Session`]
//! opens its end of the channel, says `ready`, then runs the commands its
//! parent writes on its standard input, one answer line per command on its
//! standard output (`ok key=value...` or `err message`).
//!
//! A program that can be a child calls [`serve_if_child`] first thing in
//! `main`: it returns at once in a normal run, and never returns in a child.
//!
//! # Commands
//! | command | does | answers |
//! | --- | --- | --- |
//! | `ping n W size parked peer` | `W` untimed then `n` timed round trips (send type 1, receive type 2) | latency summary, `total` |
//! | `pong n size parked peer` | `n` echoes (receive type 1, send type 2) | |
//! | `produce n size types` | sends `n` messages, cycling through `types` | `start`, `end` |
//! | `stop size types` | sends one stop message per entry of `types` | |
//! | `consume size mtype` | receives until a stop message | `n`, `bytes`, `stopped` (the clock when the stop arrived) |
//! | `fill d order size` | sends types `1..=d` (`asc`) or `d..=1` (`desc`) without waiting | `sent` |
//! | `time sel max budget_ms size` | times receives of `msgtyp = sel`, re-sending each one untimed | latency summary, `total` |
//! | `prio prios depth max budget_ms size` | fills its own queue with `depth` messages of priorities `0..prios` in turn, then times receives (the highest priority), re-sending each one untimed with its priority | latency summary, `total` |
//! | `drain` | receives everything without waiting | `n` |
//! | `churn size` | fills the queue until full, then drains it | `n` |
//! | `rss` | this process's memory figures | `before`, `now`, `shmem`, `file`, `anon` (bytes) |
//!
//! In *parked* round trips, each side waits (untimed) until its peer sleeps
//! in the kernel (`S` in `/proc/PID/stat`) before it sends, so that every
//! message goes through the wake-up path; the pong side writes the time it
//! spent so into the message and the ping side subtracts it.

use crate::clock::now_ns;
use crate::fields::Fields;
use crate::mechanism::{ChannelConfig, End, Endpoint, Mechanism};
use crate::stats::Summary;
use std::collections::VecDeque;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// Environment of a child: the mechanism's name (its presence marks a child).
pub const ENV_MECH: &str = "SHMQ_BENCH_MECH";
/// Environment of a child: its end, `A` or `B`.
pub const ENV_END: &str = "SHMQ_BENCH_END";
/// Environment of a child: the channel's description.
pub const ENV_SPEC: &str = "SHMQ_BENCH_SPEC";
/// Environment of a child: the channel's configuration, as fields.
pub const ENV_CFG: &str = "SHMQ_BENCH_CFG";
/// Environment of a child: the parent's pid (the child ends if it changes).
pub const ENV_PARENT: &str = "SHMQ_BENCH_PARENT";
/// Environment of a child: the CPU to pin itself to, if set.
pub const ENV_CPU: &str = "SHMQ_BENCH_CPU";

/// First byte of a data message.
const DATA: u8 = 0;
/// First byte of a stop message.
const STOP: u8 = 1;

/// If this process was started as a benchmark child, serves its parent and
/// exits; otherwise returns at once. `extra` adds mechanisms beyond the
/// built-in ones (the criterion suite adds iceoryx2).
pub fn serve_if_child(extra: &[&dyn Mechanism]) {
    let Ok(name) = std::env::var(ENV_MECH) else {
        return;
    };
    let code = match serve(&name, extra) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shmq bench child ({name}): {e}");
            1
        }
    };
    std::process::exit(code);
}

fn env(name: &str) -> io::Result<String> {
    std::env::var(name).map_err(|_| io::Error::other(format!("{name} not set")))
}

/// Encodes a configuration for [`ENV_CFG`].
pub(crate) fn cfg_to_env(cfg: &ChannelConfig) -> String {
    format!(
        "cfg size={} cap={} a={} b={}",
        cfg.msg_size,
        cfg.capacity.map_or(-1, |c| c as i64),
        cfg.a_ends,
        cfg.b_ends
    )
}

fn cfg_from_env(s: &str) -> io::Result<ChannelConfig> {
    let f = Fields::parse(s)?;
    let cap = f.i64("cap")?;
    Ok(ChannelConfig {
        msg_size: f.usize("size")?,
        capacity: (cap >= 0).then_some(cap as usize),
        a_ends: f.usize("a")?,
        b_ends: f.usize("b")?,
    })
}

fn serve(name: &str, extra: &[&dyn Mechanism]) -> io::Result<()> {
    // End with the parent, whatever this process is doing then.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    let parent: u32 = env(ENV_PARENT)?.parse().map_err(io::Error::other)?;
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32) != Some(parent) {
        return Err(io::Error::other("parent already gone"));
    }
    if let Ok(cpu) = std::env::var(ENV_CPU) {
        let cpu: usize = cpu.parse().map_err(io::Error::other)?;
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        rustix::thread::sched_setaffinity(None, &set)?;
    }
    let rss_before = memory()?.rss;
    let builtin = crate::mech::builtin(None);
    let mech: &dyn Mechanism = match builtin.iter().find(|m| m.name() == name) {
        Some(m) => m.as_ref(),
        None => *extra
            .iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| io::Error::other(format!("unknown mechanism {name:?}")))?,
    };
    let end = End::parse(&env(ENV_END)?).ok_or_else(|| io::Error::other("bad end"))?;
    let cfg = cfg_from_env(&env(ENV_CFG)?)?;
    let mut ep = mech.open(&env(ENV_SPEC)?, end, &cfg)?;
    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut ctx = Ctx {
        rss_before,
        sleep_waits: 0,
        order: VecDeque::new(),
    };
    for line in io::stdin().lock().lines() {
        let line = line?;
        let cmd = Fields::parse(&line)?;
        if cmd.word == "exit" {
            break;
        }
        let answer = match run(&mut *ep, &cmd, &mut ctx) {
            Ok(fields) => format!("ok {fields}"),
            Err(e) => format!("err {}", e.to_string().replace('\n', " ")),
        };
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}

struct Ctx {
    rss_before: u64,
    /// Times a parked side gave up waiting for its peer to sleep.
    sleep_waits: u64,
    /// The types queued by `fill`, oldest first (kept in step by `time`).
    order: VecDeque<i64>,
}

fn check_len(got: usize, want: usize) -> io::Result<()> {
    if got != want {
        return Err(io::Error::other(format!(
            "received {got} bytes, expected {want}"
        )));
    }
    Ok(())
}

fn run(ep: &mut dyn Endpoint, cmd: &Fields, ctx: &mut Ctx) -> io::Result<String> {
    match cmd.word.as_str() {
        "ping" => ping(ep, cmd, ctx),
        "pong" => pong(ep, cmd, ctx),
        "produce" => {
            let (n, size) = (cmd.u64("n")?, cmd.usize("size")?);
            let types = cmd.i64_list("types")?;
            let mut msg = vec![0xA5u8; size];
            msg[0] = DATA;
            let start = now_ns();
            for i in 0..n {
                ep.send(types[i as usize % types.len()], &msg)?;
            }
            Ok(format!("start={start} end={}", now_ns()))
        }
        "stop" => {
            let mut msg = vec![0u8; cmd.usize("size")?];
            msg[0] = STOP;
            for t in cmd.i64_list("types")? {
                ep.send(t, &msg)?;
            }
            Ok(String::new())
        }
        "consume" => {
            let (size, mtype) = (cmd.usize("size")?, cmd.i64("mtype")?);
            let (mut n, mut bytes) = (0u64, 0u64);
            // The clock is read once, when the stop message arrives (see
            // `drivers::throughput`), not after every message.
            let stopped = loop {
                let m = ep.recv(mtype)?;
                check_len(m.len(), size)?;
                if m[0] == STOP {
                    break now_ns();
                }
                n += 1;
                bytes += m.len() as u64;
            };
            Ok(format!("n={n} bytes={bytes} stopped={stopped}"))
        }
        "fill" => {
            let (d, size) = (cmd.i64("d")?, cmd.usize("size")?);
            let msg = vec![0x5Au8; size];
            let desc = cmd.get("order") == Some("desc");
            let mut sent = 0u64;
            for i in 1..=d {
                let t = if desc { d + 1 - i } else { i };
                if !ep.try_send(t, &msg)? {
                    break;
                }
                ctx.order.push_back(t);
                sent += 1;
            }
            Ok(format!("sent={sent}"))
        }
        "time" => time_typed(ep, cmd, &mut ctx.order),
        "prio" => time_prio(ep, cmd),
        "drain" => {
            // Oldest first, each by its exact type: O(1) per receive for the
            // kernel (the type is at the head of its list) and for shmq; a
            // type-0 drain would cost shmq O(live types) per receive.
            let mut n = 0u64;
            while let Some(t) = ctx.order.pop_front() {
                if ep.try_recv(t)?.is_none() {
                    return Err(io::Error::other(format!("drain: no message of type {t}")));
                }
                n += 1;
            }
            while ep.try_recv(0)?.is_some() {
                n += 1;
            }
            Ok(format!("n={n}"))
        }
        "churn" => {
            let msg = vec![0x3Cu8; cmd.usize("size")?];
            let mut n = 0u64;
            while ep.try_send(1, &msg)? {
                n += 1;
            }
            while ep.try_recv(0)?.is_some() {}
            Ok(format!("n={n}"))
        }
        "rss" => {
            let m = memory()?;
            Ok(format!(
                "before={} now={} shmem={} file={} anon={}",
                ctx.rss_before, m.rss, m.shmem, m.file, m.anon
            ))
        }
        w => Err(io::Error::other(format!("unknown command {w:?}"))),
    }
}

fn ping(ep: &mut dyn Endpoint, cmd: &Fields, ctx: &mut Ctx) -> io::Result<String> {
    let (n, warmup, size) = (cmd.u64("n")?, cmd.u64("warmup")?, cmd.usize("size")?);
    let parked = cmd.flag("parked");
    let mut peer = if parked {
        Some(Peer::open(cmd.u64("peer")? as u32)?)
    } else {
        None
    };
    let msg = vec![0xA5u8; size];
    let mut samples = Vec::with_capacity(n as usize);
    let mut begun = 0;
    for i in 0..warmup + n {
        if i == warmup {
            begun = now_ns();
        }
        if let Some(p) = &mut peer {
            ctx.sleep_waits += p.wait_asleep()? as u64;
        }
        let t0 = now_ns();
        ep.send(1, &msg)?;
        let m = ep.recv(2)?;
        let t1 = now_ns();
        check_len(m.len(), size)?;
        let away = if parked {
            u64::from_le_bytes(m[..8].try_into().expect("8 bytes"))
        } else {
            0
        };
        if i >= warmup {
            samples.push((t1 - t0).saturating_sub(away));
        }
    }
    let wall = now_ns() - begun;
    let total = if parked { samples.iter().sum() } else { wall };
    let s = Summary::of(&mut samples);
    Ok(format!(
        "{} total={total} wall={wall} sleep_waits={}",
        s.to_fields(),
        ctx.sleep_waits
    ))
}

fn pong(ep: &mut dyn Endpoint, cmd: &Fields, ctx: &mut Ctx) -> io::Result<String> {
    let (n, size) = (cmd.u64("n")?, cmd.usize("size")?);
    let parked = cmd.flag("parked");
    let mut peer = if parked {
        Some(Peer::open(cmd.u64("peer")? as u32)?)
    } else {
        None
    };
    let mut msg = vec![0x5Au8; size];
    for _ in 0..n {
        let m = ep.recv(1)?;
        let t1 = now_ns();
        check_len(m.len(), size)?;
        if let Some(p) = &mut peer {
            ctx.sleep_waits += p.wait_asleep()? as u64;
            let away = now_ns() - t1;
            msg[..8].copy_from_slice(&away.to_le_bytes());
        }
        ep.send(2, &msg)?;
    }
    Ok(format!("sleep_waits={}", ctx.sleep_waits))
}

/// Times receives of `msgtyp = sel` on a queue kept at its depth: each
/// message taken is sent again (untimed), with its type; `order` mirrors the
/// queue.
fn time_typed(
    ep: &mut dyn Endpoint,
    cmd: &Fields,
    order: &mut VecDeque<i64>,
) -> io::Result<String> {
    let sel = cmd.i64("sel")?;
    let max = cmd.u64("max")?;
    let budget = Duration::from_millis(cmd.u64("budget_ms")?);
    let msg = vec![0x5Au8; cmd.usize("size")?];
    let began = Instant::now();
    let mut samples = Vec::new();
    let mut total = 0;
    for i in 0..max {
        if !budget.is_zero() && i >= 3 && began.elapsed() > budget {
            break;
        }
        let t0 = now_ns();
        let got = ep.try_recv(sel)?.map(|(t, m)| (t, m.len()));
        let t1 = now_ns();
        let (t, _) = got.ok_or_else(|| io::Error::other(format!("no message for msgtyp {sel}")))?;
        samples.push(t1 - t0);
        total += t1 - t0;
        if !ep.try_send(t, &msg)? {
            return Err(io::Error::other("queue full when re-sending"));
        }
        // The taken message is the oldest (msgtyp 0) or the newest (D, -D
        // as filled); anywhere else costs a search, untimed.
        if order.front() == Some(&t) {
            order.pop_front();
        } else if order.back() == Some(&t) {
            order.pop_back();
        } else if let Some(i) = order.iter().position(|&x| x == t) {
            order.remove(i);
        }
        order.push_back(t);
    }
    let s = Summary::of(&mut samples);
    Ok(format!("{} total={total}", s.to_fields()))
}

/// Times receives from a queue holding `depth` messages over `prios`
/// priorities (the highest first); each message taken is sent again,
/// untimed, with its priority, so the depth and the spread stay. The queue
/// is emptied at the end.
fn time_prio(ep: &mut dyn Endpoint, cmd: &Fields) -> io::Result<String> {
    let prios = cmd.u64("prios")?.max(1) as u32;
    let depth = cmd.usize("depth")?;
    let max = cmd.u64("max")?;
    let budget = Duration::from_millis(cmd.u64("budget_ms")?);
    let msg = vec![0x5Au8; cmd.usize("size")?];
    for i in 0..depth {
        ep.send_to_self(i as u32 % prios, &msg)?;
    }
    let began = Instant::now();
    let mut samples = Vec::new();
    let mut total = 0;
    let mut highest = true;
    for i in 0..max {
        if !budget.is_zero() && i >= 3 && began.elapsed() > budget {
            break;
        }
        let t0 = now_ns();
        let p = ep.recv_prio()?;
        let t1 = now_ns();
        highest &= p == prios - 1;
        samples.push(t1 - t0);
        total += t1 - t0;
        ep.send_to_self(p, &msg)?;
    }
    for _ in 0..depth {
        ep.recv_prio()?;
    }
    if !highest {
        return Err(io::Error::other(
            "a receive did not take the highest priority",
        ));
    }
    let s = Summary::of(&mut samples);
    Ok(format!("{} total={total}", s.to_fields()))
}

/// A peer process whose scheduler state we poll.
struct Peer {
    stat: std::fs::File,
    buf: Vec<u8>,
}

impl Peer {
    fn open(pid: u32) -> io::Result<Peer> {
        Ok(Peer {
            stat: std::fs::File::open(format!("/proc/{pid}/stat"))?,
            buf: vec![0; 512],
        })
    }

    /// Waits until the peer sleeps (`S`); gives up after a second and
    /// returns whether it gave up.
    fn wait_asleep(&mut self) -> io::Result<bool> {
        let began = Instant::now();
        loop {
            let n = self.stat.read_at(&mut self.buf, 0)?;
            let text = &self.buf[..n];
            // The state follows the last ')' (the command name may hold any byte).
            let state = text
                .iter()
                .rposition(|&b| b == b')')
                .and_then(|i| text.get(i + 2))
                .copied();
            if state == Some(b'S') {
                return Ok(false);
            }
            if began.elapsed() > Duration::from_secs(1) {
                return Ok(true);
            }
            std::hint::spin_loop();
        }
    }
}

/// Memory figures of this process, in bytes.
struct Memory {
    rss: u64,
    anon: u64,
    file: u64,
    shmem: u64,
}

fn memory() -> io::Result<Memory> {
    let text = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    Ok(Memory {
        rss: field("VmRSS:"),
        anon: field("RssAnon:"),
        file: field("RssFile:"),
        shmem: field("RssShmem:"),
    })
}
