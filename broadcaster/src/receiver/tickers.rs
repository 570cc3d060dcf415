//! The broadcaster's own tickers: shown only under the broadcaster's key, a cancel ending its
//! alert for good (a later copy of the alert is stale), each until it expires.

use evac_protocol::ticker::open_ticker;
use evac_protocol::{MessageKind, OverlayError};
use serde::Serialize;

use super::Receiver;

/// A broadcaster's ticker as shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShownTicker {
    /// The alert's id.
    pub id: u32,
    /// The level, when it carries one.
    pub level: Option<u8>,
    /// Regional area codes.
    pub areas: Vec<u16>,
    /// Japanese text.
    pub text_ja: String,
    /// English text, when given.
    pub text_en: Option<String>,
    /// Expiry, Unix seconds.
    pub expires: i64,
}

impl Receiver {
    pub(super) fn ticker(&mut self, body: &[u8]) {
        let Some(key) = &self.cfg.broadcaster else {
            return;
        };
        let t = match open_ticker(body, key) {
            Ok(t) => t,
            Err(OverlayError::BadSignature) => {
                self.rejected.signature += 1;
                return;
            }
            Err(_) => {
                self.rejected.malformed += 1;
                return;
            }
        };
        if t.expires <= self.now() {
            self.rejected.expired += 1;
            return;
        }
        if t.kind == MessageKind::Cancel {
            let id = t.references.unwrap_or(t.id);
            self.tickers.remove(&id);
            self.ended_tickers.insert(id, t.expires);
            return;
        }
        if self.ended_tickers.contains_key(&t.id) {
            self.rejected.stale += 1;
            return;
        }
        self.tickers.insert(
            t.id,
            ShownTicker {
                id: t.id,
                level: t.level.map(|l| l.number()),
                areas: t.areas,
                text_ja: t.text_ja,
                text_en: t.text_en,
                expires: t.expires,
            },
        );
    }

    /// Tickers in force now.
    pub fn tickers_now(&self) -> Vec<&ShownTicker> {
        self.tickers
            .values()
            .filter(|t| t.expires > self.now())
            .collect()
    }
}
