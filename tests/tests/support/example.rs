//! The deploy example configs, with only paths and addresses changed: the multi-host and
//! new-user tests run the nodes through the files a town's IT person starts from.

use super::workspace;

/// The text of `deploy/{name}` with each `(key, value)` set: `key` is `field` for the top of
/// the file or `section.field` inside `[section]`; `value` is TOML (`"\"x\""`, `3`). A field
/// the example leaves commented out (`# field = ...`) is set in its place. A key the example
/// does not have is a test failure (the example changed: change the test too).
pub fn example(name: &str, set: &[(&str, String)]) -> String {
    let text = std::fs::read_to_string(workspace().join("deploy").join(name)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (key, value) in set {
        let (section, field) = match key.rsplit_once('.') {
            Some((s, f)) => (s, f),
            None => ("", *key),
        };
        let mut current = String::new();
        let mut done = false;
        for line in &mut lines {
            let t = line.trim();
            if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                current = name.to_owned();
                continue;
            }
            let is_field = t
                .strip_prefix("# ")
                .unwrap_or(t)
                .strip_prefix(field)
                .is_some_and(|r| r.trim_start().starts_with('='));
            if current == section && is_field {
                *line = format!("{field} = {value}");
                done = true;
                break;
            }
        }
        assert!(done, "deploy/{name} has no {key}");
    }
    lines.join("\n") + "\n"
}

/// A TOML string.
pub fn s(v: impl std::fmt::Display) -> String {
    format!("{:?}", v.to_string())
}
