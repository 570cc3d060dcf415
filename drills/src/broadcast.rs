//! The drill's broadcaster and the town's TVs, in process: HQ's signed sections from MQTT
//! (`evac/v1/{town}/air/+`, retained per household group) go into the broadcaster's carousel
//! through the broadcaster's own live core, are muxed into a real MPEG-2 transport stream at its
//! bitrate in real time; every packet goes to [`TownTv`] (which trusts HQ's key, as a TV does),
//! to [`StockTvs`] (the data-broadcasting page of the TVs without a box: the broadcaster's
//! stock-TV service is on, as `evac-broadcaster mux --bml`, checking HQ's signature at the
//! head-end) and to `broadcast.ts` in the drill's folder (up to a size limit) for ffprobe and
//! web-bml.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{DrillError, StepContext};
use evac_broadcaster::bml::{BmlRejected, BmlSettings};
use evac_broadcaster::carousel::Carousel;
use evac_broadcaster::live::{LiveCore, Update};
use evac_broadcaster::mqtt::{air_login, subscribe_air};
use evac_broadcaster::mux::{Generator, MuxConfig, PACKET_BITS};
use evac_broadcaster::psi::ServiceLayout;
use evac_protocol::time::TimeSource;
use evac_protocol::{PublicKey, Slug};

use crate::stocktv::{StockRefused, StockTvs};
use crate::tv::{OnScreen, Refused, TownTv};

/// What the broadcast thread reports.
pub enum TvEvent {
    /// Household's box (the overlay) changed, at drill time (ms).
    Changed(u32, OnScreen, u64),
    /// Household's stock TV (the data-broadcasting page) came to show a new order, at drill
    /// time (ms).
    StockTv(u32, OnScreen, u64),
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
    /// PEM of the CA that signed the broker's certificate: TLS when given.
    pub ca: Option<Vec<u8>>,
}

/// Settings of the broadcast.
pub struct BroadcastConfig {
    /// The town.
    pub town: Slug,
    /// HQ's public key: the TVs trust it for orders (the broadcaster holds no key at all).
    pub hq: PublicKey,
    /// The broker.
    pub broker: BrokerLogin,
    /// The overlay bitrate.
    pub overlay_bitrate: u64,
    /// The drill clock.
    pub clock: TimeSource,
    /// Where to write the stream.
    pub ts_file: Option<PathBuf>,
    /// The stock-TV service (`mux --bml`'s settings: the town file, HQ's key file, the
    /// carousel's PID and bitrate).
    pub bml: BmlSettings,
    /// The town's shelters (id, name): a resident reading a name on the page walks there.
    pub shelters: Vec<(u32, String)>,
}

/// Figures of a finished broadcast.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BroadcastStats {
    /// Packets muxed (and decoded by the TVs).
    pub packets: u64,
    /// Group updates taken from HQ.
    pub batches: u64,
    /// HQ's messages refused as malformed (the TVs check the signatures).
    pub refused_messages: u64,
    /// Sections the TVs refused.
    pub tv_refused: Refused,
    /// Households whose TV shows an order in force at the end.
    pub households_on_air: usize,
    /// Packets of the stock-TV (BML) data carousel.
    pub bml_packets: u64,
    /// Sections the head-end kept off the stock-TV carousel (HQ's signature, key, town, time).
    pub bml_rejected: BmlRejected,
    /// Sections and modules the stock TVs refused.
    pub stock_tv_refused: StockRefused,
    /// Households whose stock TV's page shows an order at the end.
    pub households_on_stock_tv: usize,
    /// The longest the boxes' overlay carousel took to come round once during the drill, at
    /// its bitrate (every section in force, with the transport packets' overhead), seconds.
    pub overlay_cycle_s: f64,
    /// The same for the stock TVs' data carousel (every module's blocks).
    pub bml_cycle_s: f64,
}

/// Seconds to air `bytes` of sections at `bitrate`, with the 4-byte header of every 188-byte
/// transport packet.
fn airtime_s(bytes: usize, bitrate: u64) -> f64 {
    if bitrate == 0 {
        return 0.0;
    }
    bytes as f64 * 188.0 / 184.0 * 8.0 / bitrate as f64
}

/// The running broadcast.
pub struct Broadcast {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<BroadcastStats, DrillError>>>,
    /// Screen changes.
    pub events: mpsc::Receiver<TvEvent>,
}

/// HQ's signed sections as HQ publishes them (retained, one message per household group on
/// `evac/v1/{town}/air/+`), through the broadcaster's own MQTT side, as `evac-broadcaster
/// mux --broker` takes them.
pub fn orders_source(town: &Slug, broker: &BrokerLogin) -> mpsc::Receiver<Update> {
    let url = evac_broadcaster::mqtt::BrokerUrl {
        host: broker.host.clone(),
        port: broker.port,
        tls: false,
    };
    let login = air_login(
        format!("evac-drill-broadcaster-{}", std::process::id()),
        Some(&broker.user),
        Some(&broker.password),
    )
    .ca(broker.ca.clone());
    subscribe_air(&url, &login, town.clone())
}

/// Most bytes of stream written to the `.ts` file.
const TS_FILE_LIMIT: u64 = 64 << 20;

impl Broadcast {
    /// Starts the broadcast thread; `map` is the town of `cfg.bml.town_file`, already in
    /// memory (the stock-TV service reads its households and shelters from it rather than
    /// from a second copy of the file: at 300,000 households that copy cost the runner about
    /// 300 MiB, kept by the allocator after it was dropped).
    pub fn start(cfg: BroadcastConfig, map: &evac_maps::Town) -> Result<Broadcast, DrillError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, events) = mpsc::channel();
        let stop2 = stop.clone();
        let mut file = match &cfg.ts_file {
            Some(p) => Some(std::io::BufWriter::new(
                std::fs::File::create(p).with_step(|| format!("creating {}", p.display()))?,
            )),
            None => None,
        };
        // The stock-TV service (the town file read, walking distances worked out) before the
        // stream starts, so that it does not hold the first packets back.
        let bml = cfg
            .bml
            .service_for(&cfg.town, map)
            .step("setting up the stock-TV service")?;
        let handle = std::thread::spawn(move || -> Result<BroadcastStats, DrillError> {
            let orders = orders_source(&cfg.town, &cfg.broker);
            let mut core = LiveCore::new(None, true);
            let now = cfg.clock.now_secs();
            let bitrate = cfg.overlay_bitrate + cfg.bml.bitrate + 200_000;
            let mux_cfg = MuxConfig {
                layout: ServiceLayout {
                    data_pid: Some(cfg.bml.data_pid),
                    ..ServiceLayout::default()
                },
                bitrate,
                overlay_bitrate: cfg.overlay_bitrate,
                transport_stream_id: 1,
                start_unix: now,
            };
            let mut g = Generator::new(mux_cfg, Carousel::new()).step("setting up the muxer")?;
            g.ours()
                .set_bml(bml, cfg.bml.bitrate)
                .step("setting up the stock-TV service")?;
            let mut tv = TownTv::new(cfg.hq, now);
            let mut stock = StockTvs::new(
                cfg.shelters.iter().map(|(id, name)| (*id, name.as_str())),
                now,
            );
            let mut stats = BroadcastStats::default();
            let started = Instant::now();
            let mut cycle_measured = Instant::now();
            let mut written = 0u64;
            let (mut changed, mut stock_changed) = (Vec::new(), Vec::new());
            while !stop2.load(Ordering::Relaxed) {
                let now = cfg.clock.now_secs();
                // The stream's time table follows the drill clock, as a live head-end's follows
                // the wall clock: the stock TVs' page judges its tables' age by it.
                let t = g.time();
                g.ours().set_unix_at(t, now);
                while let Ok(update) = orders.try_recv() {
                    let group = matches!(update, Update::Group(..));
                    // The overlay, and the stock-TV carousel after its check of HQ's signature.
                    core.apply(g.ours(), update, now)
                        .step("taking in HQ's sections")?;
                    stats.batches += u64::from(group);
                }
                // The stock-TV tables are current while HQ's orders are (as `mux --bml`).
                if core.health().ok()
                    && let Some(bml) = g.ours().bml_mut()
                {
                    bml.confirm(now).step("confirming the stock-TV tables")?;
                }
                if cycle_measured.elapsed() >= Duration::from_secs(1) {
                    cycle_measured = Instant::now();
                    let overlay: usize = g.ours().source().sections().iter().map(|s| s.len()).sum();
                    stats.overlay_cycle_s = stats
                        .overlay_cycle_s
                        .max(airtime_s(overlay, cfg.overlay_bitrate));
                    if let Some(b) = g.ours().bml_mut() {
                        let bml = b.carousel().cycle_bytes();
                        stats.bml_cycle_s = stats.bml_cycle_s.max(airtime_s(bml, cfg.bml.bitrate));
                    }
                }
                tv.set_now(now);
                stock.set_now(now);
                // Real time: as many packets as the bitrate allows since the start.
                let due =
                    (started.elapsed().as_secs_f64() * bitrate as f64 / PACKET_BITS as f64) as u64;
                while g.packets() < due {
                    let p = g.next_packet();
                    tv.feed(&p, &mut changed);
                    stock.feed(&p, &mut stock_changed);
                    if let Some(f) = file.as_mut()
                        && written < TS_FILE_LIMIT
                    {
                        f.write_all(&p).step("writing broadcast.ts")?;
                        written += p.len() as u64;
                    }
                }
                if !changed.is_empty() || !stock_changed.is_empty() {
                    let at = cfg.clock.now_ms();
                    for (h, on) in changed.drain(..) {
                        let _ = tx.send(TvEvent::Changed(h, on, at));
                    }
                    for (h, on) in stock_changed.drain(..) {
                        let _ = tx.send(TvEvent::StockTv(h, on, at));
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if let Some(f) = file.as_mut() {
                f.flush().step("writing broadcast.ts")?;
            }
            stats.packets = g.packets();
            stats.refused_messages = core.health().refused;
            stats.tv_refused = tv.refused();
            stats.households_on_air = tv.households_shown();
            stats.bml_packets = g.ours().stats().data;
            stats.bml_rejected = g.ours().bml_mut().map(|b| b.rejected()).unwrap_or_default();
            stats.stock_tv_refused = stock.refused();
            stats.households_on_stock_tv = stock.households_shown();
            Ok(stats)
        });
        Ok(Broadcast {
            stop,
            handle: Some(handle),
            events,
        })
    }

    /// Stops the broadcast and returns its figures.
    pub fn finish(mut self) -> Result<BroadcastStats, DrillError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take() {
            Some(h) => h.join().map_err(|_| DrillError::Panicked("broadcast"))?,
            None => Ok(BroadcastStats::default()),
        }
    }
}

impl Drop for Broadcast {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
