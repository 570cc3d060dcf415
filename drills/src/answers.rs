//! Pairs a shelter node's answers with the taps the drill sent it.
//!
//! Each tap line carries an id (`tap CARD --id 17`, `staff 3 31 --id 18`) and the node echoes
//! it in its answer (`{"result":"recorded",…,"id":"17"}`; see shelter/README.md). Pairing by
//! that id, not by the order of the lines, means a missing or extra answer line costs that one
//! tap, never every later resident of the shelter (and the lost/duplicated figures with them).

use std::collections::BTreeMap;

/// Taps sent and not yet answered, with what the drill needs to know about each (`T`).
pub struct Outstanding<T> {
    next: u64,
    /// By id: the shelter the tap went to, and what it was.
    by_id: BTreeMap<u64, (u32, T)>,
}

/// Why an answer line was not paired with a tap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unpaired {
    /// The answer carries no id (a line no tap of the drill asked for).
    #[error("an answer without an id")]
    NoId,
    /// No tap sent to this shelter is waiting under that id.
    #[error("no tap waiting under id {0}")]
    Unknown(String),
}

impl<T> Default for Outstanding<T> {
    fn default() -> Self {
        Outstanding {
            next: 1,
            by_id: BTreeMap::new(),
        }
    }
}

impl<T> Outstanding<T> {
    /// Remembers a tap for `shelter`; returns `line` with the id the answer will echo.
    pub fn send(&mut self, shelter: u32, line: &str, what: T) -> String {
        let id = self.next;
        self.next += 1;
        self.by_id.insert(id, (shelter, what));
        format!("{line} --id {id}")
    }

    /// The tap an answer line of `shelter` (parsed JSON) answers.
    pub fn answer(&mut self, shelter: u32, answer: &serde_json::Value) -> Result<T, Unpaired> {
        let text = answer["id"].as_str().ok_or(Unpaired::NoId)?;
        let unknown = || Unpaired::Unknown(text.to_owned());
        let id: u64 = text.parse().map_err(|_| unknown())?;
        match self.by_id.get(&id) {
            Some((to, _)) if *to == shelter => {}
            _ => return Err(unknown()),
        }
        self.by_id.remove(&id).map(|(_, t)| t).ok_or_else(unknown)
    }

    /// Whether every tap sent has its answer.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Taps still waiting for an answer: (shelter, id, what).
    pub fn waiting(&self) -> impl Iterator<Item = (u32, u64, &T)> {
        self.by_id.iter().map(|(id, (s, t))| (*s, *id, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The id a sent line carries, as the node reads it.
    fn id_of(line: &str) -> String {
        line.rsplit(' ').next().unwrap().to_owned()
    }

    #[test]
    fn a_missing_answer_line_shifts_nothing() {
        let mut o = Outstanding::default();
        let lines: Vec<String> = [101, 102, 103, 104]
            .iter()
            .map(|r| o.send(1, &format!("staff 10 {r}"), *r))
            .collect();
        let other = o.send(2, "staff 20 201", 201);
        // Shelter 1's answer to the second tap never comes; the others do, in order.
        for (line, resident) in [(&lines[0], 101), (&lines[2], 103), (&lines[3], 104)] {
            let a = json!({"result": "recorded", "seq": 1, "id": id_of(line)});
            assert_eq!(o.answer(1, &a), Ok(resident), "{line}");
        }
        assert!(!o.is_empty());
        assert_eq!(
            o.waiting().map(|(s, _, r)| (s, *r)).collect::<Vec<_>>(),
            [(1, 102), (2, 201)]
        );
        // Another shelter's id, an unknown id, no id: not paired, and nothing taken.
        let a = json!({"result": "recorded", "id": id_of(&other)});
        assert!(matches!(o.answer(1, &a), Err(Unpaired::Unknown(_))));
        let a = json!({"result": "recorded", "id": "999"});
        assert!(matches!(o.answer(2, &a), Err(Unpaired::Unknown(_))));
        assert_eq!(
            o.answer(2, &json!({"result": "recorded"})),
            Err(Unpaired::NoId)
        );
        assert_eq!(o.answer(2, &json!({"id": id_of(&other)})), Ok(201));
        assert_eq!(o.waiting().count(), 1);
    }
}
