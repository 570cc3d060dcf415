//! Noticing that the key directory or the password file changed, so that a new shelter (its
//! `shelter-{id}.pub` dropped into `keys_dir`, its password set with `evac-hq passwd`) can join
//! a running HQ without a restart.
//!
//! A [`ReloadedPath`] path is summarised by the names, sizes and modification times of what is
//! there; HQ looks every few seconds and reloads only when the summary changed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A file or directory whose contents HQ reloads when they change.
#[derive(Debug)]
pub struct ReloadedPath {
    path: PathBuf,
    seen: Vec<(String, u64, Option<SystemTime>)>,
}

fn summary(path: &Path) -> Vec<(String, u64, Option<SystemTime>)> {
    let one = |name: String, p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (name, m.len(), m.modified().ok()))
    };
    let mut out: Vec<_> = match std::fs::read_dir(path) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| one(e.file_name().to_string_lossy().into_owned(), &e.path()))
            .collect(),
        // A file (or nothing: then the summary is empty and its appearance is a change).
        Err(_) => one(String::new(), path).into_iter().collect(),
    };
    out.sort();
    out
}

impl ReloadedPath {
    /// Starts watching `path` as it is now.
    pub fn new(path: &Path) -> ReloadedPath {
        ReloadedPath {
            path: path.to_owned(),
            seen: summary(path),
        }
    }

    /// Whether the path changed since the last call (or since [`ReloadedPath::new`]).
    pub fn changed(&mut self) -> bool {
        let now = summary(&self.path);
        if now == self.seen {
            return false;
        }
        self.seen = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_in_a_directory_or_a_rewritten_file_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = ReloadedPath::new(dir.path());
        assert!(!keys.changed());
        std::fs::write(dir.path().join("shelter-4.pub"), "k").unwrap();
        assert!(keys.changed());
        assert!(!keys.changed());

        let file = dir.path().join("passwords");
        let mut pw = ReloadedPath::new(&file);
        std::fs::write(&file, "a:b:c\n").unwrap();
        assert!(pw.changed());
        std::fs::write(&file, "a:b:c\nd:e:f\n").unwrap();
        assert!(pw.changed());
        assert!(!pw.changed());
    }
}
