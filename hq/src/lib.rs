//! HQ service: embedded broker, status store, order engine, CAP intake and officer commands.
//!
//! This crate is a placeholder until its issue fills it in.
#![deny(missing_docs)]
