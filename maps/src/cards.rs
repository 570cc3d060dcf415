//! Which card belongs to which resident, as `evac-maps cards` lists it: for making a
//! resident's virtual card or checking a reader at the door.

use std::fmt;

use crate::model::CardRef;
use crate::town::Town;

/// One card linked to a resident of a household.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardHolder<'a> {
    /// The resident.
    pub resident: u32,
    /// The resident's household.
    pub household: u32,
    /// The card (issuer key id and serial).
    pub card: &'a CardRef,
}

/// `resident household issuer_key_id serial`, the ids in hex.
impl fmt::Display for CardHolder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.resident,
            self.household,
            hex::encode(&self.card.issuer_key_id),
            hex::encode(&self.card.serial)
        )
    }
}

impl Town {
    /// The cards of the town, household by household and member by member, only those of
    /// `resident` and of `household` when given.
    pub fn card_holders(
        &self,
        resident: Option<u32>,
        household: Option<u32>,
    ) -> impl Iterator<Item = CardHolder<'_>> {
        self.households
            .iter()
            .filter(move |h| household.is_none_or(|x| x == h.id))
            .flat_map(move |h| {
                h.members
                    .iter()
                    .filter(move |m| resident.is_none_or(|r| r == m.resident))
                    .flat_map(move |m| {
                        m.cards.iter().map(move |card| CardHolder {
                            resident: m.resident,
                            household: h.id,
                            card,
                        })
                    })
            })
    }
}

#[cfg(test)]
mod tests {
    use crate::{GenerateParams, generate};

    #[test]
    fn cards_are_listed_by_resident_and_household() {
        let town = generate(&GenerateParams {
            households: 20,
            shelters: 3,
            seed: 1,
        });
        let all: Vec<_> = town.card_holders(None, None).collect();
        let expected: usize = town
            .households
            .iter()
            .flat_map(|h| &h.members)
            .map(|m| m.cards.len())
            .sum();
        assert_eq!(all.len(), expected);
        let first = all[0];
        let line = first.to_string();
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words[0], first.resident.to_string());
        assert_eq!(words[1], first.household.to_string());
        assert_eq!(words[3], hex::encode(&first.card.serial));
        assert!(
            town.card_holders(Some(first.resident), None)
                .all(|c| c.resident == first.resident)
        );
        assert!(
            town.card_holders(None, Some(first.household))
                .all(|c| c.household == first.household)
        );
        assert_eq!(town.card_holders(Some(u32::MAX), None).count(), 0);
    }
}
