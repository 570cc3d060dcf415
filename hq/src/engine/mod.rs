//! The order engine: town + hazard notices + current state in, per-household orders out.
//! No I/O.
//!
//! Each affected household gets one shelter: open, designated for the hazard, with room left
//! (people present plus people expected), nearest by great-circle distance. Households with
//! someone who needs help go first and to accessible shelters where there is room; at level 3
//! only households with someone aged 65+ or needing help are ordered. A household's order
//! version grows only when its order changes, so a re-route re-broadcasts only what changed.
//!
//! "Nearest with room" is computed by walking the shelters in increasing distance in an
//! R*-tree that holds only shelters with room left; a shelter that fills is taken out of the
//! tree, so each household costs about one nearest-neighbour query. [`naive`] is the linear
//! scan it is measured against.

mod area;
mod book;
pub mod naive;
mod town;

pub use area::CompiledArea;
pub use book::{Assign, NoticeState, OrderBook, Outcome, Persist};
pub use town::{EngineTown, chord2, maps_hazard};

#[cfg(test)]
mod tests;

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
