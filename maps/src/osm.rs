//! Roads from OpenStreetMap: `.osm` (XML, read with quick-xml) or `.osm.pbf` (read with
//! osmpbf).
//!
//! Every way with a `highway` tag that people may walk on becomes a [`Road`]: not
//! motorways, roads under construction or proposed, race tracks, bus guideways; not a
//! way tagged `foot=no` (or `private`, `use_sidepath`), nor `access=no`/`private` unless
//! `foot` allows it. `bridge=*` (other than `no`) marks a bridge, `highway=steps` steps.
//! Positions are kept at OSM's own precision (1e-7 degree), the same from either format,
//! so ways that share a node share a position and meet in the [`crate::Network`].
//! A way whose nodes are partly missing from the extract is cut where they are missing.
//! With [`Bounds`], only ways with a node inside are kept.
//!
//! Water becomes [`Water`] lines, so that a house joins a road on its own bank: ways tagged
//! `waterway` river, canal, stream, drain, ditch, tidal_channel or riverbank, and
//! `natural=water` or `coastline` (a lake's or the sea's edge), unless in a culvert or tunnel.

use std::collections::HashSet;
use std::path::Path;

use quick_xml::events::{BytesStart, Event};

use crate::error::MapsError;
use crate::model::LonLat;
use crate::roads::{Road, Water};

/// What a town takes from an OSM file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OsmData {
    /// The walkable ways, numbered from 1 in way-id order.
    pub roads: Vec<Road>,
    /// The water lines, numbered from 1 in way-id order.
    pub water: Vec<Water>,
}

/// A box in longitude and latitude: the ways kept have a node inside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// South-west corner.
    pub min: LonLat,
    /// North-east corner.
    pub max: LonLat,
}

impl Bounds {
    /// The smallest box around `points`, grown by `margin_m` metres on every side; None
    /// for no points.
    pub fn around(points: impl IntoIterator<Item = LonLat>, margin_m: f64) -> Option<Bounds> {
        let mut it = points.into_iter();
        let first = it.next()?;
        let (mut min, mut max) = (first, first);
        for p in it {
            min = LonLat::new(min.lon.min(p.lon), min.lat.min(p.lat));
            max = LonLat::new(max.lon.max(p.lon), max.lat.max(p.lat));
        }
        let dlat = margin_m / 111_195.0;
        let dlon = dlat
            / min
                .lat
                .abs()
                .max(max.lat.abs())
                .to_radians()
                .cos()
                .max(0.01);
        Some(Bounds {
            min: LonLat::new(min.lon - dlon, min.lat - dlat),
            max: LonLat::new(max.lon + dlon, max.lat + dlat),
        })
    }

    /// Whether `p` is inside (edges included).
    pub fn contains(&self, p: LonLat) -> bool {
        (self.min.lon..=self.max.lon).contains(&p.lon)
            && (self.min.lat..=self.max.lat).contains(&p.lat)
    }
}

/// A way as read, before it becomes roads.
#[derive(Debug, Default)]
struct Way {
    id: i64,
    refs: Vec<i64>,
    highway: Option<String>,
    foot: Option<String>,
    access: Option<String>,
    bridge: Option<String>,
    waterway: Option<String>,
    natural: Option<String>,
    tunnel: Option<String>,
}

impl Way {
    fn tag(&mut self, k: &str, v: &str) {
        let slot = match k {
            "highway" => &mut self.highway,
            "foot" => &mut self.foot,
            "access" => &mut self.access,
            "bridge" => &mut self.bridge,
            "waterway" => &mut self.waterway,
            "natural" => &mut self.natural,
            "tunnel" => &mut self.tunnel,
            _ => return,
        };
        *slot = Some(v.to_owned());
    }

    /// Water a person cannot walk across.
    fn water(&self) -> bool {
        let course = matches!(
            self.waterway.as_deref(),
            Some("river" | "canal" | "stream" | "drain" | "ditch" | "tidal_channel" | "riverbank")
        );
        let edge = matches!(self.natural.as_deref(), Some("water" | "coastline"));
        (course || edge) && !matches!(self.tunnel.as_deref(), Some("culvert" | "yes"))
    }

    /// Kept: a road or water.
    fn kept(&self) -> bool {
        self.walkable() || self.water()
    }

    fn walkable(&self) -> bool {
        let Some(highway) = self.highway.as_deref() else {
            return false;
        };
        if matches!(
            highway,
            "motorway"
                | "motorway_link"
                | "construction"
                | "proposed"
                | "abandoned"
                | "razed"
                | "raceway"
                | "bus_guideway"
                | "busway"
                | "escape"
        ) {
            return false;
        }
        let foot = self.foot.as_deref();
        if matches!(foot, Some("no" | "private" | "use_sidepath")) {
            return false;
        }
        let foot_allowed = matches!(foot, Some("yes" | "designated" | "permissive"));
        !matches!(self.access.as_deref(), Some("no" | "private")) || foot_allowed
    }
}

/// A coordinate in degrees at OSM's precision (1e-7), the same value from XML text and
/// from PBF's integers.
fn degrees(decimicro: i64) -> f64 {
    decimicro as f64 / 1e7
}

/// Reads the roads and water of an OSM file, by its extension: `.pbf` is PBF, anything
/// else XML.
pub fn import(path: &Path, bounds: Option<Bounds>) -> Result<OsmData, MapsError> {
    let pbf = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pbf"));
    if pbf {
        read_pbf(path, bounds)
    } else {
        let bytes = std::fs::read(path).map_err(|cause| MapsError::Io {
            path: path.to_owned(),
            action: "read",
            cause,
        })?;
        read_xml(&bytes, &path.display().to_string(), bounds)
    }
}

fn osm_err(file: &str, message: impl Into<String>) -> MapsError {
    MapsError::Osm {
        file: file.to_owned(),
        message: message.into(),
    }
}

/// Reads the roads and water of OSM XML; `file` names the source in errors (which give
/// the byte offset).
pub fn read_xml(bytes: &[u8], file: &str, bounds: Option<Bounds>) -> Result<OsmData, MapsError> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut nodes: foldhash::HashMap<i64, LonLat> = foldhash::HashMap::default();
    let mut ways = Vec::new();
    let mut way: Option<Way> = None;
    let at = |reader: &quick_xml::Reader<&[u8]>, m: String| {
        osm_err(file, format!("byte {}: {m}", reader.buffer_position()))
    };
    loop {
        let ev = reader.read_event_into(&mut buf).map_err(|e| {
            osm_err(
                file,
                format!("byte {}: not well-formed XML: {e}", reader.error_position()),
            )
        })?;
        let (start, empty) = match &ev {
            Event::Start(s) => (Some(s), false),
            Event::Empty(s) => (Some(s), true),
            Event::End(e) => {
                if e.name().as_ref() == b"way"
                    && let Some(w) = way.take()
                {
                    ways.push(w);
                }
                (None, false)
            }
            Event::Eof => break,
            _ => (None, false),
        };
        let Some(s) = start else {
            buf.clear();
            continue;
        };
        match s.name().as_ref() {
            b"node" => {
                let id = int_attr(s, b"id").map_err(|m| at(&reader, m))?;
                let lat = coord_attr(s, b"lat").map_err(|m| at(&reader, m))?;
                let lon = coord_attr(s, b"lon").map_err(|m| at(&reader, m))?;
                let p = LonLat::new(degrees(lon), degrees(lat));
                if !p.is_valid() {
                    return Err(at(&reader, format!("node {id} is outside WGS 84")));
                }
                nodes.insert(id, p);
            }
            b"way" => {
                let id = int_attr(s, b"id").map_err(|m| at(&reader, m))?;
                let w = Way {
                    id,
                    ..Way::default()
                };
                if empty {
                    ways.push(w);
                } else {
                    way = Some(w);
                }
            }
            b"nd" => {
                if let Some(w) = way.as_mut() {
                    w.refs
                        .push(int_attr(s, b"ref").map_err(|m| at(&reader, m))?);
                }
            }
            b"tag" => {
                if let Some(w) = way.as_mut() {
                    let k = str_attr(s, b"k").map_err(|m| at(&reader, m))?;
                    let v = str_attr(s, b"v").map_err(|m| at(&reader, m))?;
                    w.tag(&k, &v);
                }
            }
            _ => {}
        }
        buf.clear();
    }
    ways.retain(Way::kept);
    Ok(split(ways, &nodes, bounds))
}

fn str_attr(s: &BytesStart<'_>, key: &[u8]) -> Result<String, String> {
    let name = String::from_utf8_lossy(key).into_owned();
    let tag = String::from_utf8_lossy(s.name().as_ref()).into_owned();
    let a = s
        .try_get_attribute(key)
        .map_err(|e| format!("<{tag}>: bad attribute: {e}"))?
        .ok_or_else(|| format!("<{tag}> has no {name}"))?;
    a.unescape_value()
        .map(|v| v.into_owned())
        .map_err(|e| format!("<{tag}> {name}: {e}"))
}

fn int_attr(s: &BytesStart<'_>, key: &[u8]) -> Result<i64, String> {
    let v = str_attr(s, key)?;
    v.trim().parse().map_err(|_| {
        format!(
            "<{}> {}={v:?} is not an integer",
            String::from_utf8_lossy(s.name().as_ref()),
            String::from_utf8_lossy(key)
        )
    })
}

/// A coordinate attribute in units of 1e-7 degree.
fn coord_attr(s: &BytesStart<'_>, key: &[u8]) -> Result<i64, String> {
    let v = str_attr(s, key)?;
    match v.trim().parse::<f64>() {
        Ok(d) if d.is_finite() && d.abs() <= 180.0 => Ok((d * 1e7).round() as i64),
        _ => Err(format!(
            "<{}> {}={v:?} is not a coordinate",
            String::from_utf8_lossy(s.name().as_ref()),
            String::from_utf8_lossy(key)
        )),
    }
}

/// Reads the roads and water of an OSM PBF file: the ways first, then only the nodes they
/// use.
pub fn read_pbf(path: &Path, bounds: Option<Bounds>) -> Result<OsmData, MapsError> {
    use osmpbf::{Element, ElementReader};
    let file = path.display().to_string();
    let open = || ElementReader::from_path(path).map_err(|e| osm_err(&file, e.to_string()));
    let mut ways = Vec::new();
    open()?
        .for_each(|el| {
            if let Element::Way(w) = el {
                let mut way = Way {
                    id: w.id(),
                    refs: w.refs().collect(),
                    ..Way::default()
                };
                for (k, v) in w.tags() {
                    way.tag(k, v);
                }
                if way.kept() {
                    ways.push(way);
                }
            }
        })
        .map_err(|e| osm_err(&file, e.to_string()))?;
    let wanted: HashSet<i64> = ways.iter().flat_map(|w| w.refs.iter().copied()).collect();
    let mut nodes: foldhash::HashMap<i64, LonLat> = foldhash::HashMap::default();
    let mut bad = None;
    open()?
        .for_each(|el| {
            let (id, lon, lat) = match el {
                Element::Node(n) => (n.id(), n.decimicro_lon(), n.decimicro_lat()),
                Element::DenseNode(n) => (n.id(), n.decimicro_lon(), n.decimicro_lat()),
                _ => return,
            };
            if wanted.contains(&id) {
                let p = LonLat::new(degrees(lon.into()), degrees(lat.into()));
                if p.is_valid() {
                    nodes.insert(id, p);
                } else {
                    bad.get_or_insert(id);
                }
            }
        })
        .map_err(|e| osm_err(&file, e.to_string()))?;
    if let Some(id) = bad {
        return Err(osm_err(&file, format!("node {id} is outside WGS 84")));
    }
    Ok(split(ways, &nodes, bounds))
}

/// Roads from the walkable ways, water lines from the water ways.
fn split(
    ways: Vec<Way>,
    nodes: &foldhash::HashMap<i64, LonLat>,
    bounds: Option<Bounds>,
) -> OsmData {
    let (walk, water): (Vec<Way>, Vec<Way>) = ways.into_iter().partition(Way::walkable);
    OsmData {
        roads: roads(walk, nodes, bounds),
        // Kept ways that are not walkable are water.
        water: roads(water, nodes, bounds)
            .into_iter()
            .map(|r| Water {
                id: r.id,
                points: r.points,
                osm_id: r.osm_id,
            })
            .collect(),
    }
}

/// Turns walkable ways into roads numbered from 1 in way-id order, cut where a node is
/// missing, keeping those with a node inside `bounds`.
fn roads(
    mut ways: Vec<Way>,
    nodes: &foldhash::HashMap<i64, LonLat>,
    bounds: Option<Bounds>,
) -> Vec<Road> {
    ways.sort_by_key(|w| w.id);
    let mut out = Vec::new();
    for w in ways {
        let bridge = w.bridge.as_deref().is_some_and(|b| b != "no");
        let steps = w.highway.as_deref() == Some("steps");
        let mut run: Vec<LonLat> = Vec::new();
        let mut flush = |run: &mut Vec<LonLat>| {
            run.dedup();
            if run.len() >= 2 && bounds.is_none_or(|b| run.iter().any(|p| b.contains(*p))) {
                out.push(Road {
                    id: out.len() as u32 + 1,
                    points: std::mem::take(run),
                    bridge,
                    steps,
                    osm_id: Some(w.id),
                });
            }
            run.clear();
        };
        for r in &w.refs {
            match nodes.get(r) {
                Some(p) => run.push(*p),
                None => flush(&mut run),
            }
        }
        flush(&mut run);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="hand">
  <node id="1" lat="39.6400000" lon="141.9500000"/>
  <node id="2" lat="39.6400000" lon="141.9510000"/>
  <node id="3" lat="39.6410000" lon="141.9510000"/>
  <node id="4" lat="39.6410000" lon="141.9520000"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/></way>
  <way id="11"><nd ref="3"/><nd ref="4"/><tag k="highway" v="motorway"/></way>
  <way id="12"><nd ref="2"/><nd ref="99"/><nd ref="4"/><nd ref="1"/><tag k="highway" v="footway"/><tag k="bridge" v="yes"/></way>
  <way id="13"><nd ref="1"/><nd ref="4"/><tag k="building" v="yes"/></way>
  <way id="14"><nd ref="1"/><nd ref="3"/><tag k="highway" v="service"/><tag k="access" v="private"/></way>
  <way id="15"><nd ref="4"/><nd ref="1"/><tag k="highway" v="steps"/><tag k="access" v="no"/><tag k="foot" v="yes"/></way>
</osm>"#;

    #[test]
    fn keeps_walkable_ways_with_flags_and_cuts_at_missing_nodes() {
        let roads = read_xml(TINY.as_bytes(), "t.osm", None).unwrap().roads;
        let summary: Vec<(Option<i64>, usize, bool, bool)> = roads
            .iter()
            .map(|r| (r.osm_id, r.points.len(), r.bridge, r.steps))
            .collect();
        assert_eq!(
            summary,
            [
                (Some(10), 3, false, false),
                (Some(12), 2, true, false),
                (Some(15), 2, false, true)
            ]
        );
        assert_eq!(roads[0].points[1], LonLat::new(141.951, 39.64));
        assert!(
            roads
                .iter()
                .enumerate()
                .all(|(i, r)| r.id as usize == i + 1)
        );
    }

    #[test]
    fn bounds_keep_ways_with_a_node_inside() {
        let b = Bounds::around([LonLat::new(141.9495, 39.6399)], 60.0).unwrap();
        let roads = read_xml(TINY.as_bytes(), "t.osm", Some(b)).unwrap().roads;
        // Way 12's piece after the missing node (4 -> 1) and way 15 (4 -> 1) touch node 1.
        assert!(
            roads
                .iter()
                .all(|r| r.points.contains(&LonLat::new(141.95, 39.64)))
        );
        assert_eq!(roads.len(), 3);
    }

    #[test]
    fn water_becomes_water_lines_but_not_a_culvert_or_a_dam() {
        let osm = TINY.replace(
            "</osm>",
            r#"  <way id="20"><nd ref="1"/><nd ref="2"/><tag k="waterway" v="river"/></way>
  <way id="21"><nd ref="2"/><nd ref="3"/><tag k="waterway" v="stream"/><tag k="tunnel" v="culvert"/></way>
  <way id="22"><nd ref="1"/><nd ref="3"/><nd ref="4"/><nd ref="1"/><tag k="natural" v="water"/></way>
  <way id="23"><nd ref="3"/><nd ref="4"/><tag k="waterway" v="dam"/></way>
  <way id="24"><nd ref="2"/><nd ref="4"/><tag k="natural" v="coastline"/></way>
</osm>"#,
        );
        let got = read_xml(osm.as_bytes(), "t.osm", None).unwrap();
        let water: Vec<(u32, Option<i64>, usize)> = got
            .water
            .iter()
            .map(|w| (w.id, w.osm_id, w.points.len()))
            .collect();
        assert_eq!(
            water,
            [(1, Some(20), 2), (2, Some(22), 4), (3, Some(24), 2)]
        );
        assert_eq!(got.roads.len(), 3, "water is not walked on");
    }

    #[test]
    fn malformed_xml_names_the_byte() {
        for (bad, want) in [
            (
                TINY.replace(
                    "lat=\"39.6400000\" lon=\"141.9500000\"",
                    "lat=\"x\" lon=\"1\"",
                ),
                "is not a coordinate",
            ),
            (
                TINY.replace("<nd ref=\"1\"/><nd ref=\"2\"/>", "<nd ref=\"a\"/>"),
                "is not an integer",
            ),
            (
                TINY.replace("</way>\n  <way id=\"11\">", "</wa>"),
                "not well-formed",
            ),
            (
                TINY.replace("lon=\"141.9500000\"", "lon=\"200\""),
                "is not a coordinate",
            ),
        ] {
            let e = read_xml(bad.as_bytes(), "t.osm", None)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("t.osm: byte ") && e.contains(want), "{e}");
        }
    }
}
