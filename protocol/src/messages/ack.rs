//! HQ's end-to-end acknowledgement: which of a shelter's events are safe in HQ's store.

use serde::{Deserialize, Serialize};

use crate::ids::ShelterId;
use crate::sign::Signable;

/// Retained on `.../shelter/{id}/ack`: every event of the shelter with a sequence number up
/// to `through_seq` is committed in HQ's store, so the shelter may stop resending them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The shelter acknowledged.
    pub shelter: ShelterId,
    /// Highest sequence number such that all events 1..=through_seq are stored.
    pub through_seq: u64,
    /// When HQ made the acknowledgement (Unix ms).
    pub at_ms: u64,
    /// Set when HQ rejected a whole batch on the shelter's topic (nothing in it could be
    /// stored): why, so the shelter knows instead of resending in silence. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

impl Signable for Ack {
    const KIND: &'static str = "ack";
}

/// The signer name of HQ.
pub const HQ_SIGNER: &str = "hq";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::golden;
    use crate::sign::Signed;

    #[test]
    fn golden_and_round_trip() {
        let k = golden::key();
        let ack = Ack {
            shelter: ShelterId(3),
            through_seq: 41,
            at_ms: 1_795_000_000_500,
            rejected: None,
        };
        let wire = k.sign(HQ_SIGNER, &ack).unwrap().to_json().unwrap();
        golden::check("ack.json", &wire);
        let back = Signed::<Ack>::from_json(wire.as_bytes()).unwrap();
        assert_eq!(back.open(&k.public()).unwrap(), ack);
        // An older shelter reads an ack that says why a batch was rejected.
        let told = Ack {
            rejected: Some("bad signature".into()),
            ..ack
        };
        let wire = k.sign(HQ_SIGNER, &told).unwrap().to_json().unwrap();
        let back = Signed::<Ack>::from_json(wire.as_bytes()).unwrap();
        assert_eq!(back.open(&k.public()).unwrap(), told);
    }
}
