//! Handing a CAP file to a running HQ (`evac-hq cap`): the message is checked as HQ would
//! (it parses, it has not expired), then written whole into the config's `cap_dir`, where
//! HQ's intake (see [`super::intake`]) claims it.

use std::path::{Path, PathBuf};

use evac_protocol::statefile::StateFileError;

use super::{Expired, parse, refuse_expired};
use crate::error::HqError;

/// Why a CAP file was not handed to HQ.
#[derive(Debug, thiserror::Error)]
pub enum HandInError {
    /// The file is not a CAP message HQ acts on.
    #[error(transparent)]
    Invalid(#[from] HqError),
    /// The message has expired: HQ would refuse it.
    #[error(transparent)]
    Expired(#[from] Expired),
    /// The config names no `cap_dir`.
    #[error("{}: no cap_dir configured", config.display())]
    NoCapDir {
        /// The config file.
        config: PathBuf,
    },
    /// The `cap_dir` does not exist yet.
    #[error(
        "cap_dir = {}: no such directory; HQ makes it when it starts (evac-hq run)",
        dir.display()
    )]
    NoDir {
        /// The directory.
        dir: PathBuf,
    },
    /// The path given ends in no file name (`..`).
    #[error("the CAP file has no name")]
    NoName,
    /// The file could not be written into `cap_dir`.
    #[error("cannot hand the CAP file to HQ")]
    Write(#[source] StateFileError),
}

/// Checks `text` (read from `file`) and writes it into `cap_dir` (from the config `config`)
/// under the file's name with the extension `.xml`, in one rename; returns where.
pub fn hand_in(
    text: &str,
    file: &Path,
    config: &Path,
    cap_dir: Option<&Path>,
    now_ms: u64,
) -> Result<PathBuf, HandInError> {
    let name = file.display().to_string();
    let msg = parse(text, &name)?;
    refuse_expired(&msg, &name, now_ms)?;
    let Some(dir) = cap_dir else {
        return Err(HandInError::NoCapDir {
            config: config.to_owned(),
        });
    };
    if !dir.is_dir() {
        return Err(HandInError::NoDir {
            dir: dir.to_owned(),
        });
    }
    let name = file.file_name().ok_or(HandInError::NoName)?;
    let dest = dir.join(Path::new(name).with_extension("xml"));
    evac_protocol::statefile::write(&dest, text.as_bytes()).map_err(HandInError::Write)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = include_str!("../../tests/data/cap/tsunami-alert.xml");
    /// 2030-01-01: before the test alert's expiry (2036).
    const NOW: u64 = 1_893_456_000_000;

    #[test]
    fn a_good_file_lands_in_cap_dir_whole() {
        let d = tempfile::tempdir().unwrap();
        let file = Path::new("/elsewhere/alert.cap");
        let dest = hand_in(GOOD, file, Path::new("hq.toml"), Some(d.path()), NOW).unwrap();
        assert_eq!(dest, d.path().join("alert.xml"));
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), GOOD);
    }

    #[test]
    fn nothing_is_written_for_a_bad_expired_or_homeless_file() {
        let d = tempfile::tempdir().unwrap();
        let (file, cfg) = (Path::new("a.xml"), Path::new("hq.toml"));
        let err = hand_in("<alert/>", file, cfg, Some(d.path()), NOW).unwrap_err();
        assert!(matches!(err, HandInError::Invalid(_)), "{err}");
        let err = hand_in(GOOD, file, cfg, Some(d.path()), 2_200_000_000_000).unwrap_err();
        assert!(matches!(err, HandInError::Expired(_)), "{err}");
        let err = hand_in(GOOD, file, cfg, None, NOW).unwrap_err();
        assert_eq!(err.to_string(), "hq.toml: no cap_dir configured");
        let missing = d.path().join("missing");
        let err = hand_in(GOOD, file, cfg, Some(&missing), NOW).unwrap_err();
        assert!(matches!(err, HandInError::NoDir { .. }), "{err}");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
