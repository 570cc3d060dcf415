//! The stream's time table: a TDT (table id 0x70, as DVB and ISDB-T carry it) on PID 0x0014,
//! so a receiver judges expiry by the broadcast's time, not only by its own clock.
//!
//! The muxer sends a TDT once a second with the stream's UTC time (MJD and BCD, built with
//! `dvb-si`); the receiver reads TDT and TOT (0x73) alike. When inserting into a programme
//! that carries its own time table, the input's is kept and none is added.

use broadcast_common::time::MjdBcdDateTime;
use broadcast_common::{Parse, Serialize};
use dvb_si::tables::tdt::TdtSection;
use dvb_si::tables::tot::TotSection;

use crate::error::Error;

/// The PID of the time tables.
pub const TIME_PID: u16 = 0x0014;
/// TDT table id.
pub const TDT_TABLE_ID: u8 = 0x70;
/// TOT table id.
pub const TOT_TABLE_ID: u8 = 0x73;
/// How often the muxer sends the TDT.
pub const TDT_INTERVAL_MS: u64 = 1000;

/// The TDT section for Unix time `t` (seconds, UTC).
pub fn tdt_section(t: i64) -> Result<Vec<u8>, Error> {
    let d = time::OffsetDateTime::from_unix_timestamp(t)
        .map_err(|e| Error::Build(format!("time table: {t}: {e}")))?;
    let dt = MjdBcdDateTime {
        year: u16::try_from(d.year())
            .map_err(|_| Error::Build(format!("time table: year of {t}")))?,
        month: u8::from(d.month()),
        day: d.day(),
        hour: d.hour(),
        minute: d.minute(),
        second: d.second(),
    };
    let mut s = TdtSection::new([0; 5]);
    s.set_utc_time_decoded(dt)
        .map_err(|e| Error::Build(format!("time table: {e}")))?;
    s.try_to_bytes()
        .map_err(|e| Error::Build(format!("time table: {e}")))
}

fn unix_of(dt: MjdBcdDateTime) -> Option<i64> {
    let month = time::Month::try_from(dt.month).ok()?;
    let date = time::Date::from_calendar_date(i32::from(dt.year), month, dt.day).ok()?;
    let at = time::Time::from_hms(dt.hour, dt.minute, dt.second).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, at)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// The UTC time (Unix seconds) a TDT or TOT section carries; `None` for anything else or
/// a time that is not a real date.
pub fn read_time(section: &[u8]) -> Option<i64> {
    match *section.first()? {
        TDT_TABLE_ID => unix_of(TdtSection::parse(section).ok()?.utc_time_decoded()?),
        TOT_TABLE_ID => unix_of(TotSection::parse(section).ok()?.utc_time_decoded()?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_tdt_and_round_trip() {
        // 2026-11-24 05:00:00 UTC: MJD 61368 (0xEFB8), BCD 05 00 00.
        let t = 1_795_496_400;
        let s = tdt_section(t).unwrap();
        assert_eq!(hex::encode(&s), "707005efb8050000");
        assert_eq!(read_time(&s), Some(t));
        let mut bad = s.clone();
        bad[5] = 0x99;
        assert_eq!(read_time(&bad), None, "hour 99");
        assert_eq!(read_time(&[0x70, 0x70]), None);
        assert_eq!(read_time(&[0x42; 8]), None);
    }
}
