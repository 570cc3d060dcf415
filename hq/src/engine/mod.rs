//! The order engine: town + hazard notices + current state in, per-household orders out.
//! No I/O.
//!
//! Each affected household gets one shelter: open, designated for the hazard, with room left
//! (people present plus people expected), nearest on foot over the town's roads (avoiding the
//! hazard's zones where another route exists), or by great-circle distance for a town without
//! roads. Households with
//! someone who needs help go first and to accessible shelters where there is room; at level 3
//! only households with someone aged 65+ or needing help are ordered. A household's order
//! version grows only when its order changes, so a re-route re-broadcasts only what changed.
//!
//! On foot, "nearest with room" is an [`evac_maps::Field`] per hazard (every road node's
//! nearest shelter with room, a multi-source Dijkstra): a household looks at the two ends of
//! the road it joins; a shelter that fills is removed and only the nodes that were nearest to
//! it are searched again. A household whose piece of the network has no suitable open shelter
//! at all is reported unreachable (and ordered to evacuate without a shelter), never sent by
//! straight line. Without roads, "nearest with room" is found by walking the shelters in
//! increasing distance in an R*-tree that holds only shelters with room left; a shelter that
//! fills is taken out of the tree, so each household costs about one nearest-neighbour query.
//! [`naive`] is the linear scan it is measured against.

mod area;
mod book;
pub mod naive;
mod town;

pub use area::CompiledArea;
pub use book::{Assign, BookChange, NoticeState, OrderBook, Persist};
pub use town::{EngineTown, Walk, chord2, maps_hazard};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod walk_tests;

/// A request the engine cannot carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The notice names zones the town does not have.
    #[error("unknown zone(s) {0:?}")]
    UnknownZones(Vec<u32>),
    /// No active notice has this message id.
    #[error("no active order message {0}")]
    UnknownMessage(u32),
    /// The town has no such shelter.
    #[error("no shelter {0}")]
    UnknownShelter(u32),
}
