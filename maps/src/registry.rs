//! What the registry keeps for families looking for their people (安否, issue 21): a date
//! of birth and the kana reading of a name. HQ alone uses these; they never go to a
//! shelter or on the air.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::AgeBand;

/// A calendar date (proleptic Gregorian), as a registry keeps a date of birth; written
/// `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BirthDate {
    year: u16,
    month: u8,
    day: u8,
}

/// The date the synthetic registry's age bands are counted on: a generated resident's
/// age on this day falls in their age band.
pub const REGISTRY_DATE: BirthDate = BirthDate {
    year: 2026,
    month: 4,
    day: 1,
};

/// A date that is not `YYYY-MM-DD` or not in the calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a date as YYYY-MM-DD between 1850 and 2200: {0:?}")]
pub struct BadDate(pub String);

impl BirthDate {
    /// The date, if it is in the calendar and between 1850 and 2200.
    pub fn new(year: u16, month: u8, day: u8) -> Option<BirthDate> {
        let ok = (1850..=2200).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        ok.then_some(BirthDate { year, month, day })
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01, if between 1850 and 2200.
    pub fn from_days_since_epoch(days: i64) -> Option<BirthDate> {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        BirthDate::new(
            u16::try_from(year).ok()?,
            u8::try_from(month).ok()?,
            u8::try_from(day).ok()?,
        )
    }

    /// The same day `years` earlier (28 February for 29 February in a common year), if
    /// after 1850.
    pub fn years_before(self, years: u32) -> Option<BirthDate> {
        let year = u16::try_from(u32::from(self.year).checked_sub(years)?).ok()?;
        BirthDate::new(
            year,
            self.month,
            self.day.min(days_in_month(year, self.month)),
        )
    }

    /// Age in whole years on `day`.
    pub fn age_on(self, day: BirthDate) -> u32 {
        let mut age = i32::from(day.year) - i32::from(self.year);
        if (day.month, day.day) < (self.month, self.day) {
            age -= 1;
        }
        age.max(0) as u32
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for BirthDate {
    type Err = BadDate;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadDate(s.chars().take(40).collect());
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Option<u16> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let (y, m, d) = (num(0..4), num(5..7), num(8..10));
        match (y, m, d) {
            (Some(y), Some(m), Some(d)) => BirthDate::new(y, m as u8, d as u8).ok_or_else(bad),
            _ => Err(bad()),
        }
    }
}

impl Serialize for BirthDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BirthDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl AgeBand {
    /// The band of an age in whole years.
    pub fn of_age(age: u32) -> AgeBand {
        match age {
            0..=14 => AgeBand::Child,
            15..=39 => AgeBand::Young,
            40..=64 => AgeBand::Middle,
            65..=74 => AgeBand::Senior,
            75..=84 => AgeBand::Elder,
            _ => AgeBand::Oldest,
        }
    }

    /// The youngest and oldest whole ages of the band (85+ counted up to 99).
    pub fn ages(self) -> (u32, u32) {
        match self {
            AgeBand::Child => (0, 14),
            AgeBand::Young => (15, 39),
            AgeBand::Middle => (40, 64),
            AgeBand::Senior => (65, 74),
            AgeBand::Elder => (75, 84),
            AgeBand::Oldest => (85, 99),
        }
    }
}

/// A kana name as typed, in the one form it is compared in: hiragana become katakana,
/// half-width katakana full-width (with their voiced marks joined), and spaces (ASCII and
/// ideographic), middle dots, equals signs and hyphens are dropped. Anything else is kept,
/// so a name typed in kanji or Latin letters matches no kana name.
///
/// ```
/// use evac_maps::normalize_kana;
/// assert_eq!(normalize_kana("さとう　かずこ"), normalize_kana("サトウ カズコ"));
/// assert_eq!(normalize_kana("ｸﾞｴﾝ ｳﾞｧﾝ･ｱﾝ"), "グエンヴァンアン");
/// ```
pub fn normalize_kana(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' | '\u{3000}' | '・' | '･' | '=' | '＝' | '-' | '‐' | '\t' => {}
            // Hiragana ぁ..ゖ and ゝゞ to katakana.
            '\u{3041}'..='\u{3096}' | '\u{309D}' | '\u{309E}' => {
                out.push(char::from_u32(c as u32 + 0x60).unwrap_or(c))
            }
            '\u{FF9E}' | '\u{FF9F}' => {
                let mark = if c == '\u{FF9E}' { 1 } else { 2 };
                if let Some(p) = out.pop() {
                    out.push(voiced(p, mark));
                }
            }
            '\u{FF66}'..='\u{FF9D}' => out.push(HALF[(c as u32 - 0xFF66) as usize]),
            _ => out.push(c),
        }
    }
    out
}

/// Half-width katakana ｦ (U+FF66) to ﾝ (U+FF9D), full width.
const HALF: [char; 56] = [
    'ヲ', 'ァ', 'ィ', 'ゥ', 'ェ', 'ォ', 'ャ', 'ュ', 'ョ', 'ッ', 'ー', 'ア', 'イ', 'ウ', 'エ', 'オ',
    'カ', 'キ', 'ク', 'ケ', 'コ', 'サ', 'シ', 'ス', 'セ', 'ソ', 'タ', 'チ', 'ツ', 'テ', 'ト', 'ナ',
    'ニ', 'ヌ', 'ネ', 'ノ', 'ハ', 'ヒ', 'フ', 'ヘ', 'ホ', 'マ', 'ミ', 'ム', 'メ', 'モ', 'ヤ', 'ユ',
    'ヨ', 'ラ', 'リ', 'ル', 'レ', 'ロ', 'ワ', 'ン',
];

/// A katakana with a voiced (1) or semi-voiced (2) mark joined, or unchanged.
fn voiced(c: char, mark: u32) -> char {
    let joined = match (c, mark) {
        ('ウ', 1) => Some('ヴ'),
        // In Unicode each of these is followed by its voiced form.
        (_, 1) if "カキクケコサシスセソタチツテトハヒフヘホ".contains(c) => {
            char::from_u32(c as u32 + 1)
        }
        (_, 2) if "ハヒフヘホ".contains(c) => char::from_u32(c as u32 + 2),
        _ => None,
    };
    joined.unwrap_or(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_print_and_count_days() {
        for s in ["1926-02-28", "2000-02-29", "2026-04-01", "1970-01-01"] {
            let d: BirthDate = s.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(d.to_string(), s);
            assert_eq!(
                BirthDate::from_days_since_epoch(d.days_since_epoch()),
                Some(d)
            );
        }
        assert_eq!(
            BirthDate::new(1970, 1, 1).map(|d| d.days_since_epoch()),
            Some(0)
        );
        for bad in [
            "1999-02-29",
            "2026-13-01",
            "2026-4-01",
            "20260401",
            "+026-04-01",
            "",
        ] {
            assert!(bad.parse::<BirthDate>().is_err(), "{bad}");
        }
        let d = BirthDate::new(1961, 4, 2).unwrap_or(REGISTRY_DATE);
        assert_eq!(d.age_on(REGISTRY_DATE), 64);
        let d = BirthDate::new(1961, 4, 1).unwrap_or(REGISTRY_DATE);
        assert_eq!(d.age_on(REGISTRY_DATE), 65);
    }

    #[test]
    fn kana_compares_whatever_way_it_was_typed() {
        let k = normalize_kana("サトウ カズコ");
        assert_eq!(k, "サトウカズコ");
        for typed in ["さとう かずこ", "ｻﾄｳ ｶｽﾞｺ", "サトウ　カズコ", "さとうかずこ"]
        {
            assert_eq!(normalize_kana(typed), k, "{typed}");
        }
        assert_eq!(normalize_kana("ﾀﾞｲｽｹ"), "ダイスケ");
        assert_eq!(normalize_kana("ﾊﾟﾋﾞﾌﾟﾍﾞﾎﾟ"), "パビプベポ");
        assert_eq!(normalize_kana("ﾃﾞﾄﾞﾂﾞ"), "デドヅ");
        assert_ne!(normalize_kana("佐藤 和子"), k);
    }
}
