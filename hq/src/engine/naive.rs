//! The baseline: for each household in priority order, scan every shelter for the nearest one
//! that is open, suitable and has room. Same answers as the engine (the tests check it), at
//! O(households x shelters).

use evac_protocol::Hazard;

use crate::engine::town::{EngineTown, chord2};

/// Assigns `households` (indices, already in priority order) for `hazard`, given people already
/// counted at each shelter (`load`); returns each household's shelter index.
pub fn assign(
    town: &EngineTown,
    hazard: Hazard,
    households: &[u32],
    open: &[bool],
    load: &mut [u32],
) -> Vec<Option<u32>> {
    let usable: Vec<bool> = (0..town.shelters())
        .map(|s| open[s] && town.suits(s, hazard))
        .collect();
    let nearest = |h: usize, load: &[u32], accessible_only: bool| -> Option<usize> {
        let size = town.hh_size[h];
        let mut best: Option<(f64, usize)> = None;
        for s in 0..town.shelters() {
            if !usable[s] || (accessible_only && !town.sh_access[s]) {
                continue;
            }
            if town.sh_cap[s].saturating_sub(load[s]) < size {
                continue;
            }
            let d = chord2(&town.hh_pos[h], &town.sh_pos[s]);
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, s));
            }
        }
        best.map(|(_, s)| s)
    };
    households
        .iter()
        .map(|&h| {
            let h = h as usize;
            let pick = if town.hh_help[h] {
                nearest(h, load, true).or_else(|| nearest(h, load, false))
            } else {
                nearest(h, load, false)
            };
            if let Some(s) = pick {
                load[s] += town.hh_size[h];
            }
            pick.map(|s| s as u32)
        })
        .collect()
}
