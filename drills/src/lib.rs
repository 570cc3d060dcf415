//! Drill scenarios, the resident simulator and the one-command drill runner.
//!
//! This crate is a placeholder until its issue fills it in.
#![deny(missing_docs)]
