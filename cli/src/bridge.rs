//! `shmq bridge`: local queues to NATS JetStream subjects and back, with no
//! message lost.
//!
//! # Export (`--export KEY[:MSGTYP]=SUBJECT`)
//! A message leaves the local queue only after JetStream acknowledged it:
//! the bridge *peeks* (copies without taking, `Queue::try_peek`) the message
//! `MSGTYP` selects, publishes it with the message id
//! `<namespace>/<queue id>/<send stamp>` and its type in the `Shmq-Type`
//! header, waits for the server's acknowledgement, and only then takes it
//! from the queue. A bridge killed anywhere leaves the message queued; its
//! successor publishes it again under the same id and JetStream's
//! de-duplication (the stream's duplicate window, 10 minutes here) drops
//! the copy. A loan held across the publish would not do: a receiver
//! killed while it holds a message loses it (`docs/semantics.md`). The
//! bridge must be the only receiver of `MSGTYP` on that queue (another one
//! could take the message between the acknowledgement and the take; it is
//! then delivered twice, never lost).
//!
//! # Import (`--import SUBJECT=KEY`)
//! A record file per import (`--state DIR`) holds the last stream sequence
//! delivered into the local queue and, around each send, the sequence being
//! sent with the queue's send count before it (`Queue::sent_count`). The
//! import's pull consumer is made anew from that record each time the
//! bridge (or its connection) starts: it delivers from the first sequence
//! not yet delivered, strictly in order (a gap, a delivery lost with a
//! connection, starts it again from the record; a redelivery of a sequence
//! already delivered is acknowledged and dropped). Each message is sent
//! into the local queue (waiting while it is full: acknowledgements stop,
//! so after `max_ack_pending` the server stops delivering; "in progress"
//! acknowledgements keep it from redelivering meanwhile) and acknowledged
//! only after the send returned and the record says so. After a kill between the send and the record,
//! the successor compares the queue's send count with the recorded one: one
//! more, the send took place. That is exact while the bridge is the only
//! sender into the queue; with other senders it cannot tell, and sends the
//! message again (a duplicate, never a loss), saying so on stderr.
//!
//! Reconnection is the client's (async-nats retries for ever); publishes
//! and deliveries that fail meanwhile are retried. SIGINT / SIGTERM stop
//! the bridge at the next safe point (never between a send and its record).

use crate::args::{parse_duration, parse_public_key, Key};
use crate::errors::Failure;
use async_nats::jetstream::{self, consumer::pull, context::Publish, stream};
use futures_util::StreamExt;
use shmq::{GetOptions, Namespace, Queue, RecvError, RecvOptions, Selector};
use shmq_async::AsyncQueue;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The header that carries a message's type.
pub(crate) const TYPE_HEADER: &str = "Shmq-Type";

/// JetStream's duplicate window for the streams the bridge creates.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// Arguments of `shmq bridge`.
#[derive(clap::Args, Debug)]
pub(crate) struct BridgeArgs {
    /// NATS server URL (nats://HOST:PORT)
    #[arg(long, value_name = "URL")]
    nats: String,
    /// Local queue KEY to SUBJECT, receiving with MSGTYP (default 0: any);
    /// repeatable
    #[arg(long = "export", value_name = "KEY[:MSGTYP]=SUBJECT", value_parser = parse_export)]
    exports: Vec<Export>,
    /// SUBJECT to local queue KEY; repeatable
    #[arg(long = "import", value_name = "SUBJECT=KEY", value_parser = parse_import)]
    imports: Vec<Import>,
    /// Type of an imported message that has no Shmq-Type header
    #[arg(long = "type", value_name = "MTYPE", default_value_t = 1)]
    default_type: i64,
    /// Create missing local queues (mode 0660)
    #[arg(long)]
    create: bool,
    /// Print counters on stderr every INTERVAL (default 1s)
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "1s",
          value_parser = parse_duration)]
    stats: Option<Duration>,
    /// Directory of the import records [default: the namespace directory
    /// with `.bridge` appended]
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Give up if the first connection takes longer
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    connect_timeout: Duration,
}

/// One `--export`.
#[derive(Clone, Debug)]
pub(crate) struct Export {
    key: Key,
    msgtyp: i64,
    subject: String,
}

/// One `--import`.
#[derive(Clone, Debug)]
pub(crate) struct Import {
    subject: String,
    key: Key,
}

/// Checks a subject to publish to: dot-separated non-empty tokens of
/// printable characters, no wildcard.
fn check_subject(s: &str) -> Result<(), String> {
    let bad = |why: &str| format!("malformed subject {s:?}: {why}");
    if s.is_empty() {
        return Err(bad("empty"));
    }
    for tok in s.split('.') {
        if tok.is_empty() {
            return Err(bad("empty token"));
        }
        if tok == "*" || tok == ">" || tok.contains(['*', '>']) {
            return Err(bad("wildcards are not allowed"));
        }
        if tok.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("white space or control characters"));
        }
    }
    Ok(())
}

fn parse_export(s: &str) -> Result<Export, String> {
    let (lhs, subject) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid export {s:?}: expected KEY[:MSGTYP]=SUBJECT"))?;
    let (key, msgtyp) = match lhs.split_once(':') {
        Some((k, t)) => (
            k,
            t.parse::<i64>()
                .map_err(|_| format!("invalid MSGTYP {t:?} in {s:?}: expected an integer"))?,
        ),
        None => (lhs, 0),
    };
    check_subject(subject)?;
    Ok(Export {
        key: parse_public_key(key)?,
        msgtyp,
        subject: subject.to_string(),
    })
}

fn parse_import(s: &str) -> Result<Import, String> {
    let (subject, key) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid import {s:?}: expected SUBJECT=KEY"))?;
    check_subject(subject)?;
    Ok(Import {
        subject: subject.to_string(),
        key: parse_public_key(key)?,
    })
}

/// A name made of the subject for JetStream (stream, consumer, file).
fn name_of(subject: &str) -> String {
    subject
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The stream that holds `subject` (created by whichever side comes first).
fn stream_config(subject: &str) -> stream::Config {
    stream::Config {
        name: format!("SHMQ_{}", name_of(subject)),
        subjects: vec![subject.to_string()],
        duplicate_window: DUPLICATE_WINDOW,
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

/// Counters, printed with `--stats` and at the end.
#[derive(Default)]
struct Stats {
    exported: AtomicU64,
    publish_retries: AtomicU64,
    duplicates_published: AtomicU64,
    taken_elsewhere: AtomicU64,
    imported: AtomicU64,
    redeliveries_dropped: AtomicU64,
    local_full_waits: AtomicU64,
    stop: AtomicBool,
}

impl Stats {
    fn line(&self) -> String {
        // Relaxed: counters for a human.
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "exported {} (publish retries {}, duplicates dropped by the server {}, taken by another receiver {}), imported {} (redeliveries dropped {}, waits on a full queue {})",
            g(&self.exported),
            g(&self.publish_retries),
            g(&self.duplicates_published),
            g(&self.taken_elsewhere),
            g(&self.imported),
            g(&self.redeliveries_dropped),
            g(&self.local_full_waits),
        )
    }

    fn add(c: &AtomicU64) {
        // Relaxed: a counter.
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        // Relaxed: a flag polled at safe points; the signal task sets it.
        self.stop.load(Ordering::Relaxed)
    }
}

/// `shmq bridge`.
pub(crate) fn run(dir: Option<&Path>, a: &BridgeArgs) -> Result<(), Failure> {
    if a.exports.is_empty() && a.imports.is_empty() {
        return Err(Failure::usage(
            "bridge: nothing to do: give at least one --export or --import",
        ));
    }
    if a.default_type < 1 {
        return Err(Failure::usage(format!(
            "bridge: --type {}: a message type must be at least 1",
            a.default_type
        )));
    }
    let ns = match dir {
        Some(d) => Namespace::open(d),
        None => Namespace::open_default(),
    }
    .map_err(|e| Failure::namespace(&e))?;
    let get = |key: &Key| {
        let opts = if a.create {
            GetOptions::new().create(true).mode(0o660)
        } else {
            GetOptions::new()
        };
        ns.get(key.value, opts)
            .map_err(|e| Failure::get(&ns, key, key.value, e))
    };
    let mut exports = Vec::new();
    for e in &a.exports {
        exports.push((e.clone(), get(&e.key)?));
    }
    let mut imports = Vec::new();
    for i in &a.imports {
        imports.push((i.clone(), get(&i.key)?));
    }
    let state_dir = a.state.clone().unwrap_or_else(|| {
        let mut s = ns.dir().as_os_str().to_owned();
        s.push(".bridge");
        PathBuf::from(s)
    });
    if !imports.is_empty() {
        std::fs::create_dir_all(&state_dir).map_err(|e| {
            Failure::op(
                format!("bridge: state directory {}", state_dir.display()),
                e,
            )
        })?;
    }
    let ns_name = ns.dir().display().to_string();
    let msgmax = ns.limits().msgmax as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::op("bridge: tokio runtime", e))?;
    rt.block_on(async move {
        let opts = async_nats::ConnectOptions::new()
            .connection_timeout(a.connect_timeout)
            .max_reconnects(None)
            .event_callback(|ev| async move {
                eprintln!("shmq bridge: nats: {ev}");
            });
        let client = match tokio::time::timeout(
            a.connect_timeout,
            async_nats::connect_with_options(a.nats.as_str(), opts),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(Failure::op(
                    format!("bridge: cannot connect to {}", a.nats),
                    e,
                ))
            }
            Err(_) => {
                return Err(Failure::op(
                    format!("bridge: cannot connect to {}", a.nats),
                    format!("no answer within {:?}", a.connect_timeout),
                ))
            }
        };
        let js = jetstream::new(client);
        let stats = Arc::new(Stats::default());
        let mut tasks = tokio::task::JoinSet::new();
        for (e, q) in exports {
            let (js, stats, ns_name) = (js.clone(), stats.clone(), ns_name.clone());
            tasks.spawn(async move { export(js, e, q, &ns_name, msgmax, stats).await });
        }
        for (i, q) in imports {
            let (js, stats) = (js.clone(), stats.clone());
            let record = state_dir.join(format!(
                "import-{:#x}-{}",
                i.key.value as u32,
                name_of(&i.subject)
            ));
            let default_type = a.default_type;
            tasks.spawn(async move { import(js, i, q, record, default_type, stats).await });
        }
        if let Some(every) = a.stats {
            let stats = stats.clone();
            tokio::spawn(async move {
                let mut t = tokio::time::interval(every);
                t.tick().await;
                loop {
                    t.tick().await;
                    eprintln!("shmq bridge: {}", stats.line());
                }
            });
        }
        {
            let stats = stats.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return;
                };
                tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
                // Relaxed: see `Stats::stopping`.
                stats.stop.store(true, Ordering::Relaxed);
            });
        }
        let mut failure = None;
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(f)) => {
                    // One task failed: stop the others at their safe points.
                    stats.stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(f);
                }
                Err(e) => {
                    stats.stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(Failure::op("bridge", e));
                }
            }
        }
        eprintln!("shmq bridge: stopped: {}", stats.line());
        failure.map_or(Ok(()), Err)
    })
}

/// Sleeps `d` in steps, ending early when the bridge stops.
async fn pause(d: Duration, stats: &Stats) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stats.stopping() {
        tokio::time::sleep(Duration::from_millis(50).min(d)).await;
    }
}

/// How often an export or import looks at the stop flag while it waits.
const STOP_POLL: Duration = Duration::from_millis(100);

async fn export(
    js: jetstream::Context,
    e: Export,
    q: Queue,
    ns_name: &str,
    msgmax: usize,
    stats: Arc<Stats>,
) -> Result<(), Failure> {
    let what = format!("bridge: export {}={}", e.key, e.subject);
    let sel = Selector::from_msgtyp(e.msgtyp, false);
    ensure_stream(&js, &e.subject, &stats).await?;
    let aq = AsyncQueue::new(q.clone());
    let mut buf = vec![0u8; msgmax];
    let mut scratch = vec![0u8; msgmax];
    loop {
        if stats.stopping() {
            return Ok(());
        }
        // Wait for a message, looking at the stop flag now and then (the
        // peek takes nothing, so dropping it is harmless).
        let peeked = match tokio::time::timeout(STOP_POLL, aq.peek(&mut buf, sel)).await {
            Err(_) => continue,
            Ok(Ok(p)) => p,
            Ok(Err(err)) => return Err(Failure::op(format!("{what}: msgrcv"), err)),
        };
        let len = peeked.received.len;
        let id = format!("{ns_name}/{}/{}", q.id(), peeked.seq);
        let mut backoff = Duration::from_millis(50);
        loop {
            let msg = Publish::build()
                .payload(bytes::Bytes::copy_from_slice(&buf[..len]))
                .header(TYPE_HEADER, peeked.received.mtype.to_string().as_str())
                .message_id(&id);
            let acked = match js.send_publish(e.subject.clone(), msg).await {
                Ok(ack) => ack.await.map_err(|e| e.to_string()),
                Err(err) => Err(err.to_string()),
            };
            match acked {
                Ok(ack) => {
                    if ack.duplicate {
                        Stats::add(&stats.duplicates_published);
                    }
                    break;
                }
                Err(err) => {
                    Stats::add(&stats.publish_retries);
                    if stats.publish_retries.load(Ordering::Relaxed) % 20 == 1 {
                        eprintln!(
                            "shmq bridge: export to {}: publish failed, retrying: {err}",
                            e.subject
                        );
                    }
                    if stats.stopping() {
                        return Ok(()); // still queued: the next run sends it
                    }
                    pause(backoff, &stats).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        // Acknowledged: now take it, by its own type. The peeked message
        // was the oldest of its type then, and a message sent since is
        // younger, so this takes that very message even when `sel` would
        // now pick another (a lower type arrived for a negative MSGTYP).
        let own = Selector::Type(peeked.received.mtype);
        match q.try_recv(&mut scratch, RecvOptions::new(own).truncate()) {
            Ok(_) => Stats::add(&stats.exported),
            Err(RecvError::NoMessage) => Stats::add(&stats.taken_elsewhere),
            Err(err) => return Err(Failure::op(format!("{what}: msgrcv"), err)),
        }
    }
}

/// Creates (or finds) the stream for `subject`, retrying while the server
/// is away.
async fn ensure_stream(
    js: &jetstream::Context,
    subject: &str,
    stats: &Stats,
) -> Result<Option<stream::Stream>, Failure> {
    let mut tries = 0u32;
    loop {
        match js.get_or_create_stream(stream_config(subject)).await {
            Ok(s) => return Ok(Some(s)),
            Err(err) => {
                tries += 1;
                if tries % 10 == 1 {
                    eprintln!("shmq bridge: stream for {subject}: {err}; retrying");
                }
                if stats.stopping() {
                    return Ok(None);
                }
                pause(Duration::from_millis(200), stats).await;
            }
        }
    }
}

/// An import's record file: `[delivered, pending, sent_before]` as three
/// little-endian u64 (see the module's description).
struct Record {
    file: std::fs::File,
    delivered: u64,
}

impl Record {
    fn open(path: &Path) -> std::io::Result<(Record, Option<(u64, u64)>)> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut b = [0u8; 24];
        let n = file.read_at(&mut b, 0)?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        let (delivered, pending, before) = if n == 24 {
            (w(0), w(1), w(2))
        } else {
            (0, 0, 0)
        };
        let pend = (pending != 0).then_some((pending, before));
        Ok((Record { file, delivered }, pend))
    }

    fn write(&mut self, pending: u64, before: u64) -> std::io::Result<()> {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&self.delivered.to_le_bytes());
        b[8..16].copy_from_slice(&pending.to_le_bytes());
        b[16..].copy_from_slice(&before.to_le_bytes());
        self.file.write_all_at(&b, 0)
    }
}

/// The sent count's width (`Queue::sent_count` is modulo 2^25).
const SENT_MASK: u64 = (1 << 25) - 1;

async fn import(
    js: jetstream::Context,
    i: Import,
    q: Queue,
    record_path: PathBuf,
    default_type: i64,
    stats: Arc<Stats>,
) -> Result<(), Failure> {
    let what = format!("bridge: import {}={}", i.subject, i.key);
    let (mut rec, pending) = Record::open(&record_path)
        .map_err(|e| Failure::op(format!("{what}: {}", record_path.display()), e))?;
    if let Some((seq, before)) = pending {
        // Killed around the send of `seq`: did it take place?
        let now = q.sent_count();
        let diff = now.wrapping_sub(before) & SENT_MASK;
        if diff == 1 {
            rec.delivered = rec.delivered.max(seq);
        } else if diff != 0 {
            eprintln!(
                "shmq bridge: {what}: stream message {seq} may have been sent already \
                 (others send into this queue too); sending it again"
            );
        }
        rec.write(0, 0)
            .map_err(|e| Failure::op(format!("{what}: {}", record_path.display()), e))?;
    }
    let Some(stream) = ensure_stream(&js, &i.subject, &stats).await? else {
        return Ok(());
    };
    let durable = format!("shmq_{:x}_{}", i.key.value as u32, name_of(&i.subject));
    let aq = AsyncQueue::new(q.clone());
    'consumer: loop {
        if stats.stopping() {
            return Ok(());
        }
        // A consumer made anew from the record: it delivers from the first
        // sequence not yet delivered, in order, so that what an earlier
        // bridge (or connection) left unacknowledged comes first.
        let config = pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: i.subject.clone(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1024,
            deliver_policy: if rec.delivered == 0 {
                jetstream::consumer::DeliverPolicy::All
            } else {
                jetstream::consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: rec.delivered + 1,
                }
            },
            ..Default::default()
        };
        let consumer: pull::Stream = match async {
            let _ = stream.delete_consumer(&durable).await;
            let c: jetstream::consumer::Consumer<pull::Config> = stream
                .create_consumer(config)
                .await
                .map_err(|e| e.to_string())?;
            c.messages().await.map_err(|e| e.to_string())
        }
        .await
        {
            Ok(m) => m,
            Err(err) => {
                eprintln!("shmq bridge: {what}: consumer: {err}; retrying");
                pause(Duration::from_millis(500), &stats).await;
                continue;
            }
        };
        let mut messages = consumer;
        loop {
            if stats.stopping() {
                return Ok(());
            }
            let next = match tokio::time::timeout(STOP_POLL, messages.next()).await {
                Err(_) => continue,
                Ok(None) => continue 'consumer,
                Ok(Some(Err(err))) => {
                    eprintln!("shmq bridge: {what}: delivery: {err}");
                    pause(Duration::from_millis(200), &stats).await;
                    continue 'consumer;
                }
                Ok(Some(Ok(m))) => m,
            };
            let seq = match next.info() {
                Ok(info) => info.stream_sequence,
                Err(err) => {
                    eprintln!("shmq bridge: {what}: message without JetStream info: {err}");
                    continue;
                }
            };
            if seq <= rec.delivered {
                Stats::add(&stats.redeliveries_dropped);
                let _ = next.ack().await;
                continue;
            }
            if seq != rec.delivered + 1 {
                // A message delivered to us was lost on the way (the
                // connection dropped): start again from the record.
                eprintln!(
                    "shmq bridge: {what}: got stream message {seq} after {}; resuming from {}",
                    rec.delivered,
                    rec.delivered + 1
                );
                continue 'consumer;
            }
            let mtype = match next.headers.as_ref().and_then(|h| h.get(TYPE_HEADER)) {
                None => default_type,
                Some(v) => match v.as_str().parse::<i64>() {
                    Ok(t) if t >= 1 => t,
                    _ => {
                        return Err(Failure::op(
                            format!("{what}: stream message {seq}"),
                            format!(
                            "bad {TYPE_HEADER} header {:?}: not left unacknowledged on the server",
                            v.as_str()
                        ),
                        ))
                    }
                },
            };
            let before = q.sent_count();
            rec.write(seq, before)
                .map_err(|e| Failure::op(format!("{what}: {}", record_path.display()), e))?;
            // Send, waiting while the queue is full; keep the server from
            // redelivering meanwhile.
            let mut sent = false;
            let mut waited = false;
            while !sent {
                match tokio::time::timeout(Duration::from_secs(5), aq.send(mtype, &next.payload))
                    .await
                {
                    Ok(Ok(())) => sent = true,
                    Ok(Err(err)) => {
                        // Redeliverable at once for the bridge that follows.
                        let _ = next.ack_with(jetstream::AckKind::Nak(None)).await;
                        return Err(Failure::op(
                            format!(
                                "{what}: msgsnd of stream message {seq} ({} bytes)",
                                next.payload.len()
                            ),
                            format!("{err}; not acknowledged, the server keeps it"),
                        ));
                    }
                    Err(_) => {
                        if !waited {
                            Stats::add(&stats.local_full_waits);
                            waited = true;
                        }
                        let _ = next.ack_with(jetstream::AckKind::Progress).await;
                        if stats.stopping() {
                            // Not sent: the record's pending send is undone
                            // by the successor's count check.
                            return Ok(());
                        }
                    }
                }
            }
            rec.delivered = seq;
            rec.write(0, 0)
                .map_err(|e| Failure::op(format!("{what}: {}", record_path.display()), e))?;
            Stats::add(&stats.imported);
            let _ = next.ack().await;
        }
    }
}
