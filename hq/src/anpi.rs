//! Families find their people (安否, issue 21 item 4): `GET/POST /anpi` on the answer
//! endpoint's HTTPS server. Someone types a resident's name in kana and date of birth, or the
//! family code the resident chose, and is told where HQ last knew them to be: checked in at a
//! shelter, checked out, or answered from the TV (self-reported), with the time in JST, or
//! "no information".
//!
//! - Only residents whose registry entry says they agreed (`anpi_consent`); nothing else is
//!   shown (no address, household, other member).
//! - "Unknown person", "did not agree", "several residents match" and "no information" get the
//!   same page, status 200, the same bytes but for the echoed name and date of birth; every
//!   query does the same work (the code's HMAC, both look-ups, a resident's facts) whatever
//!   it finds. A code is found by its keyed hash in a map: an attacker cannot choose hashes,
//!   so the map's timing tells nothing about codes.
//! - [`QUERIES_PER_MINUTE`] queries a minute per address (an IPv6 /64), then 429 with a page
//!   saying when to try again ([`crate::answers::limits`]).
//! - Every query is logged at info on HQ's log (target `evac_hq::anpi`): the address, by name
//!   or by code, and whether something was said; never the name, the date or the code typed.
//!   Refused queries are counted and logged once a minute.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use evac_maps::{BirthDate, Town, normalize_kana};
use evac_protocol::TownId;

use crate::answers::limits::{Admit, Limits, Peer, Rates};
use crate::error::HqError;

pub mod codes;
pub mod facts;
pub mod page;

pub use codes::FamilyCodeKey;
use facts::{Facts, Finding, Reader};
use page::{Lang, Outcome};

/// A time on HQ's clock (Unix ms) in JST.
pub fn jst(ms: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(ms / 1000).unwrap_or(0))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap_or(time::UtcOffset::UTC))
}

/// Queries one address may make in a minute.
pub const QUERIES_PER_MINUTE: u32 = 20;
/// How often the facts are read again from HQ's store.
pub const REFRESH: Duration = Duration::from_millis(500);
/// The largest query body.
pub const MAX_BODY: usize = 2048;

/// One resident as `/anpi` knows them.
#[derive(Debug, Clone, Copy)]
struct Entry {
    resident: u32,
    household: u32,
    consent: bool,
}

/// The registry's look-ups, the facts and the limits.
pub struct AnpiDesk {
    town: TownId,
    key: FamilyCodeKey,
    by_name: HashMap<(String, BirthDate), Vec<Entry>>,
    by_code: HashMap<codes::CodeHash, Entry>,
    /// Looked up when nothing matched, so every query reads one resident's facts.
    stand_in: Entry,
    facts: Mutex<Facts>,
    limits: Mutex<Limits>,
    started: Instant,
    /// Queries refused for their rate, since start.
    pub limited: AtomicU64,
    /// Queries answered, since start.
    pub answered: AtomicU64,
}

/// A query as typed.
#[derive(Debug, Default, Clone)]
pub struct Ask {
    /// The name in kana.
    pub kana: String,
    /// The date of birth, `YYYY-MM-DD`.
    pub birth: String,
    /// The family code.
    pub family_code: String,
    /// The page's language.
    pub lang: String,
}

impl Ask {
    /// From an `application/x-www-form-urlencoded` body (unknown fields ignored; each field
    /// cut to 200 characters).
    pub fn from_form(body: &[u8]) -> Ask {
        let mut a = Ask::default();
        for (k, v) in form_urlencoded::parse(body) {
            let v: String = v.chars().take(200).collect();
            match &*k {
                "kana" => a.kana = v,
                "birth" => a.birth = v,
                "family_code" => a.family_code = v,
                "lang" => a.lang = v,
                _ => {}
            }
        }
        a
    }
}

impl AnpiDesk {
    /// A desk for `town`, with the family codes' hashes (hash → resident), under `key`.
    pub fn new(
        slug: TownId,
        town: &Town,
        key: FamilyCodeKey,
        codes: HashMap<codes::CodeHash, u32>,
    ) -> AnpiDesk {
        let mut by_name: HashMap<(String, BirthDate), Vec<Entry>> = HashMap::new();
        let mut by_resident = HashMap::new();
        for h in &town.households {
            for m in &h.members {
                let e = Entry {
                    resident: m.resident,
                    household: h.id,
                    consent: m.anpi_consent,
                };
                by_resident.insert(m.resident, e);
                if let (Some(b), false) = (m.birth, m.kana.is_empty()) {
                    by_name
                        .entry((normalize_kana(&m.kana), b))
                        .or_default()
                        .push(e);
                }
            }
        }
        let by_code = codes
            .into_iter()
            .filter_map(|(h, r)| Some((h, *by_resident.get(&r)?)))
            .collect();
        let stand_in = by_resident.values().next().copied().unwrap_or(Entry {
            resident: 0,
            household: 0,
            consent: false,
        });
        let rates = Rates {
            source_burst: QUERIES_PER_MINUTE,
            source_every: Duration::from_secs(60) / QUERIES_PER_MINUTE,
            household_burst: 1,
            household_every: Duration::from_secs(60),
            wrong_code_cost: 0,
            failures_before_confirmation: u32::MAX,
            max_sources: 65_536,
        };
        AnpiDesk {
            town: slug,
            key,
            by_name,
            by_code,
            stand_in,
            facts: Mutex::new(Facts::new(town)),
            limits: Mutex::new(Limits::new(rates, [])),
            started: Instant::now(),
            limited: AtomicU64::new(0),
            answered: AtomicU64::new(0),
        }
    }

    fn facts(&self) -> std::sync::MutexGuard<'_, Facts> {
        // Nothing under this lock panics.
        self.facts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in what was read from the store.
    pub fn take(&self, rows: facts::Rows) {
        self.facts().take(rows);
    }

    /// Whether `ip` may ask now.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> bool {
        let mut l = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        l.admit_source(Peer::of(ip), now) == Admit::Yes
    }

    /// The answer to a query: the same work whatever it finds.
    pub fn answer(&self, ask: &Ask) -> Finding {
        let by_code = !ask.family_code.trim().is_empty();
        let hash = self.key.hash(&self.town, &ask.family_code);
        let coded = self.by_code.get(&hash).copied();
        let birth = ask.birth.trim().parse::<BirthDate>().ok();
        let named = birth.and_then(|b| self.by_name.get(&(normalize_kana(&ask.kana), b)));
        // One resident, or nobody: two residents of one name and birth date are not told apart.
        let named = match named.map(Vec::as_slice) {
            Some([one]) => Some(*one),
            _ => None,
        };
        let hit = if by_code { coded } else { named };
        let e = hit.unwrap_or(self.stand_in);
        let finding = self.facts().about(e.resident, e.household);
        match hit {
            Some(e) if e.consent => finding,
            _ => Finding::Nothing,
        }
    }
}

async fn form(uri: axum::http::Uri) -> Response {
    let q = Ask::from_form(uri.query().unwrap_or("").as_bytes());
    let lang = Lang::from_param(&q.lang);
    html(StatusCode::OK, page::render(lang, "", "", &Outcome::Form))
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    // No script, no frame, forms to this page only: what is echoed can do nothing.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

async fn ask(
    State(desk): State<Arc<AnpiDesk>>,
    Extension(crate::answers::server::Source(ip)): Extension<crate::answers::server::Source>,
    body: Bytes,
) -> Response {
    let a = Ask::from_form(&body);
    let lang = Lang::from_param(&a.lang);
    if !desk.admit(ip, Instant::now()) {
        desk.limited.fetch_add(1, Relaxed);
        let retry = Duration::from_secs(60);
        let at = crate::service::now_ms().saturating_add(retry.as_millis() as u64);
        let page = page::render(lang, &a.kana, &a.birth, &Outcome::Limited(page::jst(at).1));
        let mut r = html(StatusCode::TOO_MANY_REQUESTS, page);
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
        return r;
    }
    let by = if a.family_code.trim().is_empty() {
        "name"
    } else {
        "code"
    };
    let found = desk.answer(&a);
    desk.answered.fetch_add(1, Relaxed);
    tracing::info!(
        source = %ip,
        by,
        found = found != Finding::Nothing,
        "anpi query"
    );
    let page = page::render(lang, &a.kana, &a.birth, &Outcome::Answer(found));
    html(StatusCode::OK, page)
}

/// `/anpi`'s routes.
pub fn router(desk: Arc<AnpiDesk>) -> Router {
    Router::new()
        .route("/anpi", get(form).post(ask))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(desk)
}

/// Reads HQ's store into the desk's facts every [`REFRESH`], and logs refused queries once a
/// minute. A store that does not read now is tried again (logged once a minute at most).
pub async fn keep_fresh(desk: Arc<AnpiDesk>, mut reader: Reader) {
    let mut tick = tokio::time::interval(REFRESH);
    let mut last_log = Instant::now();
    let mut last_limited = 0;
    let mut failing = false;
    loop {
        tick.tick().await;
        let (r, rows) = match tokio::task::spawn_blocking(move || {
            let rows = reader.read();
            (reader, rows)
        })
        .await
        {
            Ok(x) => x,
            Err(_) => return,
        };
        reader = r;
        match rows {
            Ok(rows) => {
                desk.take(rows);
                failing = false;
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "anpi: HQ's store not read; tried again");
            }
            Err(_) => {}
        }
        if last_log.elapsed() >= Duration::from_secs(60) {
            last_log = Instant::now();
            let n = desk.limited.load(Relaxed);
            if n > last_limited {
                tracing::warn!(
                    refused = n - last_limited,
                    since_start_s = desk.started.elapsed().as_secs(),
                    "anpi: queries refused for their rate in the last minute"
                );
            }
            last_limited = n;
        }
    }
}

/// The desk of `[answers]` for HQ's town file, family codes and store, or an error naming the
/// field.
pub fn desk(
    cfg: &crate::config::Config,
    a: &crate::answers::AnswersConfig,
) -> Result<(AnpiDesk, Reader), HqError> {
    let town = crate::check::town(cfg)?;
    let key = FamilyCodeKey::derive(&crate::check::hq_key(cfg)?);
    let codes = match &a.family_codes {
        Some(p) => codes::read_hashes(p)?,
        None => HashMap::new(),
    };
    let reader = Reader::open(&cfg.store_path())?;
    Ok((AnpiDesk::new(cfg.town.clone(), &town, key, codes), reader))
}

#[cfg(test)]
mod tests;
