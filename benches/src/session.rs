//! The parent side: a channel and the child processes holding its ends.
//!
//! Children are this same program re-executed (`fork` + `exec` through
//! `std::process::Command`, never a bare `fork` of a multi-threaded process),
//! told their role in the environment (see [`crate::child`]), with the
//! channel's descriptors inherited. A watchdog kills the children if one does
//! not answer in time, so a stuck mechanism fails the run instead of hanging
//! it.

use crate::child::{cfg_to_env, ENV_CFG, ENV_CPU, ENV_END, ENV_MECH, ENV_PARENT, ENV_SPEC};
use crate::cleanup;
use crate::fields::Fields;
use crate::mechanism::{Channel, ChannelConfig, End, Mechanism};
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How to start a child: a program (normally this one) and leading arguments.
/// The program must call [`crate::child::serve_if_child`] at the start of
/// `main`.
#[derive(Clone, Debug)]
pub struct Spawner {
    program: PathBuf,
    args: Vec<OsString>,
}

impl Spawner {
    /// This very program, re-executed.
    pub fn current_exe() -> io::Result<Spawner> {
        Ok(Spawner::new(std::env::current_exe()?))
    }

    /// `program`, with no arguments.
    pub fn new(program: impl Into<PathBuf>) -> Spawner {
        Spawner {
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// Adds an argument given to every child.
    pub fn arg(mut self, a: impl Into<OsString>) -> Spawner {
        self.args.push(a.into());
        self
    }
}

/// One child to start: its end, and changes to its environment.
#[derive(Clone, Debug)]
pub struct ChildSpec {
    /// The end of the channel it opens.
    pub end: End,
    /// Variables to set (`Some`) or remove (`None`).
    pub env: Vec<(String, Option<String>)>,
    /// The CPU it runs on (`None`: wherever the scheduler puts it).
    pub cpu: Option<usize>,
}

impl ChildSpec {
    /// A child at `end`, environment unchanged.
    pub fn new(end: End) -> ChildSpec {
        ChildSpec {
            end,
            env: Vec::new(),
            cpu: None,
        }
    }

    /// Pinned to `cpu` (if `Some`).
    pub fn on_cpu(mut self, cpu: Option<usize>) -> ChildSpec {
        self.cpu = cpu;
        self
    }

    /// With `env` applied.
    pub fn with_env(mut self, env: &[(String, Option<String>)]) -> ChildSpec {
        self.env.extend_from_slice(env);
        self
    }
}

struct Proc {
    pid: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    kill_guard: Option<cleanup::Guard>,
}

#[derive(Default)]
struct Watch {
    deadline: Option<Instant>,
    pids: Vec<u32>,
    fired: bool,
    done: bool,
}

/// Kills the session's children when an answer is late.
struct Watchdog {
    state: Arc<(Mutex<Watch>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start() -> io::Result<Watchdog> {
        let state = Arc::new((Mutex::new(Watch::default()), Condvar::new()));
        let s = state.clone();
        let thread = std::thread::Builder::new()
            .name("shmq-bench-watchdog".into())
            .spawn(move || {
                let (m, cv) = &*s;
                let mut w = m.lock().unwrap_or_else(|e| e.into_inner());
                while !w.done {
                    match w.deadline {
                        Some(d) if Instant::now() >= d => {
                            for &pid in &w.pids {
                                crate::sys::kill(pid);
                            }
                            w.fired = true;
                            w.deadline = None;
                        }
                        Some(d) => {
                            let wait = d - Instant::now();
                            w = cv
                                .wait_timeout(w, wait)
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                        }
                        None => w = cv.wait(w).unwrap_or_else(|e| e.into_inner()),
                    }
                }
            })?;
        Ok(Watchdog {
            state,
            thread: Some(thread),
        })
    }

    fn update(&self, f: impl FnOnce(&mut Watch)) {
        let (m, cv) = &*self.state;
        f(&mut m.lock().unwrap_or_else(|e| e.into_inner()));
        cv.notify_all();
    }

    fn fired(&self) -> bool {
        self.state.0.lock().unwrap_or_else(|e| e.into_inner()).fired
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.update(|w| w.done = true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A channel and the children holding its ends. Dropping it ends the
/// children (`exit`, then SIGKILL after a grace period) and then removes the
/// channel.
pub struct Session {
    procs: Vec<Proc>,
    watchdog: Watchdog,
    timeout: Duration,
    mech: &'static str,
    /// Dropped after the children are gone (see `Drop`).
    channel: Option<Channel>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("mech", &self.mech)
            .field(
                "pids",
                &self.procs.iter().map(|p| p.pid).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Session {
    /// Creates a channel of `mech` for `cfg`, starts one child per entry of
    /// `children`, and waits until every one is ready. An answer that takes
    /// longer than `timeout` kills the children and fails.
    pub fn start(
        spawner: &Spawner,
        mech: &dyn Mechanism,
        cfg: &ChannelConfig,
        children: &[ChildSpec],
        timeout: Duration,
    ) -> io::Result<Session> {
        let channel = mech.create(cfg)?;
        let mut s = Session {
            procs: Vec::new(),
            watchdog: Watchdog::start()?,
            timeout,
            mech: mech.name(),
            channel: Some(channel),
        };
        for spec in children {
            let ch = s.channel.as_ref().expect("channel");
            let mut cmd = Command::new(&spawner.program);
            cmd.args(&spawner.args)
                .env(ENV_MECH, mech.name())
                .env(ENV_END, spec.end.as_str())
                .env(ENV_SPEC, &ch.spec)
                .env(ENV_CFG, cfg_to_env(cfg))
                .env(ENV_PARENT, std::process::id().to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            if let Some(cpu) = spec.cpu {
                cmd.env(ENV_CPU, cpu.to_string());
            }
            for (k, v) in &spec.env {
                match v {
                    Some(v) => cmd.env(k, v),
                    None => cmd.env_remove(k),
                };
            }
            crate::sys::inherit_fds(&mut cmd, ch.inherit.clone());
            let mut child = cmd.spawn()?;
            let pid = child.id();
            let kill_guard = cleanup::register(move || crate::sys::kill(pid));
            let stdin = child.stdin.take();
            let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
            s.procs.push(Proc {
                pid,
                child,
                stdin,
                stdout,
                kill_guard: Some(kill_guard),
            });
            s.watchdog.update(|w| w.pids.push(pid));
        }
        for i in 0..s.procs.len() {
            let line = s.read_line(i)?;
            if line.trim() != "ready" {
                return Err(io::Error::other(format!(
                    "{} child {i}: expected ready, got {line:?}",
                    s.mech
                )));
            }
        }
        Ok(s)
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// Whether the session has no child.
    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// Pid of child `i`.
    pub fn pid(&self, i: usize) -> u32 {
        self.procs[i].pid
    }

    /// The channel's description.
    pub fn spec(&self) -> &str {
        &self.channel.as_ref().expect("channel").spec
    }

    /// The channel's remark, if any.
    pub fn note(&self) -> Option<&str> {
        self.channel.as_ref().and_then(|c| c.note.as_deref())
    }

    /// Sends command `line` to child `i`.
    pub fn command(&mut self, i: usize, line: &str) -> io::Result<()> {
        let p = &mut self.procs[i];
        let stdin = p
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("child closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    /// Reads child `i`'s answer to its last command.
    pub fn answer(&mut self, i: usize) -> io::Result<Fields> {
        let line = self.read_line(i)?;
        if let Some(rest) = line.strip_prefix("ok") {
            return Fields::parse(&format!("ok {rest}"));
        }
        let msg = line.strip_prefix("err ").unwrap_or(&line).trim();
        Err(io::Error::other(format!("{} child {i}: {msg}", self.mech)))
    }

    /// Sends `line` to child `i` and reads its answer.
    pub fn ask(&mut self, i: usize, line: &str) -> io::Result<Fields> {
        self.command(i, line)?;
        self.answer(i)
    }

    fn read_line(&mut self, i: usize) -> io::Result<String> {
        let deadline = Instant::now() + self.timeout;
        self.watchdog.update(|w| w.deadline = Some(deadline));
        let mut line = String::new();
        let r = self.procs[i].stdout.read_line(&mut line);
        self.watchdog.update(|w| w.deadline = None);
        if self.watchdog.fired() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} child {i} did not answer within {:?}; children killed",
                    self.mech, self.timeout
                ),
            ));
        }
        if r? == 0 {
            let status = self.procs[i].child.try_wait().ok().flatten();
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} child {i} ended ({status:?})", self.mech),
            ));
        }
        Ok(line.trim_end().to_string())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if let Some(mut stdin) = p.stdin.take() {
                let _ = writeln!(stdin, "exit");
            }
        }
        let grace = Instant::now() + Duration::from_secs(2);
        for p in &mut self.procs {
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() < grace => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Ok(None) => {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        break;
                    }
                }
            }
            // Reaped: the pid may be reused from now on, never kill it again.
            if let Some(g) = p.kill_guard.take() {
                g.disarm();
            }
        }
        self.channel.take();
    }
}
