//! iceoryx2 publish-subscribe as a [`Mechanism`]: a service per direction,
//! `[u8]` slices of the message size, zero-copy on both sides (a receive
//! lends the sample in place). iceoryx2 has no blocking receive in this
//! pattern (waiting would need its event service): receivers busy-poll, so
//! there is no parked mode. It is a dev-dependency of the benchmarks only.

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::sample::Sample;
use shmq_benches::mechanism::{Channel, ChannelConfig, End, Endpoint, Mechanism};
use std::io;
use std::time::{Duration, Instant};

/// iceoryx2 0.10 publish-subscribe.
pub(crate) struct Iceoryx2;

fn err(what: &str, e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("iceoryx2 {what}: {e:?}"))
}

type Svc = iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>;

/// Opens (or creates) service `name`, retrying while another process is
/// creating it.
fn service(node: &Node<ipc::Service>, name: &str, cfg: &ChannelConfig) -> io::Result<Svc> {
    let name: ServiceName = name.try_into().map_err(|e| err("service name", e))?;
    let began = Instant::now();
    loop {
        let r = node
            .service_builder(&name)
            .publish_subscribe::<[u8]>()
            .max_publishers(cfg.a_ends.max(cfg.b_ends).max(1))
            .max_subscribers(cfg.a_ends.max(cfg.b_ends).max(1))
            .history_size(0)
            .enable_safe_overflow(false)
            .open_or_create();
        match r {
            Ok(s) => return Ok(s),
            Err(e) if began.elapsed() < Duration::from_secs(5) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(err("service", e)),
        }
    }
}

impl Mechanism for Iceoryx2 {
    fn name(&self) -> &'static str {
        "iceoryx2"
    }

    fn describe(&self) -> &'static str {
        "iceoryx2 0.10 publish-subscribe, a service per direction, [u8] samples; receivers busy-poll"
    }

    fn shared_ends(&self, _msg_size: usize) -> bool {
        false // publish-subscribe delivers to every subscriber: no sharing of work
    }

    fn can_park(&self) -> bool {
        false
    }

    fn create(&self, _cfg: &ChannelConfig) -> io::Result<Channel> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        Ok(Channel {
            spec: format!(
                "shmq-bench-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ),
            inherit: Vec::new(),
            note: None,
            keep: Box::new(()),
        })
    }

    fn open(&self, spec: &str, end: End, cfg: &ChannelConfig) -> io::Result<Box<dyn Endpoint>> {
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new()
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>()
            .map_err(|e| err("node", e))?;
        let fwd = service(&node, &format!("{spec}/forward"), cfg)?;
        let back = service(&node, &format!("{spec}/back"), cfg)?;
        let (tx, rx) = match end {
            End::A => (&fwd, &back),
            End::B => (&back, &fwd),
        };
        let publisher = tx
            .publisher_builder()
            .initial_max_slice_len(cfg.msg_size.max(1))
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(|e| err("publisher", e))?;
        let subscriber = rx
            .subscriber_builder()
            .create()
            .map_err(|e| err("subscriber", e))?;
        Ok(Box::new(IoxEnd {
            last: None,
            publisher,
            subscriber,
            _services: (fwd, back),
            _node: node,
        }))
    }
}

/// Field order is drop order: ports before services before the node.
struct IoxEnd {
    last: Option<Sample<ipc::Service, [u8], ()>>,
    publisher: Publisher<ipc::Service, [u8], ()>,
    subscriber: Subscriber<ipc::Service, [u8], ()>,
    _services: (Svc, Svc),
    _node: Node<ipc::Service>,
}

impl Endpoint for IoxEnd {
    fn send(&mut self, _mtype: i64, msg: &[u8]) -> io::Result<()> {
        let sample = self
            .publisher
            .loan_slice_uninit(msg.len())
            .map_err(|e| err("loan", e))?;
        let delivered = sample
            .write_from_slice(msg)
            .send()
            .map_err(|e| err("send", e))?;
        if delivered == 0 {
            // No subscriber connected: the sample went nowhere.
            return Err(io::Error::other(
                "iceoryx2 send: no subscriber received the sample",
            ));
        }
        Ok(())
    }

    fn recv(&mut self, _mtype: i64) -> io::Result<&[u8]> {
        self.last = None;
        loop {
            if let Some(s) = self.subscriber.receive().map_err(|e| err("receive", e))? {
                self.last = Some(s);
                break;
            }
            std::hint::spin_loop();
        }
        Ok(self.last.as_ref().expect("just set").payload())
    }
}
