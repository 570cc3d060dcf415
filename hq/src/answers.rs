//! Households answer from the TV (issue 21): an HTTPS endpoint of HQ, off unless `[answers]`
//! is in hq.toml, where a household gives its household number, its answer code (printed on
//! its registration letter, see [`code`]) and one of four answers: evacuated elsewhere, safe
//! at home, need help here (with how many people), reached the shelter.
//!
//! - [`code`]: answer codes, derived from HQ's key (HQ stores none);
//! - [`limits`]: token buckets per source and household, wrong codes counted;
//! - [`desk`]: one answer checked and stored (self-reported, in HQ's store's `answers`);
//! - [`server`]: rustls and HTTP/1.1 (hyper, axum) with its bounds;
//! - [`tv`]: a stock TV's form (`POST /answer/tv`, BML's `transmitTextDataOverIP`).
//!
//! An answer is self-reported: it is kept apart from shelters' events and officers' marks and
//! decides no presence (a card tap or an officer's mark always wins).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::tokio_rustls::TlsAcceptor;
use serde::Deserialize;

use crate::config::{Config, TlsFiles};
use crate::error::HqError;

pub mod code;
pub mod desk;
pub mod limits;
pub mod server;
pub mod tv;

pub use code::{AnswerCode, AnswerCodeKey};
pub use desk::{AnswerKind, AnswerRequest, AnswerVerdict, Desk};
pub use limits::Rates;

/// `[answers]`: where and how the answer endpoint listens, and its limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswersConfig {
    /// The HTTPS listener, e.g. `0.0.0.0:8443`.
    pub listen: SocketAddr,
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// Answers one source (IPv4 address, IPv6 /64) may send at once.
    #[serde(default = "default_source_burst")]
    pub source_burst: u32,
    /// One more answer per source each this many milliseconds.
    #[serde(default = "default_source_every_ms")]
    pub source_every_ms: u64,
    /// Answers (with the right code) one household may send at once.
    #[serde(default = "default_household_burst")]
    pub household_burst: u32,
    /// One more answer per household each this many milliseconds.
    #[serde(default = "default_household_every_ms")]
    pub household_every_ms: u64,
    /// Extra tokens a wrong code costs its source.
    #[serde(default = "default_wrong_code_cost")]
    pub wrong_code_cost: u32,
    /// Wrong codes a household may be sent before its answers need an officer's confirmation.
    #[serde(default = "default_failures")]
    pub failures_before_confirmation: u32,
    /// Sources remembered at once (bounded memory).
    #[serde(default = "default_max_sources")]
    pub max_sources: usize,
    /// The family codes' keyed hashes for `/anpi` (`evac-hq family-codes` writes them);
    /// without it, families ask by name and date of birth only.
    #[serde(default)]
    pub family_codes: Option<PathBuf>,
}

fn default_source_burst() -> u32 {
    20
}
fn default_source_every_ms() -> u64 {
    3000
}
fn default_household_burst() -> u32 {
    10
}
fn default_household_every_ms() -> u64 {
    30_000
}
fn default_wrong_code_cost() -> u32 {
    4
}
fn default_failures() -> u32 {
    5
}
fn default_max_sources() -> usize {
    65_536
}

impl AnswersConfig {
    /// The limits of this config.
    pub fn rates(&self) -> Rates {
        Rates {
            source_burst: self.source_burst.max(1),
            source_every: Duration::from_millis(self.source_every_ms.max(1)),
            household_burst: self.household_burst.max(1),
            household_every: Duration::from_millis(self.household_every_ms.max(1)),
            wrong_code_cost: self.wrong_code_cost,
            failures_before_confirmation: self.failures_before_confirmation,
            max_sources: self.max_sources.max(1),
        }
    }
}

/// The answer endpoint while it runs; stops when dropped.
pub struct RunningAnswers {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its desk (counts).
    pub desk: Arc<Desk>,
    tasks: [tokio::task::JoinHandle<()>; 3],
}

impl Drop for RunningAnswers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Logs once a minute what the endpoint did, when it did anything: a flood of wrong codes
/// makes one line a minute, not one a guess.
async fn log_counts(desk: Arc<Desk>) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut last = [0u64; 5];
    loop {
        tick.tick().await;
        let c = &desk.counts;
        let now = [
            &c.accepted,
            &c.refused,
            &c.limited,
            &c.malformed,
            &c.unavailable,
        ]
        .map(|n| n.load(Relaxed));
        let d: Vec<u64> = now
            .iter()
            .zip(last)
            .map(|(n, l)| n.saturating_sub(l))
            .collect();
        last = now;
        if d[1] + d[2] + d[3] + d[4] > 0 {
            tracing::warn!(
                accepted = d[0],
                wrong_code = d[1],
                rate_limited = d[2],
                malformed = d[3],
                not_stored = d[4],
                "answers refused in the last minute"
            );
        } else if d[0] > 0 {
            tracing::info!(accepted = d[0], "answers in the last minute");
        }
    }
}

/// The TLS acceptor of `[answers]` (the broker gate's loader), errors naming the fields.
pub(crate) fn tls(a: &AnswersConfig) -> Result<TlsAcceptor, HqError> {
    let files = TlsFiles {
        cert: a.cert.clone(),
        key: a.key.clone(),
    };
    crate::broker::tls_acceptor(&files).map_err(|e| HqError::Field {
        field: "answers.cert/answers.key".into(),
        path: a.cert.clone(),
        message: match e {
            HqError::Broker(b) => b.to_string(),
            other => other.to_string(),
        },
    })
}

/// Starts the answer endpoint of `cfg` for the town's `households`, if `[answers]` is there.
pub async fn start(
    cfg: &Config,
    households: impl IntoIterator<Item = u32>,
) -> Result<Option<RunningAnswers>, HqError> {
    let Some(a) = &cfg.answers else {
        return Ok(None);
    };
    let tls = tls(a)?;
    let key = AnswerCodeKey::derive(&crate::check::hq_key(cfg)?);
    let store = crate::store::AnswerStore::open(&cfg.store_path())?;
    let desk = Arc::new(Desk::new(
        cfg.town.clone(),
        households,
        key,
        a.rates(),
        store,
    )?);
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|e| HqError::Field {
            field: "answers.listen".into(),
            path: a.listen.to_string().into(),
            message: format!("cannot listen: {e}"),
        })?;
    let addr = listener
        .local_addr()
        .map_err(HqError::io("answers.listen", "listen"))?;
    println!("evac-hq: answers listening on {addr}");
    tracing::info!(%addr, "answer endpoint listening (HTTPS)");
    // Families' queries (/anpi) share the server; if their desk cannot be made (a family
    // code file that does not read), answers are served all the same.
    let (anpi, fresh) = match crate::anpi::desk(cfg, a) {
        Ok((anpi, reader)) => {
            let anpi = Arc::new(anpi);
            let fresh = tokio::spawn(crate::anpi::keep_fresh(Arc::clone(&anpi), reader));
            (Some(crate::anpi::router(anpi)), Some(fresh))
        }
        Err(e) => {
            tracing::error!(error = %e, "/anpi not served: families cannot ask");
            (None, None)
        }
    };
    let tasks = [
        tokio::spawn(server::serve(listener, tls, Arc::clone(&desk), anpi)),
        tokio::spawn(log_counts(Arc::clone(&desk))),
        fresh.unwrap_or_else(|| tokio::spawn(async {})),
    ];
    Ok(Some(RunningAnswers { addr, desk, tasks }))
}

#[cfg(test)]
mod tests;
