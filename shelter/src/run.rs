//! `evac-shelter run`: the node's main loop. One thread owns the node (ledger, door, card
//! reader); stdin (or a command file), the replicator and the kiosk's keyboard feed it
//! through one channel.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use evac_protocol::SecretKey;
use evac_shelter::card::pcsc_backend::{PcscReader, ReaderEvent};
use evac_shelter::card::virtual_card::{CardFile, InProcessReader};
use evac_shelter::check;
use evac_shelter::command::{Command, parse_tagged};
use evac_shelter::config::Config;
use evac_shelter::kiosk::{KioskState, Language};
use evac_shelter::node::{Node, TapReport, TapTime};
use evac_shelter::pinpad::{PadKey, PadView, PinPad};
use evac_shelter::replicate::{Replicator, ReplicatorConfig, Shared};
use serde_json::json;

enum Input {
    Line(String),
    /// The registry replica in shards is in step with HQ at this version and digest.
    Shards(u64, String),
    /// The terminal changed size: draw the kiosk again.
    Redraw,
    /// A key of the door keypad (the PIN pad).
    Pad(PadKey),
    Eof,
}

/// Where results go: JSON lines on stdout, or the kiosk screen.
enum Output {
    /// JSON lines; with the `--id` of the command line being answered, echoed in each answer.
    Json(Option<String>),
    Kiosk(Box<(ratatui::DefaultTerminal, KioskState)>),
}

impl Output {
    fn report(&mut self, r: &TapReport, node: &Node, shared: &Shared) {
        match self {
            Output::Json(id) => line(serde_json::to_value(r).unwrap_or_default(), id),
            Output::Kiosk(k) => {
                let (term, state) = &mut **k;
                state.last = Some(r.clone());
                state.present = node.door().present_count();
                state.pending = pending(node, shared);
                let _ = term.draw(|f| evac_shelter::kiosk::render(f, state));
            }
        }
    }

    /// Redraws the kiosk when the figures under it changed (HQ acknowledged events).
    fn refresh(&mut self, node: &Node, shared: &Shared) {
        if let Output::Kiosk(k) = self {
            let (term, state) = &mut **k;
            let (present, pending) = (node.door().present_count(), pending(node, shared));
            let recovered = shared.behind_hq.lock().is_ok_and(|b| b.is_some());
            if (state.present, state.pending, state.ledger_recovered)
                != (present, pending, recovered)
            {
                (state.present, state.pending, state.ledger_recovered) =
                    (present, pending, recovered);
                let _ = term.draw(|f| evac_shelter::kiosk::render(f, state));
            }
        }
    }

    /// Shows what the PIN pad holds (never the digits).
    fn pad(&mut self, view: PadView) {
        if let Output::Kiosk(k) = self {
            let (term, state) = &mut **k;
            if state.pad != view {
                state.pad = view;
                let _ = term.draw(|f| evac_shelter::kiosk::render(f, state));
            }
        }
    }

    fn redraw(&mut self) {
        if let Output::Kiosk(k) = self {
            let (term, state) = &mut **k;
            let _ = term.autoresize();
            let _ = term.draw(|f| evac_shelter::kiosk::render(f, state));
        }
    }

    fn info(&mut self, v: serde_json::Value) {
        if let Output::Json(id) = self {
            line(v, id);
        }
    }

    /// The id the answers to the next command line carry (`None` after it).
    fn answering(&mut self, id: Option<String>) {
        if let Output::Json(current) = self {
            *current = id;
        }
    }
}

/// Events recorded and not yet acknowledged by HQ.
fn pending(node: &Node, shared: &Shared) -> u64 {
    node.ledger()
        .last_seq()
        .saturating_sub(shared.acked_through.load(Ordering::Relaxed))
}

fn line(mut v: serde_json::Value, id: &Option<String>) {
    if let (Some(id), Some(fields)) = (id, v.as_object_mut()) {
        fields.insert("id".into(), id.clone().into());
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Runs the node until its input ends or `quit`.
pub fn run(config: &Path, kiosk: bool, commands: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::read(config)?;
    // Made if missing, and held: a second node on this directory stops here with one line.
    let _lock = evac_protocol::DataDirLock::acquire(&cfg.data_dir, "data_dir")?;
    let log_path = cfg.data_dir.join("shelter.log");
    init_logging(&log_path);
    let key = check::node_key(&cfg)?;
    let hq_key = check::hq_key(&cfg)?;
    let trust = check::trust_store(&cfg)?;
    let mut node = Node::open(
        &cfg.ledger_path(),
        cfg.shelter,
        SecretKey::from_pem(&key.to_pem()?)?,
        trust,
        cfg.debounce_ms,
    )?;
    node.set_town(cfg.town.clone());
    let card_key = check::card_digest_key(&cfg)?;
    if let Some(k) = card_key.clone() {
        node.set_card_key(k);
    }
    let shared = Arc::new(Shared {
        present: node.present_counter(),
        ..Shared::default()
    });
    let (tx, rx) = channel::<Input>();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let replicator = match &cfg.broker {
        None => None,
        Some(b) => {
            let Some(hq) = hq_key.clone() else {
                bail!(
                    "{}: a broker needs hq_public_key to check HQ's acks",
                    config.display()
                );
            };
            if card_key.is_none() {
                bail!(
                    "{}: a broker needs card_digest_key to find cards in HQ's registry \
                     (evac-hq card-key --hq-key hq.key --out card.key at HQ)",
                    config.display()
                );
            }
            let broker = b.url().map_err(anyhow::Error::msg)?;
            let ca_pem = match &b.ca {
                Some(ca) => Some(std::fs::read(ca).with_context(|| {
                    format!(
                        "[broker] ca {}: cannot read the broker's CA certificate",
                        ca.display()
                    )
                })?),
                None => None,
            };
            let rcfg = ReplicatorConfig {
                town: cfg.town.clone(),
                shelter: cfg.shelter,
                broker,
                password: b.password.clone(),
                ca_pem,
                ack_timeout: Duration::from_millis(b.ack_timeout_ms),
                reconnect_max: Duration::from_millis(b.reconnect_max_ms),
                batch_events: b.batch_events.max(1),
            };
            let synced = tx.clone();
            let r = Replicator::new(rcfg, &cfg.ledger_path(), key, hq.clone(), shared.clone())?;
            // The registry in shards, kept by the replicator and read by the door (its own
            // connection, opened by `Node::open`, which set aside a replica that did not
            // read): a replica that does not open never stops the node.
            let replica_path = evac_shelter::replica::replica_path(&cfg.ledger_path());
            let r = match evac_shelter::replica::Replica::open(&replica_path) {
                Ok(replica) => r.with_shards(
                    evac_shelter::replica::sync::Sync::new(cfg.town.clone(), hq.clone(), replica),
                    Box::new(move |v, d| {
                        let _ = synced.send(Input::Shards(v, d));
                    }),
                ),
                Err(e) => {
                    tracing::error!(error = %e, path = %replica_path.display(), "no registry replica: every card reads as not registered");
                    r
                }
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the replication runtime")?;
            Some(std::thread::spawn(move || rt.block_on(r.run(stop_rx))))
        }
    };

    spawn_reader(tx.clone(), commands.map(Path::to_path_buf))?;
    spawn_signals(tx.clone())?;
    let mut out = if kiosk {
        let language = Language::parse(cfg.kiosk.language.as_deref())
            .map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
        let mut term = ratatui::init();
        let state = KioskState {
            shelter: cfg
                .kiosk
                .name
                .clone()
                .unwrap_or_else(|| format!("Shelter {}", cfg.shelter)),
            language,
            present: node.door().present_count(),
            pending: pending(&node, &shared),
            ..KioskState::default()
        };
        let _ = term.draw(|f| evac_shelter::kiosk::render(f, &state));
        spawn_keys(tx.clone());
        Output::Kiosk(Box::new((term, state)))
    } else {
        Output::Json(None)
    };
    let pcsc = if cfg.card.reader == "virtual" {
        None
    } else {
        Some(PcscReader::open(&cfg.card.reader)?)
    };
    // Ledger open, reader found: the door can take taps (with or without a network).
    evac_protocol::notify_ready();
    let result = main_loop(&mut node, &rx, &mut out, pcsc.as_ref(), &shared);
    if let Output::Kiosk(_) = out {
        ratatui::restore();
    }
    let _ = stop_tx.send(true);
    if let Some(h) = replicator {
        let _ = h.join();
    }
    result
}

fn init_logging(path: &Path) {
    if let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_writer(std::sync::Mutex::new(f))
            .with_ansi(false)
            .try_init();
    }
}

fn spawn_reader(tx: Sender<Input>, file: Option<PathBuf>) -> anyhow::Result<()> {
    let reader: Box<dyn BufRead + Send> = match &file {
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    std::thread::spawn(move || {
        for l in reader.lines() {
            match l {
                Ok(l) => {
                    if tx.send(Input::Line(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send(Input::Eof);
    });
    Ok(())
}

/// The kiosk's keyboard. No key stops the node (a resident stands at it): staff stop it
/// through the service manager, which sends SIGTERM (see [`spawn_signals`]).
fn spawn_keys(tx: Sender<Input>) {
    std::thread::spawn(move || {
        use crossterm::event::{Event, KeyCode, KeyEventKind, read};
        while let Ok(ev) = read() {
            let input = match ev {
                Event::Resize(..) => Input::Redraw,
                Event::Key(k) if k.kind != KeyEventKind::Release => match k.code {
                    KeyCode::Char(c) if c.is_ascii_digit() => {
                        Input::Pad(PadKey::Digit(c as u8 - b'0'))
                    }
                    KeyCode::Backspace => Input::Pad(PadKey::Back),
                    KeyCode::Esc | KeyCode::Delete => Input::Pad(PadKey::Clear),
                    KeyCode::Enter => Input::Pad(PadKey::Enter),
                    _ => continue,
                },
                _ => continue,
            };
            // The main loop has ended: nobody is left to draw for.
            if tx.send(input).is_err() {
                return;
            }
        }
    });
}

/// SIGTERM (the service manager stopping the node) and SIGINT end the main loop cleanly: the
/// terminal is restored and the replicator says "offline".
fn spawn_signals(tx: Sender<Input>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal runtime")?;
    std::thread::spawn(move || {
        rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            let _ = tx.send(Input::Eof);
        });
    });
    Ok(())
}

fn main_loop(
    node: &mut Node,
    rx: &Receiver<Input>,
    out: &mut Output,
    pcsc: Option<&PcscReader>,
    shared: &Shared,
) -> anyhow::Result<()> {
    let mut next_pin: Option<String> = None;
    let mut pad = PinPad::default();
    let mut next_day_only = false;
    let mut card_handled = false;
    let mut shards_ready = false;
    // Monotonic times (the door's debounce) count from here.
    let origin = Instant::now();
    loop {
        // With a reader to poll, or a kiosk whose figures follow HQ's acks, wake up anyway.
        let wait = match (pcsc, &out) {
            (Some(_), _) => Some(Duration::from_millis(20)),
            (None, Output::Kiosk(_)) => Some(Duration::from_millis(250)),
            (None, Output::Json(_)) => None,
        };
        let (input, timed_out) = match wait {
            None => (rx.recv().ok(), false),
            Some(w) => match rx.recv_timeout(w) {
                Ok(i) => (Some(i), false),
                Err(RecvTimeoutError::Timeout) => (None, true),
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            },
        };
        out.refresh(node, shared);
        if pad.forget_stale(origin.elapsed()) {
            out.pad(pad.view());
        }
        match input {
            // With a real reader, no commands is normal (a service's stdin is /dev/null): the
            // node runs on until stopped. Only a virtual reader's input ending ends the run.
            Some(Input::Eof) if pcsc.is_some() => {}
            Some(Input::Eof) => return Ok(()),
            Some(Input::Shards(version, digest)) => {
                node.replica_changed();
                out.info(
                    json!({"result": "registry-shards", "version": version, "digest": digest}),
                );
                // The door finds cards with the replica: what waits for HQ's registry
                // ("result":"registry") may go on, once.
                if !shards_ready {
                    shards_ready = true;
                    out.info(json!({"result": "registry", "from": "shards", "version": version}));
                }
            }
            Some(Input::Redraw) => out.redraw(),
            Some(Input::Pad(k)) => {
                pad.key(k, origin.elapsed());
                out.pad(pad.view());
            }
            Some(Input::Line(l)) => {
                let (id, parsed) = parse_tagged(&l);
                out.answering(id);
                match parsed {
                    Ok(None) => {}
                    Err(e) => out.info(json!({"result": "error", "message": e.to_string()})),
                    Ok(Some(Command::Quit)) => return Ok(()),
                    Ok(Some(Command::DayOnly)) => {
                        next_day_only = true;
                        out.info(
                            json!({"result": "day", "message": "the next card tap is day-only"}),
                        );
                    }
                    Ok(Some(cmd)) => {
                        command(node, cmd, (&mut next_pin, &mut pad), out, shared, origin);
                        out.pad(pad.view());
                    }
                }
                out.answering(None);
            }
            None if !timed_out => return Ok(()),
            None => {}
        }
        if let Some(reader) = pcsc {
            let want = !card_handled;
            match reader.wait_for(want, Duration::from_millis(150)) {
                Ok(ReaderEvent::CardPresent) => {
                    card_handled = true;
                    let pin = next_pin.take().or(pad.take(origin.elapsed()));
                    out.pad(pad.view());
                    let r = match reader.connect() {
                        Ok(mut card) => {
                            let day_only = std::mem::take(&mut next_day_only);
                            node.tap_card(&mut card, pin.as_deref(), day_only, TapTime::now(origin))
                        }
                        Err(e) => TapReport::error_message(e.to_string()),
                    };
                    if r.result == "recorded" {
                        shared.new_event.notify_one();
                    }
                    out.report(&r, node, shared);
                }
                Ok(ReaderEvent::Empty) => card_handled = false,
                Ok(ReaderEvent::Timeout) => {}
                Err(e) => {
                    out.report(&TapReport::error_message(e.to_string()), node, shared);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }
}

fn command(
    node: &mut Node,
    cmd: Command,
    (next_pin, pad): (&mut Option<String>, &mut PinPad),
    out: &mut Output,
    shared: &Shared,
    origin: Instant,
) {
    let now = TapTime::now(origin);
    let report = match cmd {
        Command::Tap {
            card,
            pin,
            day_only,
            pull_after,
        } => {
            // The card file is read at each tap, as a card put on a reader is read afresh (its
            // PIN tries are kept in the file). A node that kept every card it had seen held a
            // key and certificate for each of a drill's taps, about 8 KB each, to the end.
            let (mut vc, mut file) = match CardFile::read(&card).and_then(|f| Ok((f.to_card()?, f)))
            {
                Ok(c) => c,
                Err(e) => {
                    out.report(&TapReport::error_message(e.to_string()), node, shared);
                    return;
                }
            };
            let mut reader = InProcessReader::new(&mut vc);
            reader.pull_after = pull_after;
            // A PIN given with the tap, else one set by `pin`, else one typed on the pad.
            let pin = pin
                .or_else(|| next_pin.take())
                .or_else(|| pad.take(origin.elapsed()));
            let r = node.tap_card(&mut reader, pin.as_deref(), day_only, now);
            if pin.is_some() && file.pin_tries != vc.pin_tries() {
                // The retry counter lives on the card: keep it in the card file too.
                file.pin_tries = vc.pin_tries();
                let _ = file.write(&card);
            }
            r
        }
        Command::Staff {
            household,
            resident,
            day_only,
        } => node.staff(household, resident, day_only, now),
        Command::Pin(p) => {
            *next_pin = Some(p);
            out.info(json!({"result": "pin", "message": "PIN set for the next card"}));
            return;
        }
        Command::Correct { seq, reason } => node.correct(seq, &reason, now),
        Command::Here => {
            let reg = node.door().registry();
            let people: Vec<_> = node
                .door()
                .present_people()
                .into_iter()
                .map(|(r, card)| match r {
                    Some(r) => json!({
                        "resident": r,
                        "household": reg.household_of(r),
                        "name": reg.member(r).map(|m| m.name),
                    }),
                    None => {
                        json!({"card": card.map(|c| hex::encode(c.serial)), "unregistered": true})
                    }
                })
                .collect();
            out.info(json!({"result": "here", "present": people.len(), "people": people}));
            return;
        }
        Command::DayOnly => return,
        Command::Lookup(h) => {
            let members: Vec<_> = node
                .door()
                .registry()
                .members(h)
                .unwrap_or_default()
                .iter()
                .map(|m| json!({"id": m.id, "name": m.name, "present": node.door().is_present(m.id)}))
                .collect();
            out.info(json!({"result": "lookup", "household": h, "members": members}));
            return;
        }
        Command::Status => {
            out.info(json!({
                "result": "status",
                "last_seq": node.ledger().last_seq(),
                "acked_through": shared.acked_through.load(Ordering::Relaxed),
                "present": node.door().present_count(),
                "registry_version": node.door().registry().version(),
                "card_key_matches": node.door().registry().key_matches(),
                "sessions": shared.sessions.load(Ordering::Relaxed),
                "batches_sent": shared.batches_sent.load(Ordering::Relaxed),
                "repaired_rows_sent": shared.repaired_rows.load(Ordering::Relaxed),
                "rejected_batches": shared.rejected_batches.load(Ordering::Relaxed),
                "hq_rejects": shared.last_rejection.lock().ok().and_then(|l| l.clone()),
                "behind_hq": shared.behind_hq.lock().ok().and_then(|l| l.clone()),
                "unreadable_rows": node.unreadable_rows,
            }));
            return;
        }
        Command::Quit => return,
    };
    if report.result == "recorded" {
        shared.new_event.notify_one();
    }
    out.report(&report, node, shared);
}
