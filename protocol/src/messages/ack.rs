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
        };
        let wire = k.sign(HQ_SIGNER, &ack).unwrap().to_json().unwrap();
        golden::check("ack.json", &wire);
        let back = Signed::<Ack>::from_json(wire.as_bytes()).unwrap();
        assert_eq!(back.open(&k.public()).unwrap(), ack);
    }
}
