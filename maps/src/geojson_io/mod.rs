//! Reading and writing `town.geojson`: one FeatureCollection whose features carry
//! `properties.kind` = `household`, `shelter`, `zone`, `road` or `water`.
//!
//! - [`read`]: from bytes, or from a file through a buffer, straight into the typed model (no
//!   generic JSON tree): the `features` array is visited one feature at a time, so a
//!   malformed feature is reported with serde_json's line and column plus its index. Rules
//!   that span features (unique ids, a card linked to one resident only) are checked after
//!   parsing and reported with the feature index.
//! - [`feature`]: one feature's raw shape (properties, geometry, coordinates of any depth)
//!   and its conversion into a household, shelter, zone, road or water line.
//! - [`write`]: one feature on each line, shelters first, then zones, then roads, then water
//!   lines, then households, each in the order of the town's vectors; numbers use
//!   serde_json's shortest round-trip form, so the same town always gives the same bytes.

mod feature;
mod read;
mod write;

pub(crate) use read::{parse, parse_reader};
pub(crate) use write::write;

#[cfg(test)]
mod tests;
