//! The box's local configuration file (see deploy/stb.example.toml) and the values in it
//! that need reading: the HQ keys it trusts with their validity, the local time offset and a
//! household's location.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use evac_maps::LonLat;
use evac_protocol::PublicKey;
use serde::Deserialize;

use super::error::StbError;
use crate::receiver::TrustedKey;
use crate::render::Language;

/// A trusted HQ key in the box's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The public key file (SPKI PEM).
    pub file: PathBuf,
    /// Orders issued before this (RFC 3339) are not taken under it.
    #[serde(default)]
    pub not_before: Option<String>,
    /// Orders issued after this (RFC 3339) are not taken under it.
    #[serde(default)]
    pub not_after: Option<String>,
}

/// The box's local configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StbConfig {
    /// The household this box shows.
    pub household: u32,
    /// The town this box is in (default: the town of the first order verified).
    #[serde(default)]
    pub town_name: Option<String>,
    /// The household's name, shown with its order.
    #[serde(default)]
    pub name: String,
    /// The language to show orders in.
    #[serde(default)]
    pub language: Option<Language>,
    /// HQ's keys, each with the times it is trusted for.
    #[serde(default)]
    pub hq_keys: Vec<KeyEntry>,
    /// Older configs name one key.
    #[serde(default)]
    pub hq_key: Option<PathBuf>,
    /// The broadcaster's public key, to show its tickers.
    pub broadcaster_key: Option<PathBuf>,
    /// Only this program number.
    pub program: Option<u16>,
    /// The state file: the order version held and keys learnt, kept across restarts.
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// Shelter names by shelter id (only ids come from the air).
    #[serde(default)]
    pub shelters: BTreeMap<String, String>,
    /// The town file with its roads, for `--route`.
    pub town: Option<PathBuf>,
    /// The household's location, [longitude, latitude], for `--route`.
    pub location: Option<[f64; 2]>,
    /// The box's local time offset, "+09:00" (the default, Japan): the hazard's expected time
    /// is shown in it.
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// Where the household's answers go (`evac-stb answer`).
    #[serde(default)]
    pub answers: Option<super::answer::AnswersConfig>,
}

impl StbConfig {
    /// Reads a configuration file; its relative paths are taken relative to the file.
    pub fn load(path: &Path) -> Result<StbConfig, StbError> {
        let text = std::fs::read_to_string(path).map_err(|source| StbError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut c = toml::from_str::<StbConfig>(&text).map_err(|e| StbError::Config {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for k in &mut c.hq_keys {
            abs(&mut k.file);
        }
        for p in [
            &mut c.hq_key,
            &mut c.broadcaster_key,
            &mut c.state,
            &mut c.town,
        ]
        .into_iter()
        .flatten()
        {
            abs(p);
        }
        if let Some(a) = &mut c.answers {
            a.resolve(base);
        }
        Ok(c)
    }

    /// The HQ keys this configuration trusts, read from their files, in its order: `hq_keys`
    /// with their validity, then the older single `hq_key`.
    pub fn trusted_keys(&self) -> Result<Vec<TrustedKey>, StbError> {
        let mut trusted = Vec::new();
        for k in &self.hq_keys {
            trusted.push(TrustedKey {
                key: read_key(&k.file)?,
                not_before: k
                    .not_before
                    .as_deref()
                    .map(|s| time_of(s, "not_before"))
                    .transpose()?
                    .unwrap_or(i64::MIN),
                not_after: k
                    .not_after
                    .as_deref()
                    .map(|s| time_of(s, "not_after"))
                    .transpose()?
                    .unwrap_or(i64::MAX),
            });
        }
        if let Some(p) = &self.hq_key {
            trusted.push(TrustedKey::always(read_key(p)?));
        }
        Ok(trusted)
    }

    /// The local time offset: `utc_offset`, or Japan's +09:00.
    pub fn offset(&self) -> Result<time::UtcOffset, StbError> {
        match self.utc_offset.as_deref() {
            Some(o) => parse_offset(o),
            None => Ok(JAPAN),
        }
    }
}

/// Japan's offset from UTC, the default for a box with no `utc_offset`.
pub const JAPAN: time::UtcOffset = time::macros::offset!(+9);

/// A public key file, with the file named if it cannot be read.
pub fn read_key(p: &Path) -> Result<PublicKey, StbError> {
    PublicKey::read(p).map_err(|source| StbError::Key {
        path: p.to_owned(),
        source,
    })
}

/// An RFC 3339 time as Unix seconds; `field` names it in the error.
fn time_of(s: &str, field: &'static str) -> Result<i64, StbError> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|source| StbError::Time {
            field,
            value: s.to_owned(),
            source,
        })
}

/// A "+HH:MM" or "-HH:MM" offset from UTC.
pub fn parse_offset(s: &str) -> Result<time::UtcOffset, StbError> {
    let bad = || StbError::Offset(s.to_owned());
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1i8, &s[1..]),
        Some(b'-') => (-1i8, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    time::UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| bad())
}

/// A household's location as `--location` takes it: "LON,LAT", a WGS 84 position.
pub fn parse_location(s: &str) -> Result<[f64; 2], String> {
    let (lon, lat) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?}: expected LON,LAT"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<f64>()
            .map_err(|_| format!("{v:?} is not a number"))
    };
    let p = [num(lon)?, num(lat)?];
    if LonLat::new(p[0], p[1]).is_valid() {
        Ok(p)
    } else {
        Err(format!("{s:?} is not a WGS 84 longitude,latitude"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/stb.example.toml");
        let c = StbConfig::load(&path).unwrap();
        assert_eq!(c.household, 455);
        assert_eq!(c.town_name.as_deref(), Some("minato"));
        assert_eq!(c.hq_keys.len(), 1);
        assert!(c.hq_keys[0].file.ends_with("deploy/keys/hq.pub"));
        assert_eq!(c.shelters.get("3").map(String::as_str), Some("港小学校"));
        assert!(c.state.is_some());
        assert_eq!(c.offset().unwrap(), JAPAN);
        assert!(parse_offset("09:00").is_err() && parse_offset("+9").is_err());
    }

    /// Issue 18 item 13: `town` is relative to the configuration file, as the example says.
    #[test]
    fn the_town_file_is_found_beside_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stb.toml");
        std::fs::write(&path, "household = 1\ntown = \"maps/town.geojson\"\n").unwrap();
        let c = StbConfig::load(&path).unwrap();
        assert_eq!(c.town, Some(dir.path().join("maps/town.geojson")));
    }

    #[test]
    fn offsets_west_and_east_of_utc() {
        assert_eq!(
            parse_offset("-03:30").unwrap(),
            time::UtcOffset::from_hms(-3, -30, 0).unwrap()
        );
        assert_eq!(
            parse_offset("+26:00").unwrap_err().to_string(),
            "utc_offset: \"+26:00\" is not +HH:MM or -HH:MM"
        );
    }

    #[test]
    fn a_location_is_a_wgs84_lon_lat() {
        assert_eq!(parse_location("139.7, 35.6"), Ok([139.7, 35.6]));
        assert_eq!(parse_location("-70.6,-33.4"), Ok([-70.6, -33.4]));
        assert_eq!(
            parse_location("139.7").unwrap_err(),
            "\"139.7\": expected LON,LAT"
        );
        assert_eq!(parse_location("x,35").unwrap_err(), "\"x\" is not a number");
        assert_eq!(
            parse_location("35.6,139.7").unwrap_err(),
            "\"35.6,139.7\" is not a WGS 84 longitude,latitude"
        );
    }

    #[test]
    fn key_validity_comes_from_rfc3339_times() {
        let dir = tempfile::tempdir().unwrap();
        let key = evac_protocol::SecretKey::from_seed(&[7; 32]);
        std::fs::write(dir.path().join("hq.pub"), key.public().to_pem().unwrap()).unwrap();
        let path = dir.path().join("stb.toml");
        std::fs::write(
            &path,
            "household = 1\n[[hq_keys]]\nfile = \"hq.pub\"\nnot_before = \"1970-01-01T00:16:40Z\"\n",
        )
        .unwrap();
        let keys = StbConfig::load(&path).unwrap().trusted_keys().unwrap();
        assert_eq!((keys[0].not_before, keys[0].not_after), (1_000, i64::MAX));
        std::fs::write(
            &path,
            "household = 1\n[[hq_keys]]\nfile = \"hq.pub\"\nnot_after = \"soon\"\n",
        )
        .unwrap();
        let err = StbConfig::load(&path).unwrap().trusted_keys().unwrap_err();
        assert_eq!(
            err.to_string(),
            "not_after: \"soon\" is not an RFC 3339 time"
        );
    }
}
