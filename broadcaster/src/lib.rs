//! Overlay muxing into MPEG transport streams and the reference receiver evac-stb.
//!
//! This crate is a placeholder until its issue fills it in.
#![deny(missing_docs)]
