//! The record area of an overlay section: which households of the section's span have an
//! order, and each one's level, shelter, version and "needs help", coded in bits so that a
//! household costs close to the information in its order rather than a record of bytes.
//!
//! Household ids need not follow geography (a register numbers households as they register),
//! so the section says which ids of its span are ordered as a set, names the shelters,
//! levels and versions it uses once (palettes), and gives each household only its index in
//! them, packed in mixed radix so that 200 shelters cost 7.6 bits, not 8. Where neighbours do
//! share orders, the encoder codes only the places where the order changes.
//!
//! Layout (bits, most significant first; `EG(k)` is an order-k exp-Golomb code):
//!
//! ```text
//! EG(0)   n, households in the section
//! when n > 0:
//! 32      first household id
//! EG(0)   span: last household id minus the first
//! set     which of the span - 1 ids between first and last are ordered (n - 2 of them)
//! 4       levels used, one bit each, most significant first: lifted, level 3, 4, 5
//! list    shelter ids used
//! list    order versions used
//! 1       runs: 1 when symbols follow only where the order changes
//!         when runs: EG(0) changes, then which of positions 1..n-1 change (a set)
//! EG(0)   households needing help, then which positions (a set of the n)
//! chunks  the symbols: per household (or per change), level index + levels × (shelter
//!         index + shelters × version index); as many as fit a 64-bit number are
//!         written together, in the fewest bits that hold radix^count - 1, the first
//!         symbol least significant
//! 0-7     zero bits to the byte
//!
//! set:    nothing when none or all are in it; else 1 bit: 0 a bitmap of every slot, or 1:
//!         5 bits k, then each member's distance from the previous (the first: from -1)
//!         minus one, in EG(k)
//! list:   EG(0) entries minus one, 5 bits k, then the first entry and each later entry
//!         minus the previous minus one, in EG(k)
//! ```

use super::{MAX_HOUSEHOLDS_PER_SECTION, OverlayRecord};
use crate::bits::{BitReader, BitWriter, bit_len, exp_golomb_len};
use crate::error::OverlayError;
use crate::hazard::AlertLevel;
use crate::ids::{HouseholdId, ShelterId};

/// The largest exp-Golomb order a set or list may use (5 bits).
const MAX_K: u32 = 31;

fn level_code(level: Option<AlertLevel>) -> usize {
    match level {
        None => 0,
        Some(AlertLevel::Level3) => 1,
        Some(AlertLevel::Level4) => 2,
        Some(AlertLevel::Level5) => 3,
    }
}

const LEVELS: [Option<AlertLevel>; 4] = [
    None,
    Some(AlertLevel::Level3),
    Some(AlertLevel::Level4),
    Some(AlertLevel::Level5),
];

/// The exp-Golomb order with the fewest bits for `gaps`, and those bits.
fn best_k(gaps: &[u64]) -> (u32, u64) {
    let sum: u128 = gaps.iter().map(|&g| u128::from(g)).sum();
    let mean = sum / gaps.len().max(1) as u128;
    let guess = bit_len(mean).saturating_sub(1).min(MAX_K);
    // Every order for a short list; around the mean's for a long one (an outlier can pull
    // the mean, but a long list's cost is ruled by its many ordinary gaps).
    let ks = if gaps.len() <= 256 {
        0..=MAX_K
    } else {
        guess.saturating_sub(2)..=(guess + 1).min(MAX_K)
    };
    ks.map(|k| (k, gaps.iter().map(|&g| exp_golomb_len(g, k)).sum::<u64>()))
        .min_by_key(|&(k, bits)| (bits, k))
        .unwrap_or((0, 0))
}

/// How a set is written.
enum SetCode {
    /// Empty or full: nothing.
    Implied,
    Bitmap,
    Gaps(u32),
}

/// The cheapest code for the sorted `members` of `slots` slots, and its bits.
fn plan_set(members: &[u64], slots: u64) -> (SetCode, u64) {
    if members.is_empty() || members.len() as u64 == slots {
        return (SetCode::Implied, 0);
    }
    let (k, gap_bits) = best_k(&gaps_of(members));
    if slots < 6 + gap_bits {
        (SetCode::Bitmap, 1 + slots)
    } else {
        (SetCode::Gaps(k), 1 + 5 + gap_bits)
    }
}

/// Distances between sorted distinct values minus one, the first value's from -1 (itself).
fn gaps_of(values: &[u64]) -> Vec<u64> {
    let mut prev: Option<u64> = None;
    values
        .iter()
        .map(|&v| {
            let g = prev.map_or(v, |p| v - p - 1);
            prev = Some(v);
            g
        })
        .collect()
}

fn write_set(w: &mut BitWriter, members: &[u64], slots: u64, code: &SetCode) {
    match code {
        SetCode::Implied => {}
        SetCode::Bitmap => {
            w.bit(false);
            let mut at = members.iter().peekable();
            for slot in 0..slots {
                let hit = at.peek() == Some(&&slot);
                if hit {
                    at.next();
                }
                w.bit(hit);
            }
        }
        SetCode::Gaps(k) => {
            w.bit(true);
            w.put(u64::from(*k), 5);
            for g in gaps_of(members) {
                w.exp_golomb(g, *k);
            }
        }
    }
}

fn read_set(
    r: &mut BitReader,
    count: u64,
    slots: u64,
    field: &'static str,
) -> Result<Vec<u64>, OverlayError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if count == slots {
        return Ok((0..slots).collect());
    }
    let at = r.offset();
    let mut out = Vec::with_capacity(count as usize);
    if !r.bit(field)? {
        if slots > r.remaining() {
            return Err(OverlayError::Truncated { offset: at, field });
        }
        for slot in 0..slots {
            if r.bit(field)? {
                if out.len() as u64 == count {
                    return Err(r.invalid(at, field, "more members than its count"));
                }
                out.push(slot);
            }
        }
        if (out.len() as u64) < count {
            return Err(r.invalid(at, field, "fewer members than its count"));
        }
    } else {
        let k = r.get(5, field)? as u32;
        let mut next = 0u64;
        for _ in 0..count {
            let g = r.exp_golomb(k, field)?;
            let p = next
                .checked_add(g)
                .filter(|&p| p < slots)
                .ok_or_else(|| r.invalid(at, field, "member beyond its slots"))?;
            out.push(p);
            next = p + 1;
        }
    }
    Ok(out)
}

/// Writes sorted distinct values (at least one) in the order k that takes the fewest bits.
fn write_list(w: &mut BitWriter, values: &[u64]) {
    let gaps = gaps_of(values);
    let (k, _) = best_k(&gaps);
    w.exp_golomb(values.len() as u64 - 1, 0);
    w.put(u64::from(k), 5);
    for g in gaps {
        w.exp_golomb(g, k);
    }
}

fn read_list(r: &mut BitReader, most: u64, field: &'static str) -> Result<Vec<u32>, OverlayError> {
    let at = r.offset();
    let count = r.exp_golomb(0, field)?.saturating_add(1);
    if count > most {
        return Err(r.invalid(at, field, "more entries than households"));
    }
    let k = r.get(5, field)? as u32;
    let mut out = Vec::with_capacity(count as usize);
    let mut next = 0u64;
    for _ in 0..count {
        let g = r.exp_golomb(k, field)?;
        let v = next
            .checked_add(g)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| r.invalid(at, field, "entry exceeds 32 bits"))?;
        out.push(v);
        next = u64::from(v) + 1;
    }
    Ok(out)
}

/// Symbols that fit one 64-bit chunk in radix `radix` (more than 1).
fn per_chunk(radix: u128) -> u32 {
    let mut j = 1;
    let mut p = radix;
    while p * radix <= 1u128 << 64 {
        p *= radix;
        j += 1;
    }
    j
}

/// Bits of `count` symbols in radix `radix`.
fn symbols_len(count: u64, radix: u128) -> u64 {
    if radix <= 1 || count == 0 {
        return 0;
    }
    let j = u64::from(per_chunk(radix));
    let full = count / j;
    let rest = count % j;
    let width = |n: u64| u64::from(bit_len(radix.pow(n as u32) - 1));
    full * width(j) + if rest > 0 { width(rest) } else { 0 }
}

fn write_symbols(w: &mut BitWriter, symbols: &[u64], radix: u128) {
    if radix <= 1 {
        return;
    }
    let j = per_chunk(radix) as usize;
    for chunk in symbols.chunks(j) {
        let mut v: u128 = 0;
        for &s in chunk.iter().rev() {
            v = v * radix + u128::from(s);
        }
        let width = bit_len(radix.pow(chunk.len() as u32) - 1);
        w.put(v as u64, width);
    }
}

fn read_symbols(r: &mut BitReader, count: u64, radix: u128) -> Result<Vec<u64>, OverlayError> {
    if radix <= 1 {
        return Ok(vec![0; count as usize]);
    }
    let j = u64::from(per_chunk(radix));
    let mut out = Vec::with_capacity(count as usize);
    let mut left = count;
    while left > 0 {
        let n = left.min(j);
        let at = r.offset();
        let limit = radix.pow(n as u32);
        let mut v = u128::from(r.get(bit_len(limit - 1), "symbols")?);
        if v >= limit {
            return Err(r.invalid(at, "symbols", "beyond the palettes"));
        }
        for _ in 0..n {
            out.push((v % radix) as u64);
            v /= radix;
        }
        left -= n;
    }
    Ok(out)
}

fn sorted_distinct(values: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut v: Vec<u64> = values.collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn index_in(palette: &[u64], v: u64) -> u64 {
    palette.binary_search(&v).unwrap_or(0) as u64
}

/// Writes the record area of `records` (strictly ascending households, checked by the caller).
pub(super) fn encode(records: &[OverlayRecord], w: &mut BitWriter) -> Result<(), OverlayError> {
    let n = records.len() as u64;
    if n > MAX_HOUSEHOLDS_PER_SECTION {
        return Err(OverlayError::Encode(format!(
            "{n} households exceed the {MAX_HOUSEHOLDS_PER_SECTION} of one section"
        )));
    }
    w.exp_golomb(n, 0);
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(());
    };
    let first = first.household.0;
    let span = u64::from(last.household.0 - first);
    w.put(u64::from(first), 32);
    w.exp_golomb(span, 0);
    if n >= 2 {
        let between: Vec<u64> = records[1..records.len() - 1]
            .iter()
            .map(|r| u64::from(r.household.0 - first) - 1)
            .collect();
        let (code, _) = plan_set(&between, span - 1);
        write_set(w, &between, span - 1, &code);
    }

    let mut mask = 0u64;
    for r in records {
        mask |= 8 >> level_code(r.level);
    }
    w.put(mask, 4);
    let levels: Vec<u64> = (0..4u64).filter(|i| mask & (8 >> i) != 0).collect();
    let shelters = sorted_distinct(records.iter().map(|r| u64::from(r.shelter.0)));
    let versions = sorted_distinct(records.iter().map(|r| u64::from(r.version)));
    write_list(w, &shelters);
    write_list(w, &versions);

    let (nl, ns) = (levels.len() as u64, shelters.len() as u64);
    let radix = u128::from(nl) * u128::from(ns) * versions.len() as u128;
    let symbols: Vec<u64> = records
        .iter()
        .map(|r| {
            index_in(&levels, level_code(r.level) as u64)
                + nl * (index_in(&shelters, u64::from(r.shelter.0))
                    + ns * index_in(&versions, u64::from(r.version)))
        })
        .collect();
    let changes: Vec<u64> = (1..symbols.len())
        .filter(|&i| symbols[i] != symbols[i - 1])
        .map(|i| i as u64 - 1)
        .collect();
    let (change_code, change_bits) = plan_set(&changes, n - 1);
    let runs_bits = exp_golomb_len(changes.len() as u64, 0)
        + change_bits
        + symbols_len(changes.len() as u64 + 1, radix);
    let runs = runs_bits < symbols_len(n, radix);
    w.bit(runs);
    if runs {
        w.exp_golomb(changes.len() as u64, 0);
        write_set(w, &changes, n - 1, &change_code);
    }

    let help: Vec<u64> = (0..n).filter(|&i| records[i as usize].needs_help).collect();
    w.exp_golomb(help.len() as u64, 0);
    let (help_code, _) = plan_set(&help, n);
    write_set(w, &help, n, &help_code);

    if runs {
        let coded: Vec<u64> = std::iter::once(symbols[0])
            .chain(changes.iter().map(|&c| symbols[c as usize + 1]))
            .collect();
        write_symbols(w, &coded, radix);
    } else {
        write_symbols(w, &symbols, radix);
    }
    Ok(())
}

/// Reads a record area.
pub(super) fn decode(r: &mut BitReader) -> Result<Vec<OverlayRecord>, OverlayError> {
    let at = r.offset();
    let n = r.exp_golomb(0, "household count")?;
    if n > MAX_HOUSEHOLDS_PER_SECTION {
        return Err(r.invalid(at, "household count", "too many households in one section"));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let first = r.get(32, "first household")?;
    let at = r.offset();
    let span = r.exp_golomb(0, "span")?;
    if first + span > u64::from(u32::MAX) {
        return Err(r.invalid(at, "span", "overflows 32 bits"));
    }
    if (n == 1) != (span == 0) || n > span + 1 {
        return Err(r.invalid(at, "span", "does not hold the households"));
    }
    let mut ids = Vec::with_capacity(n as usize);
    ids.push(first);
    if n >= 2 {
        for p in read_set(r, n - 2, span - 1, "households")? {
            ids.push(first + p + 1);
        }
        ids.push(first + span);
    }

    let at = r.offset();
    let mask = r.get(4, "levels")?;
    if mask == 0 {
        return Err(r.invalid(at, "levels", "no level"));
    }
    let levels: Vec<Option<AlertLevel>> = (0..4)
        .filter(|i| mask & (8 >> i) != 0)
        .map(|i| LEVELS[i])
        .collect();
    let shelters = read_list(r, n, "shelters")?;
    let versions = read_list(r, n, "versions")?;
    let (nl, ns) = (levels.len() as u64, shelters.len() as u64);
    let radix = u128::from(nl) * u128::from(ns) * versions.len() as u128;

    let runs = r.bit("runs")?;
    let changes = if runs {
        let at = r.offset();
        let c = r.exp_golomb(0, "changes")?;
        if c > n - 1 {
            return Err(r.invalid(at, "changes", "more changes than households"));
        }
        Some(read_set(r, c, n - 1, "changes")?)
    } else {
        None
    };
    let at = r.offset();
    let helped = r.exp_golomb(0, "needs help")?;
    if helped > n {
        return Err(r.invalid(at, "needs help", "more than the households"));
    }
    let help = read_set(r, helped, n, "needs help")?;

    let symbols = match &changes {
        Some(c) => {
            let coded = read_symbols(r, c.len() as u64 + 1, radix)?;
            let mut out = Vec::with_capacity(n as usize);
            let mut next = c.iter().peekable();
            let mut k = 0;
            for i in 0..n {
                if i > 0 && next.peek().is_some_and(|&&c| c + 1 == i) {
                    next.next();
                    k += 1;
                }
                out.push(coded[k]);
            }
            out
        }
        None => read_symbols(r, n, radix)?,
    };
    let mut help = help.into_iter().peekable();
    let mut out = Vec::with_capacity(n as usize);
    for (i, (&id, &s)) in ids.iter().zip(&symbols).enumerate() {
        let needs_help = help.peek() == Some(&(i as u64));
        if needs_help {
            help.next();
        }
        out.push(OverlayRecord {
            household: HouseholdId(id as u32),
            level: levels[(s % nl) as usize],
            shelter: ShelterId(shelters[(s / nl % ns) as usize]),
            version: versions[(s / nl / ns) as usize],
            needs_help,
        });
    }
    Ok(out)
}
