//! What `mux --bml` and the service's `[bml]` section set up: the town file (household
//! numbers, shelters, roads), HQ's public keys the head-end checks sections with, the
//! carousel's PID and bitrate, the freshness bound, the postal-code table.

use std::path::PathBuf;

use evac_maps::Town;
use evac_protocol::{PublicKey, TownId};
use serde::Deserialize;

use super::answer::AnswerPage;
use super::postal::{PostalAreas, PostalCodes, PostalError};
use super::table::Directory;
use super::{BmlConfig, BmlService, DEFAULT_BITRATE, DEFAULT_DATA_PID, Verifier};
use crate::receiver::{DEFAULT_SKEW_S, TrustedKey};

/// The stock-TV service's settings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BmlSettings {
    /// The town file (GeoJSON, as HQ's): household numbers, shelters and roads. Residents'
    /// names in it are never read.
    pub town_file: PathBuf,
    /// HQ's public keys (files as `evac-hq keygen` writes them): only sections that verify
    /// under one of them reach the carousel.
    pub hq_keys: Vec<PathBuf>,
    /// The carousel's bitrate budget, bit/s.
    #[serde(default = "default_bitrate")]
    pub bitrate: u64,
    /// The carousel's PID.
    #[serde(default = "default_pid")]
    pub data_pid: u16,
    /// Seconds after the head-end last confirmed the tables before a TV says it cannot confirm.
    #[serde(default = "default_fresh")]
    pub fresh_s: u32,
    /// The postal-code table (`zipcode,district` CSV, as the municipality derives it from
    /// Japan Post's KEN_ALL): TVs with no household number stored show their district's
    /// orders by the postal code set up on the TV.
    #[serde(default)]
    pub postal_codes: Option<PathBuf>,
    /// HQ's answer endpoint for TVs (`https://…/answer/tv`): the page gets its answer mode
    /// (households answer with the remote over the TV's return channel). Absent: no answer
    /// mode on the page.
    #[serde(default)]
    pub answer_url: Option<String>,
}

fn default_bitrate() -> u64 {
    DEFAULT_BITRATE
}

fn default_pid() -> u16 {
    DEFAULT_DATA_PID
}

fn default_fresh() -> u32 {
    BmlConfig::default().fresh_s
}

/// Why the stock-TV service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BmlSetupError {
    /// No HQ key given: nothing could ever be checked.
    #[error("the data-broadcasting service needs HQ's public key (--hq-key FILE)")]
    NoKey,
    /// An HQ key file cannot be read.
    #[error("reading HQ's key {}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: evac_protocol::KeyError,
    },
    /// The town file cannot be read.
    #[error("reading the town {}", path.display())]
    Town {
        /// The file.
        path: PathBuf,
        /// Why.
        source: evac_maps::MapsError,
    },
    /// The postal-code table cannot be used.
    #[error(transparent)]
    Postal(#[from] PostalError),
    /// The answer endpoint cannot go on the page.
    #[error(transparent)]
    AnswerUrl(#[from] super::answer::AnswerUrlError),
    /// The carousel cannot be built.
    #[error("building the data carousel")]
    Build(#[source] crate::error::Error),
}

impl BmlSettings {
    /// The service for `town`, empty until orders come, not yet confirmed current (the live
    /// loop confirms it while HQ's orders are current).
    pub fn service(&self, town: &TownId) -> Result<BmlService, BmlSetupError> {
        if self.hq_keys.is_empty() {
            return Err(BmlSetupError::NoKey);
        }
        let map = Town::load(&self.town_file).map_err(|source| BmlSetupError::Town {
            path: self.town_file.clone(),
            source,
        })?;
        self.service_for(town, &map)
    }

    /// As [`BmlSettings::service`], on `map`, the town of `town_file` already in memory (the
    /// drill's runner holds it: a second copy of a city's town is hundreds of MB).
    pub fn service_for(&self, town: &TownId, map: &Town) -> Result<BmlService, BmlSetupError> {
        if self.hq_keys.is_empty() {
            return Err(BmlSetupError::NoKey);
        }
        let keys = self
            .hq_keys
            .iter()
            .map(|path| {
                PublicKey::read(path)
                    .map(TrustedKey::always)
                    .map_err(|source| BmlSetupError::Key {
                        path: path.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let answers = self
            .answer_url
            .as_deref()
            .map(|url| AnswerPage::new(url, town))
            .transpose()?;
        let cfg = BmlConfig {
            fresh_s: self.fresh_s,
            ..BmlConfig::default()
        };
        let postal = match &self.postal_codes {
            Some(path) => {
                let areas = PostalAreas::from_town(&PostalCodes::read(path)?, map);
                if areas.unmatched > 0 {
                    tracing::warn!(
                        households = areas.unmatched,
                        file = %path.display(),
                        "households whose address is in no district of the postal codes"
                    );
                }
                Some(areas)
            }
            None => None,
        };
        let svc = BmlService::new(
            cfg,
            Verifier::new(keys, town.clone(), DEFAULT_SKEW_S),
            Directory::from_town(map),
            None,
        )
        .map_err(BmlSetupError::Build)?;
        let svc = match postal {
            Some(areas) => svc.with_postal(areas).map_err(BmlSetupError::Build)?,
            None => svc,
        };
        match answers {
            Some(page) => svc.with_answers(&page).map_err(BmlSetupError::Build),
            None => Ok(svc),
        }
    }
}
