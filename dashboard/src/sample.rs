//! A mid-evacuation feed for a town, signed as HQ signs it: the registry's shards, one tsunami
//! order for every household in a tsunami zone, and eight status snapshots five minutes
//! apart as residents arrive. For the snapshot tests, the benchmark and demonstrations;
//! every figure is derived from the town and the resident ids, so it is the same each run.

use evac_maps::Town;
use evac_protocol::{
    AlertLevel, CardRef, HQ_SIGNER, Hazard, HouseholdId, MessageKind, Order, OrderBatch,
    PackedStatuses, RegistryHousehold, RegistryResident, ResidentId, ResidentStatus, SecretKey,
    ShelterId, ShelterStatus, StatusCounts, StatusMessage, StatusSnapshot, Topic, TownId,
};

/// The messages of the feed, in the order HQ sent them: (topic, payload).
pub type Feed = Vec<(String, Vec<u8>)>;

/// A status snapshot as HQ publishes it (`hq/src/core.rs`, `snapshot_messages`): one signed
/// message on `status` while it is at most [`status_parts::SINGLE_MAX`], else its signed
/// parts, each on its own `status/part/{i}` topic.
pub fn snapshot_messages(
    id: &TownId,
    key: &SecretKey,
    snap: StatusSnapshot,
) -> Result<Feed, SampleError> {
    use evac_protocol::messages::status_parts;
    let msg = StatusMessage::Snapshot(snap);
    let one = key.sign(HQ_SIGNER, &msg)?.to_json()?.into_bytes();
    let StatusMessage::Snapshot(snap) = msg else {
        return Ok(Feed::new());
    };
    if one.len() <= status_parts::SINGLE_MAX {
        return Ok(vec![(Topic::Status(id.clone()).to_string(), one)]);
    }
    let parts = status_parts::split(&snap, status_parts::PART_BUDGET)?;
    parts
        .iter()
        .map(|p| {
            Ok((
                Topic::StatusPart(id.clone(), p.part as u16).to_string(),
                key.sign(HQ_SIGNER, p)?.to_json()?.into_bytes(),
            ))
        })
        .collect()
}

/// The registry of `households` as HQ publishes it (`hq/src/core/shards.rs`): every shard at
/// `version`, gzip-packed and signed, then the manifest. Households are consumed shard by
/// shard, so a large town's registry is never one message.
pub fn registry_shards(
    id: &TownId,
    key: &SecretKey,
    version: u64,
    card_check: evac_protocol::CardDigest,
    households: Vec<RegistryHousehold>,
) -> Result<Feed, evac_protocol::SignError> {
    use evac_protocol::messages::shards::{shard_count, shard_of};
    let shards = shard_count(households.len());
    let mut by_shard: Vec<Vec<RegistryHousehold>> = vec![Vec::new(); usize::from(shards)];
    for h in households {
        by_shard[usize::from(shard_of(h.id, shards))].push(h);
    }
    let mut feed = Feed::new();
    let mut entries = Vec::new();
    for (n, households) in by_shard.into_iter().enumerate() {
        let n = n as u16;
        let digest = evac_protocol::ShardSum::of(&households).digest(n, shards);
        let shard = evac_protocol::RegistryShard {
            town: id.clone(),
            shards,
            shard: n,
            version,
            households,
            digest,
        };
        let json = key.sign(HQ_SIGNER, &shard)?.to_json()?;
        feed.push((
            Topic::RegistryShard(id.clone(), n).to_string(),
            evac_protocol::packed::pack(json.as_bytes()),
        ));
        entries.push(evac_protocol::ShardEntry { version, digest });
    }
    let manifest = evac_protocol::RegistryManifest {
        town: id.clone(),
        version,
        card_check,
        shards: entries,
    };
    let json = key.sign(HQ_SIGNER, &manifest)?.to_json()?;
    feed.push((
        Topic::RegistryManifest(id.clone()).to_string(),
        evac_protocol::packed::pack(json.as_bytes()),
    ));
    Ok(feed)
}

/// Why a feed could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// A message did not sign.
    #[error(transparent)]
    Sign(#[from] evac_protocol::SignError),
    /// A snapshot did not split into parts.
    #[error(transparent)]
    Parts(#[from] evac_protocol::OverlayError),
}

/// Snapshots in the feed.
pub const STEPS: u64 = 8;
/// Minutes between snapshots.
pub const STEP_MIN: u64 = 5;

fn mix(x: u32) -> u32 {
    // A small integer hash (lowbias32): fates spread evenly over resident ids.
    let mut x = x ^ (x >> 16);
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// The feed for `town` named `id`, the order issued `STEPS * STEP_MIN` minutes before
/// `now_ms`, signed with `key`.
pub fn mid_evacuation(
    town: &Town,
    id: &TownId,
    key: &SecretKey,
    now_ms: u64,
) -> Result<Feed, SampleError> {
    let sign = |m: &dyn Fn(&SecretKey) -> Result<String, evac_protocol::SignError>| {
        m(key).map(String::into_bytes)
    };
    let mut feed = Feed::new();
    let digests = evac_protocol::CardDigestKey::derive(key);
    let households: Vec<RegistryHousehold> = town
        .households
        .iter()
        .map(|h| RegistryHousehold {
            id: HouseholdId(h.id),
            residents: h
                .members
                .iter()
                .map(|m| RegistryResident {
                    id: ResidentId(m.resident),
                    name: m.name.clone(),
                    needs_help: m.needs_help,
                    card_digests: m
                        .cards
                        .iter()
                        .map(|c| {
                            digests.digest(&CardRef {
                                issuer_key_id: c.issuer_key_id.clone(),
                                serial: c.serial.clone(),
                            })
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    feed.extend(registry_shards(
        id,
        key,
        1,
        digests.check_value(),
        households,
    )?);

    // The order: every household in a tsunami zone, to a tsunami shelter by id.
    let refuges: Vec<&evac_maps::Shelter> = town
        .shelters
        .iter()
        .filter(|s| s.suits(evac_maps::Hazard::Tsunami))
        .collect();
    let refuges = if refuges.is_empty() {
        town.shelters.iter().collect()
    } else {
        refuges
    };
    let start_ms = now_ms - STEPS * STEP_MIN * 60_000;
    let mut orders = Vec::new();
    let mut assigned = std::collections::HashMap::new();
    // Each household to a refuge drawn in proportion to capacity.
    let total: u64 = refuges.iter().map(|s| u64::from(s.capacity.max(1))).sum();
    for h in town.households_at_risk(evac_maps::Hazard::Tsunami) {
        let mut pick = u64::from(mix(h.id)) % total.max(1);
        let Some(s) = refuges.iter().find(|s| {
            let c = u64::from(s.capacity.max(1));
            if pick < c {
                true
            } else {
                pick -= c;
                false
            }
        }) else {
            break;
        };
        assigned.insert(h.id, s.id);
        orders.push(Order {
            household: HouseholdId(h.id),
            shelter: ShelterId(s.id),
            level: AlertLevel::Level4,
            hazard: Hazard::Tsunami,
            version: 1,
            needs_help: h.needs_help(),
        });
    }
    for chunk in orders.chunks(5_000) {
        let batch = OrderBatch {
            town: id.clone(),
            message_id: 1,
            kind: MessageKind::Alert,
            references: None,
            notice: 1,
            hazard: Hazard::Tsunami,
            issued: (start_ms / 1000) as i64,
            expires: (start_ms / 1000) as i64 + 6 * 3600,
            onset: None,
            drill: false,
            orders: chunk.to_vec(),
        };
        feed.push((
            Topic::Orders(id.clone()).to_string(),
            sign(&|k| k.sign(HQ_SIGNER, &batch)?.to_json())?,
        ));
    }

    // Residents' fates: 55 % arrive, 5 % arrive then leave, 3 % are found, the rest are
    // still missing at the end (a third of those overdue); arrivals spread over the steps.
    let first = town
        .households
        .iter()
        .flat_map(|h| h.members.iter().map(|m| m.resident))
        .min()
        .unwrap_or(1);
    let last = town
        .households
        .iter()
        .flat_map(|h| h.members.iter().map(|m| m.resident))
        .max()
        .unwrap_or(0);
    let mut household_of = vec![u32::MAX; (last + 1).saturating_sub(first) as usize];
    for h in &town.households {
        for m in &h.members {
            household_of[(m.resident - first) as usize] = h.id;
        }
    }
    for step in 1..=STEPS {
        let at_ms = start_ms + step * STEP_MIN * 60_000;
        let mut statuses = Vec::with_capacity(household_of.len());
        let mut present: std::collections::BTreeMap<u32, u32> = Default::default();
        let mut expected: std::collections::BTreeMap<u32, u32> = Default::default();
        let mut counts = StatusCounts::default();
        for (i, &h) in household_of.iter().enumerate() {
            let r = first + i as u32;
            let status = match assigned.get(&h) {
                None => ResidentStatus::NotOrdered,
                Some(&shelter) => {
                    let fate = mix(r) % 100;
                    let when = u64::from(mix(r ^ 0x5bd1) % STEPS as u32) + 1;
                    let shelter = ShelterId(shelter);
                    if fate < 63 && when <= step {
                        match fate {
                            // One in a hundred taps with a card that fails a check.
                            0..55 => ResidentStatus::Arrived {
                                shelter,
                                unverified: fate == 54,
                            },
                            55..60 => ResidentStatus::CheckedOut {
                                shelter,
                                unverified: false,
                            },
                            _ => ResidentStatus::Found,
                        }
                    } else if fate.is_multiple_of(3) && step >= STEPS / 2 {
                        ResidentStatus::Unaccounted
                    } else {
                        ResidentStatus::UnderOrder
                    }
                }
            };
            counts.residents += u32::from(h != u32::MAX);
            match status {
                ResidentStatus::NotOrdered => counts.not_ordered += 1,
                ResidentStatus::UnderOrder | ResidentStatus::Unaccounted => {
                    if status == ResidentStatus::UnderOrder {
                        counts.under_order += 1;
                    } else {
                        counts.unaccounted += 1;
                    }
                    if let Some(&s) = assigned.get(&h) {
                        *expected.entry(s).or_default() += 1;
                    }
                }
                ResidentStatus::Arrived {
                    shelter,
                    unverified,
                } => {
                    counts.arrived += 1;
                    counts.unverified += u32::from(unverified);
                    *present.entry(shelter.0).or_default() += 1;
                }
                ResidentStatus::CheckedOut { .. } => counts.checked_out += 1,
                ResidentStatus::Found => counts.found += 1,
            }
            statuses.push(status);
        }
        counts.flagged = 2;
        counts.unregistered = 1;
        let closed = town.shelters.get(1).map(|s| s.id);
        let nearly_full = refuges.iter().map(|s| s.id).find(|&id| Some(id) != closed);
        let shelters = town
            .shelters
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let here = present.get(&s.id).copied().unwrap_or(0);
                let expected = expected.get(&s.id).copied().unwrap_or(0);
                ShelterStatus {
                    shelter: ShelterId(s.id),
                    // The second shelter has been closed; the third's node is offline; the
                    // first refuge is reported nearly full.
                    open: i != 1,
                    capacity: if Some(s.id) == nearly_full {
                        (here * 100 / 85).max(s.capacity / 4).max(1)
                    } else {
                        s.capacity
                    },
                    present_day: here,
                    present_night: here - here / 5,
                    expected,
                    online: i != 2,
                    lag_ms: (i != 2).then_some(300 + 10 * i as u64),
                    pending: if i == 2 { 17 } else { 0 },
                    // The first shelter's card reader failed twice.
                    flagged: if i == 0 { 2 } else { 0 },
                    quiet_since_ms: None,
                    conflicts: 0,
                }
            })
            .collect();
        let snap = StatusSnapshot {
            town: id.clone(),
            seq: step,
            at_ms,
            counts,
            shelters,
            residents: PackedStatuses::pack(ResidentId(first), &statuses),
            answers: Vec::new(),
        };
        feed.extend(snapshot_messages(id, key, snap)?);
    }
    Ok(feed)
}
