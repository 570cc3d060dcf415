//! The fixed geography of the synthetic town 潮見浜町 (Shiomihama): an east-facing
//! coast near lon 141.97, lat 39.60-39.69, a river reaching the sea at lat 39.64,
//! hills inland, and the villages where households cluster. All made up.

use std::f64::consts::TAU;

// libm, not std: std's functions call the platform's maths library, whose last bit
// may differ between systems, and the generator must give the same bytes everywhere.
use libm::{cos, exp, pow, sin};

use crate::hazard::Hazard;
use crate::model::{LonLat, Zone};

/// The town's name, used in addresses.
pub const TOWN_NAME: &str = "潮見浜町";

/// The town's extent in latitude.
pub const LAT_MIN: f64 = 39.600;
/// The town's extent in latitude.
pub const LAT_MAX: f64 = 39.690;
/// The town's western (inland) edge.
pub const LON_MIN: f64 = 141.870;

/// Metres per degree of latitude, and of longitude at the town's latitude.
pub const M_PER_DEG_LAT: f64 = 111_200.0;
/// See [`M_PER_DEG_LAT`]; cos(39.645°) times that.
pub const M_PER_DEG_LON: f64 = 85_640.0;

/// Longitude of the shoreline at `lat`: a gently wavy line with two bays.
pub fn coast_lon(lat: f64) -> f64 {
    let t = (lat - LAT_MIN) / (LAT_MAX - LAT_MIN);
    141.972 + 0.005 * sin(t * TAU * 1.5) + 0.002 * cos(t * TAU * 4.0)
}

/// Latitude of the river's centre line at `lon` (it runs from the hills in the
/// north-west down to its mouth at lat 39.640).
pub fn river_lat(lon: f64) -> f64 {
    let t = ((coast_lon(39.640) - lon) / (coast_lon(39.640) - LON_MIN)).clamp(0.0, 1.0);
    39.640 + 0.022 * pow(t, 1.3) + 0.002 * sin(t * 9.0)
}

/// How far inland (degrees of longitude) the tsunami inundation zone reaches at
/// `lat`: about 600 m, widening to about 2 km around the river mouth.
pub fn tsunami_reach(lat: f64) -> f64 {
    0.007 + 0.017 * exp(-sq((lat - 39.641) / 0.0055))
}

/// Whether a point is on land within the town.
pub fn on_land(p: LonLat) -> bool {
    (LAT_MIN..=LAT_MAX).contains(&p.lat) && p.lon >= LON_MIN && p.lon < coast_lon(p.lat) - 0.0006
}

/// The land's area in km²: the strips between [`LON_MIN`] and the shore (as [`on_land`]).
pub fn land_km2() -> f64 {
    let n = 1000;
    let dlat = (LAT_MAX - LAT_MIN) / f64::from(n);
    (0..n)
        .map(|i| {
            let lat = LAT_MIN + dlat * (f64::from(i) + 0.5);
            (coast_lon(lat) - 0.0006 - LON_MIN) * M_PER_DEG_LON * dlat * M_PER_DEG_LAT
        })
        .sum::<f64>()
        / 1e6
}

/// A village: where households cluster.
pub struct Village {
    /// Village name (a district of the town).
    pub name: &'static str,
    /// Centre.
    pub centre: LonLat,
    /// Spread of households around the centre (standard deviation, metres).
    pub spread_m: f64,
    /// Share of households (relative weight).
    pub weight: u32,
    /// Whether it lies on the shore (tsunami buildings and hill parks go near these).
    pub coastal: bool,
}

/// The villages, with their centres placed relative to the coast and the river.
pub fn villages() -> Vec<Village> {
    let shore = |lat: f64, inland_deg: f64| LonLat::new(coast_lon(lat) - inland_deg, lat);
    let river = |lon: f64| LonLat::new(lon, river_lat(lon));
    vec![
        Village {
            name: "本町",
            centre: shore(39.6425, 0.009),
            spread_m: 650.0,
            weight: 30,
            coastal: true,
        },
        Village {
            name: "北浜",
            centre: shore(39.6760, 0.004),
            spread_m: 320.0,
            weight: 10,
            coastal: true,
        },
        Village {
            name: "南浦",
            centre: shore(39.6120, 0.004),
            spread_m: 320.0,
            weight: 10,
            coastal: true,
        },
        Village {
            name: "汐見台",
            centre: shore(39.6560, 0.030),
            spread_m: 480.0,
            weight: 16,
            coastal: false,
        },
        Village {
            name: "川井",
            centre: river(141.925),
            spread_m: 420.0,
            weight: 10,
            coastal: false,
        },
        Village {
            name: "中里",
            centre: LonLat::new(141.940, 39.620),
            spread_m: 420.0,
            weight: 9,
            coastal: false,
        },
        Village {
            name: "上野",
            centre: LonLat::new(141.897, 39.628),
            spread_m: 500.0,
            weight: 8,
            coastal: false,
        },
        Village {
            name: "奥沢",
            centre: LonLat::new(141.884, 39.672),
            spread_m: 360.0,
            weight: 7,
            coastal: false,
        },
    ]
}

fn sq(x: f64) -> f64 {
    x * x
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn ring(points: Vec<(f64, f64)>) -> geo::Polygon<f64> {
    let coords: Vec<geo::Coord<f64>> = points
        .into_iter()
        .map(|(x, y)| geo::coord! { x: round6(x), y: round6(y) })
        .collect();
    geo::Polygon::new(geo::LineString::new(coords), vec![])
}

fn lat_steps(n: usize) -> impl DoubleEndedIterator<Item = f64> + Clone {
    (0..=n).map(move |i| LAT_MIN + (LAT_MAX - LAT_MIN) * i as f64 / n as f64)
}

/// A blob-shaped polygon (12 vertices) around `c` with radii in metres.
fn blob(c: LonLat, rx_m: f64, ry_m: f64, wobble: f64) -> geo::Polygon<f64> {
    let pts = (0..12)
        .map(|i| {
            let a = f64::from(i) * TAU / 12.0;
            let r = 1.0 + wobble * sin(a * 3.0);
            (
                c.lon + rx_m * r * cos(a) / M_PER_DEG_LON,
                c.lat + ry_m * r * sin(a) / M_PER_DEG_LAT,
            )
        })
        .collect();
    ring(pts)
}

/// The hazard zones: tsunami inundation, storm surge, river flood, landslide.
pub fn zones() -> Vec<Zone> {
    let steps = lat_steps(36);
    // Coastal strips run from a line offshore to a line inland.
    let strip = |reach: &dyn Fn(f64) -> f64| {
        let inland = steps.clone().map(|lat| (coast_lon(lat) - reach(lat), lat));
        let offshore = steps.clone().rev().map(|lat| (coast_lon(lat) + 0.004, lat));
        ring(inland.chain(offshore).collect())
    };
    let tsunami = strip(&tsunami_reach);
    let surge = strip(&|lat| 0.0025 + 0.006 * exp(-sq((lat - 39.641) / 0.004)));

    // The river flood zone follows the river from the hills to the mouth, ~350 m each side.
    let mouth = coast_lon(39.640);
    let lons: Vec<f64> = (0..=24)
        .map(|i| 141.880 + (mouth - 0.002 - 141.880) * f64::from(i) / 24.0)
        .collect();
    let half = 350.0 / M_PER_DEG_LAT;
    let north = lons.iter().map(|&lon| (lon, river_lat(lon) + half));
    let south = lons.iter().rev().map(|&lon| (lon, river_lat(lon) - half));
    let flood = ring(north.chain(south).collect());

    // Steep slopes above the upland villages.
    let landslide = geo::MultiPolygon(vec![
        blob(LonLat::new(141.881, 39.6745), 600.0, 420.0, 0.15),
        blob(LonLat::new(141.893, 39.6235), 520.0, 380.0, 0.2),
        blob(LonLat::new(141.915, 39.604), 450.0, 300.0, 0.1),
    ]);

    vec![
        Zone {
            id: 1,
            name: "潮見浜町 津波浸水想定区域".into(),
            hazard: Hazard::Tsunami,
            area: tsunami.into(),
        },
        Zone {
            id: 2,
            name: "潮見川 洪水浸水想定区域".into(),
            hazard: Hazard::Flood,
            area: flood.into(),
        },
        Zone {
            id: 3,
            name: "潮見浜町 土砂災害警戒区域".into(),
            hazard: Hazard::Landslide,
            area: landslide,
        },
        Zone {
            id: 4,
            name: "潮見浜町 高潮浸水想定区域".into(),
            hazard: Hazard::StormSurge,
            area: surge.into(),
        },
    ]
}
