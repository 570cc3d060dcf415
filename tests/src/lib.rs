//! End-to-end tests of evac: each test under `tests/tests/` starts real processes.
//!
//! The library part holds the support code those tests share.
#![deny(missing_docs)]
