//! Node liveness, Sparkplug style: a retained state on connect, a last will on loss.

use serde::{Deserialize, Serialize};

use crate::ids::ShelterId;
use crate::sign::Signable;

/// Retained on `.../shelter/{id}/state`; the same message with `online: false` is the
/// node's last will.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// The shelter.
    pub shelter: ShelterId,
    /// Whether the node is connected.
    pub online: bool,
    /// Counts the node's MQTT sessions (Sparkplug's bdSeq): a will from an older session is
    /// stale.
    pub session: u64,
    /// Counts state messages within the session: a gap means one was lost.
    pub seq: u64,
    /// People present now.
    pub present: u32,
    /// Events recorded but not yet acknowledged by HQ.
    pub pending: u64,
    /// Highest sequence HQ has acknowledged.
    pub acked_through: u64,
    /// When the node said this (Unix ms).
    pub at_ms: u64,
}

impl Signable for NodeState {
    const KIND: &'static str = "state";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::event::shelter_signer;
    use crate::messages::golden;
    use crate::sign::Signed;

    #[test]
    fn golden_and_round_trip() {
        let k = golden::key();
        let st = NodeState {
            shelter: ShelterId(3),
            online: false,
            session: 5,
            seq: 0,
            present: 17,
            pending: 2,
            acked_through: 40,
            at_ms: 1_795_000_000_000,
        };
        let wire = k
            .sign(&shelter_signer(ShelterId(3)), &st)
            .unwrap()
            .to_json()
            .unwrap();
        golden::check("state.json", &wire);
        assert_eq!(
            Signed::<NodeState>::from_json(wire.as_bytes())
                .unwrap()
                .open(&k.public())
                .unwrap(),
            st
        );
    }
}
