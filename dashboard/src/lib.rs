//! The disaster officers' terminal dashboard.
//!
//! This crate is a placeholder until its issue fills it in.
#![deny(missing_docs)]
