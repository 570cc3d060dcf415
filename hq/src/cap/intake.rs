//! The CAP drop directory: files are moved out of it before anything reads them, read and
//! parsed off HQ's main loop, and end in `done/` or `rejected/` with a `.txt` note saying why.
//!
//! A file is first renamed into `taking/` (the same file system, so atomic), so a file that
//! stopped HQ once cannot stop it again: at start, whatever is left in `taking/` goes to
//! `rejected/`. Symbolic links, hard-linked files and anything but a regular file are refused
//! unread, and so is a file larger than [`MAX_CAP_BYTES`].

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{CapMessage, MAX_CAP_BYTES, parse};
use crate::error::HqError;

/// Where files wait while they are read and taken in.
pub const TAKING: &str = "taking";

/// A file claimed from the drop directory, with what reading and parsing it gave.
#[derive(Debug)]
pub struct Claimed {
    /// The file's name in the drop directory.
    pub name: OsString,
    /// The parsed message, or why the file was refused.
    pub parsed: Result<CapMessage, ClaimError>,
}

fn note_and_move(dir: &Path, sub: &str, from: &Path, name: &OsString, note: &str) {
    let to = dir.join(sub);
    if let Err(e) = std::fs::create_dir_all(&to) {
        tracing::error!(dir = %to.display(), error = %e, "cannot create the CAP folder");
    }
    let target = to.join(name);
    // Written whole then renamed into place: whoever sees the note (an operator, a test) reads
    // all of it, never a file created but not yet written.
    let why = target.with_extension("txt");
    if let Err(e) = evac_protocol::statefile::write(&why, format!("{note}\n").as_bytes()) {
        tracing::error!(file = %why.display(), error = %e, "cannot write why a CAP file was moved");
    }
    if let Err(e) = std::fs::rename(from, &target) {
        tracing::error!(file = %from.display(), error = %e, "cannot move CAP file; removing it");
        let _ = std::fs::remove_file(from);
    }
}

/// What [`finish`] did with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filed {
    /// Moved to `done/`.
    Done,
    /// Moved to `rejected/`: report it.
    Rejected,
    /// The same file (name and content) was refused for the same reason before and is in
    /// `rejected/` already: this copy is removed, and it need not be reported again (a feed
    /// that drops the same file every few seconds).
    RejectedAgain,
}

/// Moves a claimed file to `done/` (taken in) or `rejected/`, with `note` beside it.
pub fn finish(dir: &Path, name: &OsString, taken: bool, note: &str) -> Filed {
    let from = dir.join(TAKING).join(name);
    if !taken && refused_before(dir, &from, name, note) {
        if let Err(e) = std::fs::remove_file(&from) {
            tracing::error!(file = %from.display(), error = %e, "cannot remove CAP file");
        }
        return Filed::RejectedAgain;
    }
    note_and_move(
        dir,
        if taken { "done" } else { "rejected" },
        &from,
        name,
        note,
    );
    if taken { Filed::Done } else { Filed::Rejected }
}

/// Whether `rejected/` holds this very file (same name, same bytes) refused for the same reason.
fn refused_before(dir: &Path, from: &Path, name: &OsString, note: &str) -> bool {
    let held = dir.join("rejected").join(name);
    let same_note = std::fs::read_to_string(held.with_extension("txt"))
        .is_ok_and(|n| n.trim_end() == note.trim_end());
    // Both are at most MAX_CAP_BYTES, or refused unread (a link or folder is not read here).
    let bytes = |p: &Path| {
        std::fs::symlink_metadata(p)
            .ok()
            .filter(|m| m.is_file() && m.len() <= MAX_CAP_BYTES as u64)
            .and_then(|_| std::fs::read(p).ok())
    };
    same_note && bytes(from).is_some_and(|b| Some(b) == bytes(&held))
}

/// At start: files left in `taking/` were being taken in when HQ stopped; they go to
/// `rejected/` (drop one again to retry it).
pub fn recover(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir.join(TAKING)) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        tracing::warn!(file = ?name, "CAP file left half-taken by a stop: rejected");
        note_and_move(
            dir,
            "rejected",
            &e.path(),
            &name,
            "HQ stopped while taking this file in; drop it again to retry",
        );
        n += 1;
    }
    n
}

/// Why a claimed file was not read as a CAP message.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The file could not be read, or is not one HQ reads.
    #[error("cap {file}: {why}")]
    Unreadable {
        /// The file's path in the drop directory.
        file: String,
        /// What kept it from being read.
        why: Unreadable,
    },
    /// It was read but does not parse (see [`parse`]).
    #[error(transparent)]
    Invalid(#[from] HqError),
}

/// What kept a file in the drop directory from being read.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    /// Its metadata could not be read.
    #[error("cannot stat: {0}")]
    Stat(std::io::Error),
    /// A symbolic link.
    #[error("a symbolic link: not followed")]
    Symlink,
    /// A directory, a FIFO, a device...
    #[error("not a regular file")]
    NotRegular,
    /// A file with other names (its content could change under another name).
    #[error("a file with other hard links: not read")]
    HardLinked,
    /// Larger than [`MAX_CAP_BYTES`] before reading.
    #[error("{0} bytes: larger than the {MAX_CAP_BYTES} bytes HQ reads")]
    TooLarge(u64),
    /// Grew past [`MAX_CAP_BYTES`] while read.
    #[error("larger than the {MAX_CAP_BYTES} bytes HQ reads")]
    Grew,
    /// Reading failed.
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    /// The content is not UTF-8.
    #[error("not UTF-8: {0}")]
    NotUtf8(std::string::FromUtf8Error),
}

fn read_claimed(path: &Path) -> Result<String, Unreadable> {
    let meta = std::fs::symlink_metadata(path).map_err(Unreadable::Stat)?;
    if meta.file_type().is_symlink() {
        return Err(Unreadable::Symlink);
    }
    if !meta.file_type().is_file() {
        return Err(Unreadable::NotRegular);
    }
    if meta.nlink() > 1 {
        return Err(Unreadable::HardLinked);
    }
    if meta.len() > MAX_CAP_BYTES as u64 {
        return Err(Unreadable::TooLarge(meta.len()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CAP_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(Unreadable::Read)?;
    if bytes.len() > MAX_CAP_BYTES {
        return Err(Unreadable::Grew);
    }
    String::from_utf8(bytes).map_err(Unreadable::NotUtf8)
}

/// Claims every `*.xml` entry of `dir` (moving it into `taking/` first), then reads and
/// parses each. Entries that are not regular files are claimed too, and refused. A name that
/// starts with a dot is a file still being written (the sender renames it when it is whole).
pub fn claim(dir: &Path) -> Vec<Claimed> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut names: Vec<OsString> = entries
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| Path::new(n).extension().is_some_and(|x| x == "xml"))
        .filter(|n| !n.as_encoded_bytes().starts_with(b"."))
        .collect();
    names.sort();
    let taking = dir.join(TAKING);
    if !names.is_empty()
        && let Err(e) = std::fs::create_dir_all(&taking)
    {
        tracing::error!(dir = %taking.display(), error = %e, "cannot create the CAP folder");
        return vec![];
    }
    let mut out = Vec::new();
    for name in names {
        let from = dir.join(&name);
        let to: PathBuf = taking.join(&name);
        // rename moves a symbolic link itself, never its target.
        if let Err(e) = std::fs::rename(&from, &to) {
            tracing::error!(file = %from.display(), error = %e, "cannot claim CAP file");
            continue;
        }
        let label = from.display().to_string();
        let parsed = read_claimed(&to)
            .map_err(|why| ClaimError::Unreadable {
                file: label.clone(),
                why,
            })
            .and_then(|text| Ok(parse(&text, &label)?));
        out.push(Claimed { name, parsed });
    }
    out
}

/// The `<sender>` of each CAP file in `dir` (at most `limit` files read, each as [`claim`]
/// would: regular files within [`MAX_CAP_BYTES`]), with how many files each sent; for
/// `evac-hq check`, to say whom `cap_senders` leaves out.
pub fn senders_in(dir: &Path, limit: usize) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let files = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .take(limit);
    for path in files {
        let label = path.display().to_string();
        if let Ok(Ok(msg)) = read_claimed(&path).map(|t| parse(&t, &label)) {
            *out.entry(msg.id.sender).or_default() += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = include_str!("../../tests/data/cap/tsunami-alert.xml");

    #[test]
    fn files_are_claimed_before_reading_and_odd_entries_refused() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        std::fs::write(dir.join("a.xml"), GOOD).unwrap();
        std::fs::write(dir.join("secret"), "top secret").unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), dir.join("b.xml")).unwrap();
        std::fs::hard_link(dir.join("secret"), dir.join("c.xml")).unwrap();
        std::fs::create_dir(dir.join("d.xml")).unwrap();
        std::fs::write(dir.join("e.xml"), vec![b' '; MAX_CAP_BYTES + 1]).unwrap();
        std::fs::write(dir.join("f.txt"), "ignored").unwrap();
        // Still being written by a sender that renames it when whole.
        std::fs::write(dir.join(".g.xml"), &GOOD[..100]).unwrap();
        let claimed = claim(dir);
        let names: Vec<_> = claimed.iter().map(|c| c.name.to_string_lossy()).collect();
        assert_eq!(names, ["a.xml", "b.xml", "c.xml", "d.xml", "e.xml"]);
        assert!(claimed[0].parsed.is_ok());
        let why = |i: usize| claimed[i].parsed.as_ref().unwrap_err().to_string();
        assert!(why(1).contains("symbolic link"), "{}", why(1));
        assert!(why(2).contains("hard links"), "{}", why(2));
        assert!(why(3).contains("not a regular file"), "{}", why(3));
        assert!(why(4).contains("larger than"), "{}", why(4));
        for n in &names {
            assert!(
                !dir.join(n.as_ref()).exists(),
                "{n} left in the drop folder"
            );
        }
        assert!(dir.join("f.txt").exists() && dir.join(".g.xml").exists());
        for c in &claimed {
            finish(dir, &c.name, c.parsed.is_ok(), "note");
        }
        assert!(dir.join("done/a.xml").exists() && dir.join("done/a.txt").exists());
        assert!(dir.join("rejected/b.xml").symlink_metadata().is_ok());
        assert_eq!(
            std::fs::read_to_string(dir.join("secret")).unwrap(),
            "top secret"
        );
    }

    #[test]
    fn a_file_left_half_taken_is_rejected_at_start() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        std::fs::create_dir(dir.join(TAKING)).unwrap();
        std::fs::write(dir.join(TAKING).join("crash.xml"), GOOD).unwrap();
        assert_eq!(recover(dir), 1);
        assert!(claim(dir).is_empty());
        assert!(dir.join("rejected/crash.xml").exists());
        let why = std::fs::read_to_string(dir.join("rejected/crash.txt")).unwrap();
        assert!(why.contains("HQ stopped"), "{why}");
    }

    /// Issue 18 item 17: a feed that drops the same refused file again and again (every 3 s)
    /// got the same warning every time. The same file (name, content) refused for the same
    /// reason is reported once.
    #[test]
    fn the_same_file_refused_again_is_reported_once() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let refuse = |why: &str| {
            let c = claim(dir);
            assert_eq!(c.len(), 1);
            finish(dir, &c[0].name, false, why)
        };
        std::fs::write(dir.join("feed.xml"), GOOD).unwrap();
        assert_eq!(refuse("sender not listed"), Filed::Rejected);
        std::fs::write(dir.join("feed.xml"), GOOD).unwrap();
        assert_eq!(refuse("sender not listed"), Filed::RejectedAgain);
        assert!(!dir.join(TAKING).join("feed.xml").exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("rejected/feed.xml")).unwrap(),
            GOOD
        );
        // Another reason, or other content under the name, is news.
        std::fs::write(dir.join("feed.xml"), GOOD).unwrap();
        assert_eq!(refuse("expired"), Filed::Rejected);
        std::fs::write(dir.join("feed.xml"), GOOD.replace("Tsunami", "tsunami")).unwrap();
        assert_eq!(refuse("expired"), Filed::Rejected);
        std::fs::write(dir.join("feed.xml"), GOOD).unwrap();
        let c = claim(dir);
        assert_eq!(finish(dir, &c[0].name, true, "taken in"), Filed::Done);
    }
}
