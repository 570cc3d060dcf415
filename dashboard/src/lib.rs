//! The disaster officers' terminal dashboard.
#![deny(missing_docs)]

pub mod config;
pub mod state;
