//! The town for evac: who lives where, where they can go, and what threatens them.
//!
//! A [`Town`] holds
//! - **households**: a location, an optional address and TV language, and the
//!   members, each a resident with an id unique across the town, a name as
//!   registered, an [`AgeBand`], a needs-help flag (避難行動要支援者) and the JPKI card
//!   certificates linked to them ([`CardRef`]: issuer key id and serial, never the
//!   My Number);
//! - **shelters**: designated emergency evacuation sites (指定緊急避難場所) with a
//!   location, capacity, floor area, the [`Hazard`]s they are designated for (GSI's
//!   eight), and whether they are accessible and open;
//! - **zones**: hazard zones as polygons;
//! - **roads**: the ways people walk ([`Road`]), which [`Network`] turns into a
//!   walking graph: nodes and edges with length and flags (bridge, steps, inside a
//!   hazard's zone); households and shelters join it at the nearest road ([`Snap`]);
//!   [`Field`] gives every point its nearest source by walking, [`Network::route`] one
//!   route with its geometry. [`osm`] imports roads from OpenStreetMap (`.osm` XML or
//!   `.osm.pbf`).
//!
//! It loads from and saves to GeoJSON ([`Town::load`], [`Town::save`]): one
//! FeatureCollection (QGIS opens it) whose features' `properties.kind` is
//! `household`, `shelter`, `zone` or `road`; coordinates are WGS 84 longitude, latitude.
//! [`gsi::import_csv`] reads shelters from GSI's designated-site CSV.
//! [`ShelterIndex`] finds shelters in increasing great-circle distance, lazily and
//! through any predicate, so the order engine can take "the nearest open shelter
//! for this hazard with room left". [`generate()`] makes a deterministic synthetic
//! coastal town; the committed sample `data/town.geojson` is
//! `generate(&GenerateParams::default())`.
//!
//! # The GeoJSON properties
//!
//! | kind | properties |
//! | --- | --- |
//! | `household` | `id`, `address`?, `language` (`ja`, `en`, `ja-easy`; default `ja`), `members`: [{`resident`, `name`, `age_band`, `needs_help`, `cards`: [{`issuer_key_id`, `serial`}]}] |
//! | `shelter` | `id`, `name`, `address`?, `capacity`, `floor_area_m2` (or null), `hazards`, `accessible` (default false), `open` (default true), `gsi_id`? |
//! | `zone` | `id`, `hazard`, `name`; geometry Polygon or MultiPolygon |
//! | `road` | `id`, `bridge` (default false), `steps` (default false), `osm_id`?; geometry LineString |
//!
//! A shelter without `capacity` gets `floor_area_m2` / 3.5 people. Unknown
//! properties are ignored; an unknown `kind` is an error.
//!
//! # Example
//!
//! ```
//! use evac_maps::{GenerateParams, Hazard, ShelterFilter, ShelterIndex, Town, generate};
//!
//! let town = generate(&GenerateParams { households: 200, shelters: 12, seed: 7 });
//! let text = town.to_geojson_string();
//! let again = Town::from_geojson_str(&text)?;
//! assert_eq!(again, town);
//!
//! // Households in the tsunami zone, each with its nearest open tsunami shelter.
//! let index = ShelterIndex::new(&town.shelters);
//! let filter = ShelterFilter::open_for(Hazard::Tsunami);
//! for household in town.households_at_risk(Hazard::Tsunami).take(3) {
//!     let nearest = index.nearest_where(household.location, |s| filter.matches(s)).next();
//!     let nearest = nearest.expect("the sample town has tsunami shelters");
//!     assert!(nearest.shelter.suits(Hazard::Tsunami) && nearest.distance_m < 10_000.0);
//! }
//! println!("{}", town.summary());
//! # Ok::<(), evac_maps::MapsError>(())
//! ```
#![deny(missing_docs)]

mod cards;
mod error;
pub mod generate;
mod geojson_io;
pub mod gsi;
mod hazard;
mod index;
mod model;
mod network;
pub mod osm;
mod registry;
mod road_import;
mod roads;
mod town;

pub use cards::CardHolder;
pub use error::MapsError;
pub use generate::{
    GenerateParams, SAMPLE_HOUSEHOLDS, SAMPLE_SEED, SAMPLE_SHELTERS, SYNTHETIC_ISSUER_KEY_ID,
    SYNTHETIC_ISSUER_KEY_ID_HEX, generate, generate_city,
};
pub use hazard::{Hazard, HazardSet, UnknownHazard};
pub use index::{Nearby, ShelterFilter, ShelterIndex};
pub use model::{
    AgeBand, CardRef, EARTH_RADIUS_M, FLOOR_AREA_PER_PERSON_M2, Household, Language, LonLat,
    Member, Shelter, Zone, capacity_from_floor_area,
};
pub use network::{Edge, Field, Nearest, Network, Reach, Route, Snap, ZONE_WEIGHT};
pub use registry::{BadDate, BirthDate, REGISTRY_DATE, normalize_kana};
pub use road_import::{IMPORT_MARGIN_M, RoadCounts};
pub use roads::Road;
pub use town::{ResidentIndex, Summary, Town};

/// The `geo` crate, whose `MultiPolygon` is [`Zone::area`]'s type.
pub use geo;
