//! Shelter node: card readers, JPKI certificate checks, the SQLite ledger and the MQTT outbox.
//!
//! This crate is a placeholder until its issue fills it in.
#![deny(missing_docs)]
