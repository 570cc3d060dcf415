//! Families look for their people during the drill (issue 21): queries by kana name and date
//! of birth against HQ's real `/anpi` page, over HTTPS, each family from an address of its own
//! (127.x.y.z: every loopback address reaches HQ's listener), some for people who do not live
//! in the town. A thread of its own asks; the drill's loop hands a query over and goes on.
//! The page's answer is read as a family reads it (the English page) and judged against the
//! drill's ground truth in the report.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use evac_maps::Town;
use evac_protocol::time::TimeSource;
use rumqttc::tokio_rustls::rustls;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::residents::Draws;
use crate::setup::{Layout, TLS_CA};

/// One family's query, planned before the drill.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Its number (its address is made from it).
    pub n: u32,
    /// When it is asked, drill ms.
    pub at_ms: u64,
    /// The resident looked for; none for a person not in the town.
    pub resident: Option<u32>,
    /// Whether that resident agreed to be found.
    pub consent: bool,
    /// The name in kana, as typed.
    pub kana: String,
    /// The date of birth, as typed (`YYYY-MM-DD`).
    pub birth: String,
}

/// What the page said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "said", rename_all = "snake_case")]
pub enum Said {
    /// Checked in at this shelter.
    CheckedIn {
        /// The shelter's name.
        shelter: String,
    },
    /// Checked out of this shelter.
    CheckedOut {
        /// The shelter's name.
        shelter: String,
    },
    /// Their household answered from the TV.
    Answered,
    /// No information.
    Nothing,
    /// Too many queries from this address (429).
    Refused,
    /// No page (HQ unreachable, another status).
    Failed,
}

/// A query and the page's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    /// The query.
    pub query: Query,
    /// What the page said.
    pub said: Said,
}

/// `n` queries spread over the drill from `from_ms` to `to_ms`, a share `unknown` of them for
/// people not in the town, the others for residents of `ids` (those under order), drawn from
/// `seed` on a stream of their own.
pub fn plan(
    town: &Town,
    ids: &[u32],
    n: u32,
    unknown: f64,
    seed: u64,
    (from_ms, to_ms): (u64, u64),
) -> Vec<Query> {
    let registry = town.registry();
    let mut d = Draws::stream(b"evac-drills anpi v1\0", seed, 0);
    let mut out: Vec<Query> = (0..n)
        .filter_map(|i| {
            let at_ms = from_ms + (d.f64() * to_ms.saturating_sub(from_ms) as f64) as u64;
            let stranger = d.f64() < unknown || ids.is_empty();
            let pick = ids.get((d.f64() * ids.len() as f64) as usize).copied();
            if stranger {
                return Some(Query {
                    n: i,
                    at_ms,
                    resident: None,
                    consent: false,
                    // Not a name of the synthetic registry (its kana are family and given
                    // names from its own lists), and a date no resident has.
                    kana: format!("ミシラヌ ヒト{i}"),
                    birth: "1899-01-01".into(),
                });
            }
            let (_, m) = registry.resident(pick?)?;
            Some(Query {
                n: i,
                at_ms,
                resident: Some(m.resident),
                consent: m.anpi_consent,
                kana: m.kana.clone(),
                birth: m.birth.map(|b| b.to_string()).unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by_key(|q| (q.at_ms, q.n));
    out
}

/// The families' thread while the drill runs.
pub(crate) struct Families {
    jobs: Option<mpsc::Sender<Query>>,
    results: mpsc::Receiver<Asked>,
    in_flight: usize,
    done: Vec<Asked>,
    worker: Option<JoinHandle<()>>,
}

impl Families {
    /// Families asking HQ's page on loopback `port`, trusting the run's CA.
    pub(crate) fn start(layout: &Layout, port: u16, town: &Town, clock: TimeSource) -> Families {
        let _ = clock;
        let (jobs, queue) = mpsc::channel::<Query>();
        let (tx, results) = mpsc::channel();
        let ca = layout.path(TLS_CA);
        let names: Vec<String> = town.shelters.iter().map(|s| s.name.clone()).collect();
        let worker = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let tls = connector(&ca);
            while let Ok(q) = queue.recv() {
                let said = match &tls {
                    Some(c) => rt.block_on(ask(c.clone(), port, &q, &names)),
                    None => Said::Failed,
                };
                if tx.send(Asked { query: q, said }).is_err() {
                    return;
                }
            }
        });
        Families {
            jobs: Some(jobs),
            results,
            in_flight: 0,
            done: Vec::new(),
            worker: Some(worker),
        }
    }

    /// Hands a query over (never waits).
    pub(crate) fn ask(&mut self, q: Query) {
        if let Some(j) = &self.jobs
            && j.send(q).is_ok()
        {
            self.in_flight += 1;
        }
    }

    /// Whether every query handed over has its page.
    pub(crate) fn idle(&mut self) -> bool {
        while let Ok(a) = self.results.try_recv() {
            self.in_flight = self.in_flight.saturating_sub(1);
            self.done.push(a);
        }
        self.in_flight == 0
    }

    /// Every query and its page; the thread stops.
    pub(crate) fn finish(mut self) -> Vec<Asked> {
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        self.idle();
        std::mem::take(&mut self.done)
    }
}

fn connector(ca: &std::path::Path) -> Option<rumqttc::tokio_rustls::TlsConnector> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).ok()? {
        roots.add(c.ok()?).ok()?;
    }
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Some(rumqttc::tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// One family's query: `POST /anpi` from its own loopback address, the page read.
async fn ask(
    tls: rumqttc::tokio_rustls::TlsConnector,
    port: u16,
    q: &Query,
    shelters: &[String],
) -> Said {
    let work = async {
        let from = Ipv4Addr::new(
            127,
            1 + (q.n / 62_500) as u8,
            (q.n / 250 % 250) as u8,
            (q.n % 250 + 1) as u8,
        );
        let sock = tokio::net::TcpSocket::new_v4().ok()?;
        sock.bind(SocketAddr::from((from, 0))).ok()?;
        let tcp = sock
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .ok()?;
        let name = rustls::pki_types::ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
        let mut s = tls.connect(name, tcp).await.ok()?;
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("kana", &q.kana)
            .append_pair("birth", &q.birth)
            .append_pair("lang", "en")
            .finish();
        let req = format!(
            "POST /anpi HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut page = Vec::new();
        // A page is a few KiB; read no more than 256 KiB of anything.
        let _ = (&mut s).take(256 * 1024).read_to_end(&mut page).await;
        Some(read(&String::from_utf8_lossy(&page), shelters))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(15), work).await {
        Ok(Some(s)) => s,
        _ => Said::Failed,
    }
}

/// What a page (status line, headers, English body) says.
pub fn read(page: &str, shelters: &[String]) -> Said {
    let status = page.split_whitespace().nth(1).unwrap_or("");
    match status {
        "429" => return Said::Refused,
        "200" => {}
        _ => return Said::Failed,
    }
    let named = |prefix: &str| {
        shelters
            .iter()
            .find(|s| page.contains(&format!("{prefix} {s} at")))
            .cloned()
    };
    if let Some(shelter) = named("Checked in at shelter") {
        Said::CheckedIn { shelter }
    } else if let Some(shelter) = named("Checked out of shelter") {
        Said::CheckedOut { shelter }
    } else if page.contains("answered safe at home")
        || page.contains("answered evacuated elsewhere")
        || page.contains("(self-reported)")
    {
        Said::Answered
    } else {
        Said::Nothing
    }
}

/// Families' queries judged against the drill's ground truth.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FamiliesReport {
    /// Queries asked.
    pub asked: usize,
    /// Of those, for people not in the town.
    pub for_strangers: usize,
    /// Refused for their rate (429).
    pub refused: usize,
    /// No page (HQ unreachable during a fault, a timeout).
    pub failed: usize,
    /// The page said what the drill knows: the shelter the resident last tapped at, their
    /// household's answer, or "no information" for a stranger, a resident who did not agree
    /// or one of whom nothing was known yet.
    pub right: usize,
    /// "No information" for a consenting resident the drill had tapped in (or whose household
    /// had answered) before the query: HQ did not have it yet.
    pub not_yet: usize,
    /// Anything else: a wrong shelter, or something said of a stranger or of a resident who
    /// did not agree.
    pub wrong: usize,
}

/// What the drill knew of a resident at a drill time: the last tap before it (`check-in` or
/// `check-out`, shelter) and when their household's answer was stored.
pub struct Truth<'a> {
    /// Every tap: (resident, drill ms, kind, shelter's name).
    pub taps: Vec<(u32, u64, &'a str, &'a str)>,
    /// Household of each resident.
    pub household: std::collections::HashMap<u32, u32>,
    /// When HQ stored each household's answer, drill ms.
    pub answered: std::collections::HashMap<u32, u64>,
}

/// Judges every query's page against `truth`.
pub fn judge(asked: &[Asked], truth: &Truth) -> FamiliesReport {
    let mut r = FamiliesReport {
        asked: asked.len(),
        ..FamiliesReport::default()
    };
    for a in asked {
        let q = &a.query;
        if q.resident.is_none() {
            r.for_strangers += 1;
        }
        match (&a.said, q.resident.filter(|_| q.consent)) {
            (Said::Refused, _) => r.refused += 1,
            (Said::Failed, _) => r.failed += 1,
            (Said::Nothing, None) => r.right += 1,
            (_, None) => r.wrong += 1,
            (said, Some(res)) => {
                let last = truth
                    .taps
                    .iter()
                    .filter(|t| t.0 == res && t.1 <= q.at_ms)
                    .max_by_key(|t| t.1);
                let answered = truth
                    .household
                    .get(&res)
                    .and_then(|h| truth.answered.get(h))
                    .is_some_and(|t| *t <= q.at_ms);
                let ok = match (said, last) {
                    (Said::CheckedIn { shelter }, Some(t)) => t.2 != "check-out" && t.3 == shelter,
                    (Said::CheckedOut { shelter }, Some(t)) => t.3 == shelter,
                    (Said::Answered, _) => answered,
                    (Said::Nothing, None) if !answered => true,
                    (Said::Nothing, _) => {
                        r.not_yet += 1;
                        continue;
                    }
                    _ => false,
                };
                if ok {
                    r.right += 1;
                } else {
                    r.wrong += 1;
                }
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_read_as_a_family_reads_it() {
        let shelters = ["北浜高台公園".to_owned(), "北浜地区集会所".to_owned()];
        let page = |status: &str, body: &str| format!("HTTP/1.1 {status} OK\r\n\r\n<p>{body}</p>");
        assert_eq!(
            read(
                &page(
                    "200",
                    "Checked in at shelter 北浜地区集会所 at 14:02 on 3/11 (JST)."
                ),
                &shelters
            ),
            Said::CheckedIn {
                shelter: shelters[1].clone()
            }
        );
        assert_eq!(
            read(
                &page(
                    "200",
                    "Checked out of shelter 北浜高台公園 at 16:30 on 3/11 (JST)."
                ),
                &shelters
            ),
            Said::CheckedOut {
                shelter: shelters[0].clone()
            }
        );
        assert_eq!(
            read(
                &page(
                    "200",
                    "Answered from home at 09:00 on 1/1 (JST) (self-reported)."
                ),
                &shelters
            ),
            Said::Answered
        );
        assert_eq!(
            read(&page("200", "No information."), &shelters),
            Said::Nothing
        );
        assert_eq!(read(&page("429", "Too many"), &shelters), Said::Refused);
        assert_eq!(read("garbage", &shelters), Said::Failed);
    }

    #[test]
    fn a_page_is_right_when_it_says_what_the_drill_knew_then() {
        let q = |n, resident: Option<u32>, consent, at_ms| Query {
            n,
            at_ms,
            resident,
            consent,
            kana: String::new(),
            birth: String::new(),
        };
        let a = |query, said| Asked { query, said };
        let truth = Truth {
            taps: vec![
                (10, 100, "check-in", "A"),
                (11, 100, "check-in", "A"),
                (11, 300, "check-out", "A"),
            ],
            household: [(10, 1), (11, 1), (20, 2)].into(),
            answered: [(2, 500)].into(),
        };
        let checked_in = |s: &str| Said::CheckedIn { shelter: s.into() };
        let asked = [
            a(q(0, Some(10), true, 200), checked_in("A")),  // right
            a(q(1, Some(10), true, 200), checked_in("B")),  // wrong shelter
            a(q(2, Some(10), true, 200), Said::Nothing),    // not yet at HQ
            a(q(3, Some(10), true, 50), Said::Nothing),     // right: nothing yet
            a(q(4, Some(10), false, 200), checked_in("A")), // wrong: did not agree
            a(q(5, None, false, 200), Said::Nothing),       // right: a stranger
            a(
                q(6, Some(11), true, 400),
                Said::CheckedOut {
                    shelter: "A".into(),
                },
            ), // right
            a(q(7, Some(20), true, 600), Said::Answered),   // right
            a(q(8, Some(20), true, 400), Said::Answered),   // wrong: not answered yet
            a(q(9, None, false, 200), Said::Refused),
            a(q(10, None, false, 200), Said::Failed),
        ];
        let r = judge(&asked, &truth);
        assert_eq!(
            (r.asked, r.for_strangers, r.refused, r.failed),
            (11, 3, 1, 1)
        );
        assert_eq!((r.right, r.not_yet, r.wrong), (5, 1, 3));
    }
}
