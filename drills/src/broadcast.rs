//! The drill's broadcaster and the town's TVs, in process: HQ's signed orders from MQTT
//! (`evac/v1/{town}/orders`, checked with HQ's key) go into the broadcaster's carousel, which is
//! muxed into a real MPEG-2 transport stream at its bitrate in real time; every packet goes to
//! [`TownTv`], and to `broadcast.ts` in the drill's folder (up to a size limit) for ffprobe.
//!
//! The orders source is the one integration point with HQ: while HQ publishes order batches and
//! the broadcaster signs the overlay with HQ's overlay key, the drill does the same; when HQ
//! publishes signed sections, only [`orders_source`] changes.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use evac_broadcaster::carousel::Carousel;
use evac_broadcaster::mux::{Generator, MuxConfig, PACKET_BITS};
use evac_broadcaster::orders::open_order_batch;
use evac_broadcaster::psi::ServiceLayout;
use evac_protocol::time::TimeSource;
use evac_protocol::{OrderBatch, PublicKey, SecretKey, Slug, Topic};

use crate::tv::{OnScreen, Refused, TownTv};

/// What the broadcast thread reports.
pub enum TvEvent {
    /// Household's screen changed, at drill time (ms).
    Changed(u32, OnScreen, u64),
}

/// Where the broadcaster connects.
#[derive(Clone)]
pub struct BrokerLogin {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// MQTT user.
    pub user: String,
    /// Password.
    pub password: String,
}

/// Settings of the broadcast.
pub struct BroadcastConfig {
    /// The town.
    pub town: Slug,
    /// HQ's overlay key (signs the sections, as `evac-broadcaster mux --key`).
    pub overlay_key: SecretKey,
    /// HQ's public key (checks MQTT orders and, at the TVs, the sections).
    pub hq: PublicKey,
    /// The broker.
    pub broker: BrokerLogin,
    /// The overlay bitrate.
    pub overlay_bitrate: u64,
    /// The drill clock.
    pub clock: TimeSource,
    /// Where to write the stream.
    pub ts_file: Option<PathBuf>,
}

/// Figures of a finished broadcast.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BroadcastStats {
    /// Packets muxed (and decoded by the TVs).
    pub packets: u64,
    /// Order batches taken from HQ.
    pub batches: u64,
    /// Order messages refused (bad signature or form).
    pub refused_messages: u64,
    /// Sections the TVs refused.
    pub tv_refused: Refused,
    /// Households whose order is on air.
    pub households_on_air: usize,
}

/// The running broadcast.
pub struct Broadcast {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<anyhow::Result<BroadcastStats>>>,
    /// Screen changes.
    pub events: mpsc::Receiver<TvEvent>,
}

/// Subscribes to HQ's orders; each verified batch comes out of the channel. A refused message
/// bumps `refused`.
pub fn orders_source(
    town: &Slug,
    hq: PublicKey,
    broker: &BrokerLogin,
    refused: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
) -> mpsc::Receiver<OrderBatch> {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new(
        format!("evac-drill-broadcaster-{}", std::process::id()),
        broker.host.clone(),
        broker.port,
    );
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_max_packet_size(64 << 20, 64 << 20);
    opts.set_credentials(broker.user.clone(), broker.password.clone());
    let (client, mut connection) = Client::new(opts, 64);
    let topic = Topic::Orders(town.clone()).to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    // Every (re)connect: a restarted broker has forgotten the subscription.
                    let _ = client.try_subscribe(topic.clone(), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    match open_order_batch(&p.payload, &hq) {
                        Ok(b) => {
                            if tx.send(b).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "order message refused, not aired");
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    });
    rx
}

/// Most bytes of stream written to the `.ts` file.
const TS_FILE_LIMIT: u64 = 64 << 20;

impl Broadcast {
    /// Starts the broadcast thread.
    pub fn start(cfg: BroadcastConfig) -> anyhow::Result<Broadcast> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, events) = mpsc::channel();
        let stop2 = stop.clone();
        let mut file = match &cfg.ts_file {
            Some(p) => Some(std::io::BufWriter::new(
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
            )),
            None => None,
        };
        let handle = std::thread::spawn(move || -> anyhow::Result<BroadcastStats> {
            let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let orders = orders_source(
                &cfg.town,
                cfg.hq.clone(),
                &cfg.broker,
                refused.clone(),
                stop2.clone(),
            );
            let now = cfg.clock.now_secs();
            let bitrate = cfg.overlay_bitrate + 200_000;
            let mux_cfg = MuxConfig {
                layout: ServiceLayout::default(),
                bitrate,
                overlay_bitrate: cfg.overlay_bitrate,
                transport_stream_id: 1,
                start_unix: now,
            };
            let mut g = Generator::new(mux_cfg, Carousel::new(cfg.overlay_key))
                .context("setting up the muxer")?;
            let mut tv = TownTv::new(cfg.hq, now);
            let mut stats = BroadcastStats::default();
            let started = Instant::now();
            let mut written = 0u64;
            let mut changed = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let now = cfg.clock.now_secs();
                while let Ok(batch) = orders.try_recv() {
                    g.ours().source_mut().apply(&batch, now);
                    stats.batches += 1;
                }
                tv.set_now(now);
                // Real time: as many packets as the bitrate allows since the start.
                let due =
                    (started.elapsed().as_secs_f64() * bitrate as f64 / PACKET_BITS as f64) as u64;
                while g.packets() < due {
                    let p = g.next_packet();
                    tv.feed(&p, &mut changed);
                    if let Some(f) = file.as_mut()
                        && written < TS_FILE_LIMIT
                    {
                        f.write_all(&p).context("writing broadcast.ts")?;
                        written += p.len() as u64;
                    }
                }
                if !changed.is_empty() {
                    let at = cfg.clock.now_ms();
                    for (h, on) in changed.drain(..) {
                        let _ = tx.send(TvEvent::Changed(h, on, at));
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if let Some(f) = file.as_mut() {
                f.flush().context("writing broadcast.ts")?;
            }
            stats.packets = g.packets();
            stats.refused_messages = refused.load(Ordering::Relaxed);
            stats.tv_refused = tv.refused();
            stats.households_on_air = g.ours().source_mut().households();
            Ok(stats)
        });
        Ok(Broadcast {
            stop,
            handle: Some(handle),
            events,
        })
    }

    /// Stops the broadcast and returns its figures.
    pub fn finish(mut self) -> anyhow::Result<BroadcastStats> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| anyhow::anyhow!("the broadcast thread panicked"))?,
            None => Ok(BroadcastStats::default()),
        }
    }
}

impl Drop for Broadcast {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
