//! Time zones of DeploymentWindow rules: an IANA name (`Europe/Paris`), `UTC±HH:MM`, or a common abbreviation.
//!
//! Named zones come from jiff's bundled copy of the IANA database, which keeps its rules as compact binary data read
//! only when a zone is used; the cron search (croner) works on chrono, so [`Named`] lets chrono use a jiff zone.
//! (chrono-tz, the usual choice, compiles the whole database into 66,000 relocated records: 1.2 MiB of every
//! process's memory, used or not.)

use chrono::{FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone};

/// A DeploymentWindow time zone.
#[derive(Debug, Clone)]
pub enum Zone {
    Named(Named),
    Fixed(FixedOffset),
}

/// Standard-time offsets (hours) of the abbreviations AWS's examples use. UNCONFIRMED: AWS accepts "3–5 letter
/// abbreviations" without listing them; these are the usual North American, European and Asian ones.
const ABBREVIATIONS: &[(&str, i32)] = &[
    ("UTC", 0),
    ("GMT", 0),
    ("WET", 0),
    ("CET", 1),
    ("EET", 2),
    ("MSK", 3),
    ("IST", 5),
    ("JST", 9),
    ("KST", 9),
    ("AEST", 10),
    ("NZST", 12),
    ("HST", -10),
    ("AKST", -9),
    ("PST", -8),
    ("PDT", -7),
    ("MST", -7),
    ("MDT", -6),
    ("CST", -6),
    ("CDT", -5),
    ("EST", -5),
    ("EDT", -4),
];

/// The zone a rule's `TimeZone` names (UTC when it names none), or the error the rule fails with.
pub fn zone(name: Option<&str>) -> Result<Zone, String> {
    let name = name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or("UTC");
    let invalid = || format!("The time zone '{name}' is not valid.");
    if let Some(offset) = name.strip_prefix("UTC").filter(|o| !o.is_empty()) {
        let (sign, rest) = match offset.split_at_checked(1) {
            Some(("+", rest)) => (1, rest),
            Some(("-", rest)) => (-1, rest),
            _ => return Err(invalid()),
        };
        let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
        let seconds = match (hours.parse::<i32>(), minutes.parse::<i32>()) {
            (Ok(h), Ok(m)) if (0..=14).contains(&h) && (0..60).contains(&m) => sign * (h * 3600 + m * 60),
            _ => return Err(invalid()),
        };
        return FixedOffset::east_opt(seconds).map(Zone::Fixed).ok_or_else(invalid);
    }
    if let Ok(named) = jiff::tz::TimeZone::get(name) {
        return Ok(Zone::Named(Named(named)));
    }
    ABBREVIATIONS
        .iter()
        .find(|(abbreviation, _)| *abbreviation == name)
        .and_then(|(_, hours)| FixedOffset::east_opt(hours * 3600))
        .map(Zone::Fixed)
        .ok_or_else(invalid)
}

/// An IANA time zone, for chrono.
#[derive(Debug, Clone)]
pub struct Named(jiff::tz::TimeZone);

/// The offset of a [`Named`] zone at some instant; it keeps its zone, as chrono requires.
#[derive(Debug, Clone)]
pub struct NamedOffset {
    zone: Named,
    offset: FixedOffset,
}

impl Offset for NamedOffset {
    fn fix(&self) -> FixedOffset {
        self.offset
    }
}

impl std::fmt::Display for NamedOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.offset, f)
    }
}

impl Named {
    fn at(&self, offset: jiff::tz::Offset) -> NamedOffset {
        // jiff's offsets are within ±25:59:59 and chrono's within ±23:59:59; the tz database has none outside both.
        let fixed = FixedOffset::east_opt(offset.seconds()).unwrap_or_else(|| Offset::fix(&chrono::Utc));
        NamedOffset { zone: self.clone(), offset: fixed }
    }
}

impl TimeZone for Named {
    type Offset = NamedOffset;

    fn from_offset(offset: &NamedOffset) -> Named {
        offset.zone.clone()
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> LocalResult<NamedOffset> {
        match local.and_hms_opt(0, 0, 0) {
            Some(midnight) => self.offset_from_local_datetime(&midnight),
            None => LocalResult::None,
        }
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<NamedOffset> {
        use chrono::{Datelike, Timelike};
        use jiff::tz::AmbiguousOffset;
        let civil = i16::try_from(local.year()).ok().and_then(|year| {
            let narrow = |v: u32| i8::try_from(v).ok();
            let nanos = i32::try_from(local.nanosecond().min(999_999_999)).ok()?;
            jiff::civil::DateTime::new(
                year,
                narrow(local.month())?,
                narrow(local.day())?,
                narrow(local.hour())?,
                narrow(local.minute())?,
                narrow(local.second())?,
                nanos,
            )
            .ok()
        });
        let Some(civil) = civil else { return LocalResult::None };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => LocalResult::Single(self.at(offset)),
            AmbiguousOffset::Gap { .. } => LocalResult::None,
            AmbiguousOffset::Fold { before, after } => LocalResult::Ambiguous(self.at(before), self.at(after)),
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> NamedOffset {
        match utc.and_hms_opt(0, 0, 0) {
            Some(midnight) => self.offset_from_utc_datetime(&midnight),
            None => self.at(jiff::tz::Offset::UTC),
        }
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> NamedOffset {
        let instant = jiff::Timestamp::from_second(utc.and_utc().timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        self.at(self.0.to_offset(instant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Timelike, Utc};

    fn named(name: &str) -> Named {
        match zone(Some(name)) {
            Ok(Zone::Named(named)) => named,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn named_zones_follow_daylight_saving_time() {
        let paris = named("Europe/Paris");
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).single().expect("valid");
        let summer = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).single().expect("valid");
        assert_eq!(winter.with_timezone(&paris).hour(), 13);
        assert_eq!(summer.with_timezone(&paris).hour(), 14);
        // 02:30 on the last Sunday of March does not exist in Paris; 02:30 on the last Sunday of October twice.
        let gap = NaiveDate::from_ymd_opt(2026, 3, 29).and_then(|d| d.and_hms_opt(2, 30, 0)).expect("valid");
        assert!(matches!(paris.offset_from_local_datetime(&gap), LocalResult::None));
        let fold = NaiveDate::from_ymd_opt(2026, 10, 25).and_then(|d| d.and_hms_opt(2, 30, 0)).expect("valid");
        match paris.offset_from_local_datetime(&fold) {
            LocalResult::Ambiguous(early, late) => {
                assert_eq!((early.fix().local_minus_utc(), late.fix().local_minus_utc()), (7200, 3600));
            }
            other => panic!("{other:?}"),
        }
        let noon = NaiveDate::from_ymd_opt(2026, 7, 15).and_then(|d| d.and_hms_opt(12, 0, 0)).expect("valid");
        let local = paris.from_local_datetime(&noon).single().expect("one");
        assert_eq!(local.with_timezone(&Utc).hour(), 10);
    }

    #[test]
    fn zones_are_names_offsets_or_abbreviations() {
        // The offset in effect on a winter day.
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).single().expect("valid");
        let offset = |name| match zone(name).ok()? {
            Zone::Fixed(fixed) => Some(fixed.local_minus_utc()),
            Zone::Named(named) => Some(winter.with_timezone(&named).offset().fix().local_minus_utc()),
        };
        assert_eq!(offset(None), Some(0));
        assert_eq!(offset(Some("UTC+05:30")), Some(19_800));
        assert_eq!(offset(Some("UTC-3")), Some(-10_800));
        assert_eq!(offset(Some("PDT")), Some(-25_200));
        assert_eq!(offset(Some("America/New_York")), Some(-18_000));
        assert_eq!(offset(Some("Asia/Kolkata")), Some(19_800));
        for bad in ["UTC+15:00", "UTC*1", "UTC+", "UTC+1:60", "Mars/Olympus", "é"] {
            assert!(zone(Some(bad)).is_err(), "{bad}");
        }
    }
}
