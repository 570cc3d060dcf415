//! The stream's time table on PID 0x0014, so a receiver judges expiry by the broadcast's
//! time, not only by its own clock.
//!
//! ISDB-T carries **Japan Standard Time** in its time tables (ARIB STD-B10: the TDT's and
//! TOT's `JST_time`, MJD and BCD), where DVB carries UTC. Every TV in Japan sets its clock
//! from the TOT, and the stock-TV page (`bml`) judges freshness by that clock, so the muxer
//! sends a TOT once a second with the stream's time in JST (built with `dvb-si`, whose field
//! is named `utc_time`: the layout is the same, the zone is ARIB's). The receiver reads TDT
//! and TOT alike, as JST: so it also reads a real multiplex's own tables right. When
//! inserting into a programme that carries its own time table, the input's is kept and none
//! is added.

use broadcast_common::time::MjdBcdDateTime;
use broadcast_common::{Parse, Serialize};
use dvb_si::descriptors::DescriptorLoop;
use dvb_si::tables::tdt::TdtSection;
use dvb_si::tables::tot::TotSection;

use crate::error::Error;

/// The PID of the time tables.
pub const TIME_PID: u16 = 0x0014;
/// TDT table id.
pub const TDT_TABLE_ID: u8 = 0x70;
/// TOT table id.
pub const TOT_TABLE_ID: u8 = 0x73;
/// How often the muxer sends the time table.
pub const TDT_INTERVAL_MS: u64 = 1000;
/// Japan Standard Time, UTC+9, in seconds: the zone of ISDB-T's time tables.
pub const JST_OFFSET_S: i64 = 9 * 3600;

/// Unix time `t` as the MJD/BCD date and time in JST.
fn jst(t: i64) -> Result<MjdBcdDateTime, Error> {
    let d = time::OffsetDateTime::from_unix_timestamp(t + JST_OFFSET_S)
        .map_err(|e| Error::Build(format!("time table: {t}: {e}")))?;
    Ok(MjdBcdDateTime {
        year: u16::try_from(d.year())
            .map_err(|_| Error::Build(format!("time table: year of {t}")))?,
        month: u8::from(d.month()),
        day: d.day(),
        hour: d.hour(),
        minute: d.minute(),
        second: d.second(),
    })
}

/// The TDT section for Unix time `t` (seconds), carrying it in JST.
pub fn tdt_section(t: i64) -> Result<Vec<u8>, Error> {
    let mut s = TdtSection::new([0; 5]);
    s.set_utc_time_decoded(jst(t)?)
        .map_err(|e| Error::Build(format!("time table: {e}")))?;
    s.try_to_bytes()
        .map_err(|e| Error::Build(format!("time table: {e}")))
}

/// The TOT section for Unix time `t` (seconds), carrying it in JST, with no descriptor: what
/// the muxer sends, and what TVs set their clocks from.
pub fn tot_section(t: i64) -> Result<Vec<u8>, Error> {
    let mut s = TotSection::new([0; 5], DescriptorLoop::default());
    s.set_utc_time_decoded(jst(t)?)
        .map_err(|e| Error::Build(format!("time table: {e}")))?;
    s.try_to_bytes()
        .map_err(|e| Error::Build(format!("time table: {e}")))
}

/// Unix time of a JST date and time.
fn unix_of(dt: MjdBcdDateTime) -> Option<i64> {
    let month = time::Month::try_from(dt.month).ok()?;
    let date = time::Date::from_calendar_date(i32::from(dt.year), month, dt.day).ok()?;
    let at = time::Time::from_hms(dt.hour, dt.minute, dt.second).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, at)
            .assume_utc()
            .unix_timestamp()
            - JST_OFFSET_S,
    )
}

/// The time (Unix seconds) a TDT or TOT section carries in JST; `None` for anything else or
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
        // 2026-11-24 05:00:00 UTC is 14:00:00 JST: MJD 61368 (0xEFB8), BCD 14 00 00.
        let t = 1_795_496_400;
        let s = tdt_section(t).unwrap();
        assert_eq!(hex::encode(&s), "707005efb8140000");
        assert_eq!(read_time(&s), Some(t));
        let mut bad = s.clone();
        bad[5] = 0x99;
        assert_eq!(read_time(&bad), None, "hour 99");
        assert_eq!(read_time(&[0x70, 0x70]), None);
        assert_eq!(read_time(&[0x42; 8]), None);
    }

    #[test]
    fn the_tot_carries_jst_as_arib_and_every_tv_read_it() {
        // 2026-11-24 20:30:00 UTC is 2026-11-25 05:30:00 JST: the date moves on too.
        let t = 1_795_552_200;
        let s = tot_section(t).unwrap();
        assert_eq!(
            &hex::encode(&s)[..16],
            "73700befb9053000",
            "{}",
            hex::encode(&s)
        );
        assert_eq!(read_time(&s), Some(t));
        // A reader we did not write: dvb-si parses it, CRC and all.
        let tot = TotSection::parse(&s).unwrap();
        let d = tot.utc_time_decoded().unwrap();
        assert_eq!((d.day, d.hour, d.minute), (25, 5, 30));
    }
}
