//! [`ShelterIndex`]: shelters in increasing great-circle distance from a point.
//!
//! Shelters sit in an R*-tree as 3-D unit vectors. The straight-line (chord) distance
//! between two unit vectors grows monotonically with the great-circle angle between
//! them, so the tree's nearest-by-chord order is the nearest-by-great-circle order,
//! with no special case at the poles or the antimeridian. Distances are reported in
//! metres by the haversine formula.

use rstar::RTree;
use rstar::primitives::GeomWithData;

use crate::hazard::Hazard;
use crate::model::{LonLat, Shelter};

type Entry = GeomWithData<[f64; 3], usize>;

/// A spatial index over a set of shelters, for nearest-shelter queries.
///
/// It keeps its own copy of the shelters (a town has at most a few thousand), so the
/// caller's state (open, arrivals so far) lives in the caller and enters a query
/// through a predicate.
#[derive(Debug, Clone)]
pub struct ShelterIndex {
    tree: RTree<Entry>,
    shelters: Vec<Shelter>,
}

/// One shelter found by a query, with its distance from the query point.
#[derive(Debug, Clone, Copy)]
pub struct Nearby<'a> {
    /// The shelter.
    pub shelter: &'a Shelter,
    /// Great-circle distance from the query point, in metres.
    pub distance_m: f64,
}

/// The static conditions a shelter must meet: suitability, open, accessible.
/// Dynamic ones ("room left") go in the predicate of [`ShelterIndex::nearest_where`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShelterFilter {
    /// Only shelters designated for this hazard.
    pub hazard: Option<Hazard>,
    /// Only shelters marked open.
    pub open_only: bool,
    /// Only accessible shelters.
    pub accessible_only: bool,
}

impl ShelterFilter {
    /// Open shelters designated for `hazard`.
    pub fn open_for(hazard: Hazard) -> Self {
        ShelterFilter {
            hazard: Some(hazard),
            open_only: true,
            accessible_only: false,
        }
    }

    /// The same filter, keeping only accessible shelters.
    pub fn accessible(self) -> Self {
        ShelterFilter {
            accessible_only: true,
            ..self
        }
    }

    /// Whether `shelter` meets the filter.
    pub fn matches(&self, shelter: &Shelter) -> bool {
        self.hazard.is_none_or(|h| shelter.suits(h))
            && (!self.open_only || shelter.open)
            && (!self.accessible_only || shelter.accessible)
    }
}

impl ShelterIndex {
    /// Builds the index over `shelters` (copied).
    pub fn new(shelters: &[Shelter]) -> Self {
        let entries = shelters
            .iter()
            .enumerate()
            .map(|(i, s)| Entry::new(s.location.unit_vector(), i))
            .collect();
        ShelterIndex {
            tree: RTree::bulk_load(entries),
            shelters: shelters.to_vec(),
        }
    }

    /// The shelters indexed, in the order given to [`ShelterIndex::new`].
    pub fn shelters(&self) -> &[Shelter] {
        &self.shelters
    }

    /// Every shelter in increasing distance from `from`, computed lazily: taking the
    /// first few costs about log(n) each.
    pub fn nearest(&self, from: LonLat) -> impl Iterator<Item = Nearby<'_>> + '_ {
        self.tree
            .nearest_neighbor_iter(from.unit_vector())
            .map(move |e| {
                let shelter = &self.shelters[e.data];
                Nearby {
                    shelter,
                    distance_m: from.distance_m(shelter.location),
                }
            })
    }

    /// The shelters for which `pred` holds, in increasing distance from `from`, lazily.
    ///
    /// This is the query for "nearest with room": the predicate can look at the
    /// caller's own counts, e.g. `|s| filter.matches(s) && expected[&s.id] < s.capacity`.
    pub fn nearest_where<'a, F>(
        &'a self,
        from: LonLat,
        mut pred: F,
    ) -> impl Iterator<Item = Nearby<'a>> + 'a
    where
        F: FnMut(&Shelter) -> bool + 'a,
    {
        self.nearest(from).filter(move |n| pred(n.shelter))
    }

    /// Up to `k` nearest shelters that meet `filter`, nearest first.
    pub fn nearest_matching(
        &self,
        from: LonLat,
        filter: ShelterFilter,
        k: usize,
    ) -> Vec<Nearby<'_>> {
        self.nearest_where(from, move |s| filter.matches(s))
            .take(k)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hazard::HazardSet;

    fn shelter(
        id: u32,
        lon: f64,
        lat: f64,
        hazards: &[Hazard],
        open: bool,
        accessible: bool,
    ) -> Shelter {
        Shelter {
            id,
            name: format!("s{id}"),
            address: None,
            location: LonLat::new(lon, lat),
            capacity: 100,
            floor_area_m2: None,
            hazards: hazards.iter().copied().collect::<HazardSet>(),
            accessible,
            open,
            gsi_id: None,
        }
    }

    /// The answer without an index: sort all by haversine.
    fn brute(shelters: &[Shelter], from: LonLat) -> Vec<u32> {
        let mut v: Vec<(f64, u32)> = shelters
            .iter()
            .map(|s| (from.distance_m(s.location), s.id))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        v.into_iter().map(|(_, id)| id).collect()
    }

    #[test]
    fn order_matches_brute_force_haversine_including_antimeridian_and_pole() {
        let shelters = vec![
            shelter(1, 179.99, 10.0, &[], true, true),
            shelter(2, -179.99, 10.0, &[], true, true),
            shelter(3, 170.0, 10.0, &[], true, true),
            shelter(4, 0.0, 89.99, &[], true, true),
            shelter(5, 180.0, 89.98, &[], true, true),
            shelter(6, 141.95, 39.64, &[], true, true),
        ];
        let index = ShelterIndex::new(&shelters);
        for from in [
            LonLat::new(-179.995, 10.0),
            LonLat::new(90.0, 89.995),
            LonLat::new(141.9, 39.6),
        ] {
            let got: Vec<u32> = index.nearest(from).map(|n| n.shelter.id).collect();
            assert_eq!(got, brute(&shelters, from), "from {from:?}");
        }
        // Across the antimeridian, 2 is ~550 m away and 1 ~550 m: both before 3, 1000 km away.
        let first_two: Vec<u32> = index
            .nearest(LonLat::new(180.0, 10.0))
            .take(2)
            .map(|n| n.shelter.id)
            .collect();
        assert!(first_two.contains(&1) && first_two.contains(&2));
    }

    #[test]
    fn an_empty_index_finds_nothing() {
        let index = ShelterIndex::new(&[]);
        assert_eq!(index.nearest(LonLat::new(141.9, 39.6)).count(), 0);
        assert!(index.shelters().is_empty());
    }

    #[test]
    fn distances_increase_and_are_haversine_metres() {
        let shelters: Vec<Shelter> = (0..50)
            .map(|i| {
                shelter(
                    i + 1,
                    141.9 + f64::from(i) * 0.003,
                    39.6 + f64::from(i % 7) * 0.004,
                    &[],
                    true,
                    false,
                )
            })
            .collect();
        let index = ShelterIndex::new(&shelters);
        let from = LonLat::new(141.95, 39.62);
        let all: Vec<Nearby<'_>> = index.nearest(from).collect();
        assert_eq!(all.len(), 50);
        for w in all.windows(2) {
            assert!(w[0].distance_m <= w[1].distance_m);
        }
        assert_eq!(all[0].distance_m, from.distance_m(all[0].shelter.location));
    }

    #[test]
    fn filter_and_predicate_skip_unsuitable_closed_inaccessible_and_full() {
        let shelters = vec![
            shelter(1, 141.950, 39.640, &[Hazard::Earthquake], true, true), // nearest, not for tsunami
            shelter(2, 141.940, 39.640, &[Hazard::Tsunami], false, true),   // closed
            shelter(3, 141.930, 39.640, &[Hazard::Tsunami], true, false),   // not accessible
            shelter(4, 141.920, 39.640, &[Hazard::Tsunami], true, true),    // "full" below
            shelter(
                5,
                141.900,
                39.640,
                &[Hazard::Tsunami, Hazard::Flood],
                true,
                true,
            ),
        ];
        let index = ShelterIndex::new(&shelters);
        let from = LonLat::new(141.951, 39.640);
        let ids = |v: Vec<Nearby<'_>>| v.iter().map(|n| n.shelter.id).collect::<Vec<_>>();
        assert_eq!(
            ids(index.nearest_matching(from, ShelterFilter::open_for(Hazard::Tsunami), 10)),
            [3, 4, 5]
        );
        assert_eq!(
            ids(index.nearest_matching(
                from,
                ShelterFilter::open_for(Hazard::Tsunami).accessible(),
                10
            )),
            [4, 5]
        );
        let full = [4u32];
        let filter = ShelterFilter::open_for(Hazard::Tsunami).accessible();
        let first = index
            .nearest_where(from, |s| filter.matches(s) && !full.contains(&s.id))
            .next();
        assert_eq!(first.map(|n| n.shelter.id), Some(5));
        assert_eq!(
            index
                .nearest_matching(from, ShelterFilter::open_for(Hazard::Volcano), 3)
                .len(),
            0
        );
    }
}
