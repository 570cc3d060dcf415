//! The messages of DESIGN.md's topic table, one module per family.
//!
//! Every message is JSON. All but the event batch travel inside a [`crate::Signed`]
//! envelope; the batch is a container of individually signed events.

pub mod ack;
pub mod alert;
pub mod command;
pub mod event;
pub mod order;
pub mod registry;
pub mod shards;
pub mod state;
pub mod status;
pub mod status_parts;

#[cfg(test)]
pub(crate) mod golden {
    //! Golden files: the fixed wire text of each family, under `protocol/tests/golden/`.
    //! Run with `UPDATE_GOLDEN=1` to rewrite them after a deliberate wire change.

    use std::path::PathBuf;

    use crate::sign::SecretKey;

    /// The key every golden message is signed with (Ed25519 is deterministic).
    pub fn key() -> SecretKey {
        SecretKey::from_seed(&[7u8; 32])
    }

    /// Compares `actual` with the golden file `name`.
    pub fn check(name: &str, actual: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 once)", path.display()));
        assert_eq!(actual, expected, "wire format of {name} changed");
    }
}
