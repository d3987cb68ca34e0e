//! The emulator's clock: wall time plus an offset that tests can advance.
//!
//! Every timestamp the emulator records comes from here, so advancing the clock moves timestamps and every
//! time-based rule together. Readings never go backwards, even if the host's wall clock does.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with millisecond precision, on the wire as epoch seconds with a fraction (`1790862132.45`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The timestamp `millis` milliseconds after the Unix epoch.
    pub fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// The timestamp `millis` later.
    pub fn plus_millis(self, millis: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(millis))
    }

    /// Epoch seconds, as the AWS JSON protocol carries timestamps.
    pub fn epoch_seconds(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// The timestamp as RFC 3339 text, for logs and messages.
    pub fn to_rfc3339(self) -> String {
        chrono::DateTime::from_timestamp_millis(self.0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.epoch_seconds())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        if !seconds.is_finite() {
            return Err(serde::de::Error::custom("timestamp must be a finite number of epoch seconds"));
        }
        // Out-of-range values saturate, which is what `as` does for floats.
        Ok(Timestamp((seconds * 1000.0).round() as i64))
    }
}

/// The clock of one emulator instance.
#[derive(Debug, Default)]
pub struct Clock {
    /// How far the emulator's time is ahead of wall time, in milliseconds.
    offset_ms: AtomicI64,
    /// The latest reading, so readings are monotonic.
    last_ms: AtomicI64,
}

impl Clock {
    /// A clock that starts at wall time.
    pub fn new() -> Clock {
        Clock::default()
    }

    /// The current emulator time.
    pub fn now(&self) -> Timestamp {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let candidate = wall.saturating_add(self.offset_ms.load(Ordering::Acquire));
        let previous = self.last_ms.fetch_max(candidate, Ordering::AcqRel);
        Timestamp(candidate.max(previous))
    }

    /// Moves the emulator's time forward by `millis` (negative values are ignored: time never runs backwards).
    pub fn advance(&self, millis: i64) {
        if millis > 0 {
            self.offset_ms.fetch_add(millis, Ordering::AcqRel);
        }
    }

    /// Returns the clock to wall time (used when the emulator is reset).
    pub fn reset(&self) {
        self.offset_ms.store(0, Ordering::Release);
        self.last_ms.store(0, Ordering::Release);
    }

    /// Puts the clock `millis` ahead of wall time (state loaded or imported); readings start over from there.
    pub fn set_offset(&self, millis: i64) {
        self.offset_ms.store(millis, Ordering::Release);
        self.last_ms.store(0, Ordering::Release);
    }

    /// How far the clock has been advanced in total, in milliseconds.
    pub fn offset_millis(&self) -> i64 {
        self.offset_ms.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_epoch_seconds_with_fraction() {
        let t = Timestamp::from_millis(1_790_862_132_450);
        assert_eq!(serde_json::to_string(&t).expect("serializes"), "1790862132.45");
        let back: Timestamp = serde_json::from_str("1790862132.45").expect("parses");
        assert_eq!(back, t);
        let whole: Timestamp = serde_json::from_str("1790862132").expect("parses integers");
        assert_eq!(whole.millis(), 1_790_862_132_000);
    }

    #[test]
    fn advancing_moves_time_forward_only() {
        let clock = Clock::new();
        let before = clock.now();
        clock.advance(3_600_000);
        let after = clock.now();
        assert!(after.millis() - before.millis() >= 3_600_000);
        clock.advance(-10_000_000);
        assert!(clock.now() >= after);
        assert_eq!(clock.offset_millis(), 3_600_000);
    }

    #[test]
    fn readings_are_monotonic() {
        let clock = Clock::new();
        let mut last = clock.now();
        for _ in 0..1000 {
            let now = clock.now();
            assert!(now >= last);
            last = now;
        }
    }

    #[test]
    fn rfc3339_rendering() {
        assert_eq!(Timestamp::from_millis(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
    }
}
