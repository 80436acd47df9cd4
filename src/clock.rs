//! The one clock. Instants are stored as UTC seconds; `QUNFA_TIMEZONE`
//! converts what the API reads and writes and sets the day boundaries
//! (docs/vendor-api.md D-8, H-11).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};

/// Why a date or date-time from a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("not a date like 2012-03-02")]
    BadDate,
    #[error("not a date-time like 2012-07-31 12:00")]
    BadDateTime,
    #[error("this local time does not exist (daylight-saving gap)")]
    Gap,
}

/// The empty date-time the vendor's clients expect (Part G).
pub const NO_DATETIME: &str = "0000-00-00 00:00:00";
/// The empty date (H-14).
pub const NO_DATE: &str = "0000-00-00";

#[derive(Clone, Debug)]
pub struct Clock {
    tz: TimeZone,
    /// Seconds this process's clock runs ahead of the system's: zero but
    /// in tests that need a later day ([`Clock::advance_for_tests`]).
    ahead: Arc<AtomicI64>,
}

impl Clock {
    pub fn new(tz: TimeZone) -> Self {
        Clock {
            tz,
            ahead: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Now, in UTC seconds.
    pub fn now(&self) -> i64 {
        Timestamp::now().as_second() + self.ahead.load(Ordering::Relaxed)
    }

    /// Today's date in the configured zone.
    pub fn today(&self) -> Date {
        self.date_of(self.now())
    }

    /// Moves this clock (and every clone of it: the whole application's)
    /// on by `seconds`, for tests of what happens on a later day. Nothing
    /// in qunfa calls it, and no setting reaches it.
    pub fn advance_for_tests(&self, seconds: i64) {
        self.ahead.fetch_add(seconds, Ordering::Relaxed);
    }

    /// The local date an instant falls on.
    pub fn date_of(&self, unix: i64) -> Date {
        self.tz.to_datetime(ts(unix)).date()
    }

    /// `YYYY-MM-DD HH:MM:SS` in the configured zone.
    /// The local day of an instant, as the per-day reports key it (`YYYY-MM-DD`).
    pub fn day_of(&self, unix: i64) -> String {
        format_date(self.date_of(unix))
    }

    pub fn format_datetime(&self, unix: i64) -> String {
        self.tz
            .to_datetime(ts(unix))
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    /// RFC 3339 with the configured zone's offset (`2026-12-04T20:15:00+08:00`),
    /// as the JSON API writes times.
    pub fn format_rfc3339(&self, unix: i64) -> String {
        ts(unix)
            .to_zoned_datetime(self.tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    /// Like [`Self::format_datetime`], with the vendor's empty value for "never".
    pub fn format_opt_datetime(&self, unix: Option<i64>) -> String {
        unix.map_or_else(|| NO_DATETIME.to_string(), |u| self.format_datetime(u))
    }

    /// A local date-time (D-8) as a UTC instant: a gap is refused, a fold takes
    /// the earlier instant (H-11).
    pub fn parse_datetime(&self, s: &str) -> Result<i64, TimeError> {
        let dt = parse_local_datetime(s)?;
        self.local_to_unix(dt)
    }

    /// The instant a local date begins.
    pub fn start_of_day(&self, date: Date) -> i64 {
        let dt = date.to_datetime(jiff::civil::Time::midnight());
        // Midnight can fall in a gap in a few zones; the gap's end is the day's start.
        match self.tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Gap { after, .. } => after.to_timestamp(dt).map_or(0, |t| t.as_second()),
            _ => self.local_to_unix(dt).unwrap_or(0),
        }
    }

    fn local_to_unix(&self, dt: DateTime) -> Result<i64, TimeError> {
        let amb = self.tz.to_ambiguous_timestamp(dt);
        if let AmbiguousOffset::Gap { .. } = amb.offset() {
            return Err(TimeError::Gap);
        }
        amb.earlier()
            .map(|t| t.as_second())
            .map_err(|_| TimeError::BadDateTime)
    }
}

/// The text of the last time written, made again only when the time
/// changes: rows of a listing that were imported together share their
/// second, and formatting it in a zone is the dearest part of such a row.
#[derive(Default)]
pub struct LastTime {
    unix: Option<i64>,
    text: String,
}

impl LastTime {
    /// `format(unix)`, or its text of the previous call when `unix` is the same.
    pub fn text(&mut self, unix: i64, format: impl FnOnce(i64) -> String) -> &str {
        if self.unix != Some(unix) {
            self.text = format(unix);
            self.unix = Some(unix);
        }
        &self.text
    }
}

fn ts(unix: i64) -> Timestamp {
    Timestamp::from_second(unix).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `YYYY-MM-DD`, with one-digit month and day accepted, a real calendar date.
pub fn parse_date(s: &str) -> Result<Date, TimeError> {
    let mut parts = s.split('-');
    let (Some(y), Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TimeError::BadDate);
    };
    let num = |p: &str, min: usize, max: usize| -> Result<i16, TimeError> {
        if p.len() < min || p.len() > max || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TimeError::BadDate);
        }
        p.parse().map_err(|_| TimeError::BadDate)
    };
    let (y, m, d) = (num(y, 4, 4)?, num(m, 1, 2)?, num(d, 1, 2)?);
    Date::new(y, m as i8, d as i8).map_err(|_| TimeError::BadDate)
}

/// An RFC 3339 time with an offset (`Z` or `±HH:MM`) as UTC seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    s.trim().parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// `YYYY-M-D H:MM[:SS]`, separator a space or `T` (D-8).
pub fn parse_local_datetime(s: &str) -> Result<DateTime, TimeError> {
    let (date, time) = s.split_once([' ', 'T']).ok_or(TimeError::BadDateTime)?;
    let date = parse_date(date).map_err(|_| TimeError::BadDateTime)?;
    let fields: Vec<&str> = time.split(':').collect();
    let digits = |p: &str, min: usize, max: usize, limit: i8| -> Result<i8, TimeError> {
        if p.len() < min || p.len() > max || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TimeError::BadDateTime);
        }
        let v: i8 = p.parse().map_err(|_| TimeError::BadDateTime)?;
        if v > limit {
            Err(TimeError::BadDateTime)
        } else {
            Ok(v)
        }
    };
    let (h, mi, sec) = match fields.as_slice() {
        [h, m] => (digits(h, 1, 2, 23)?, digits(m, 2, 2, 59)?, 0),
        [h, m, sec] => (digits(h, 1, 2, 23)?, digits(m, 2, 2, 59)?, digits(sec, 2, 2, 59)?),
        _ => return Err(TimeError::BadDateTime),
    };
    Ok(date.to_datetime(jiff::civil::Time::new(h, mi, sec, 0).map_err(|_| TimeError::BadDateTime)?))
}

pub fn format_date(d: Date) -> String {
    d.strftime("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_time_is_formatted_again_only_when_it_changes() {
        let mut last = LastTime::default();
        let mut made = 0;
        let mut texts = Vec::new();
        for unix in [5, 5, 0, 0, 5] {
            let text = last.text(unix, |t| {
                made += 1;
                format!("t{t}")
            });
            texts.push(text.to_string());
        }
        assert_eq!(texts, ["t5", "t5", "t0", "t0", "t5"]);
        assert_eq!(made, 3);
    }

    fn shanghai() -> Clock {
        Clock::new(TimeZone::get("Asia/Shanghai").unwrap())
    }

    #[test]
    fn dates_accept_short_forms_and_refuse_impossible_ones() {
        assert_eq!(format_date(parse_date("2012-7-4").unwrap()), "2012-07-04");
        assert_eq!(parse_date("2012-02-30"), Err(TimeError::BadDate));
        assert_eq!(parse_date("12-02-03"), Err(TimeError::BadDate));
        assert_eq!(parse_date("2012-02-03-1"), Err(TimeError::BadDate));
        assert_eq!(parse_date("2012-+2-03"), Err(TimeError::BadDate));
    }

    #[test]
    fn datetimes_round_trip_through_the_zone() {
        let c = shanghai();
        let u = c.parse_datetime("2012-7-4 16:08").unwrap();
        assert_eq!(c.format_datetime(u), "2012-07-04 16:08:00");
        assert_eq!(u, 1341389280);
        assert_eq!(
            c.parse_datetime("2012-07-31T12:00:59")
                .map(|u| c.format_datetime(u))
                .unwrap(),
            "2012-07-31 12:00:59"
        );
        assert!(c.parse_datetime("2012-07-31 24:00").is_err());
        assert!(c.parse_datetime("2012-07-31 12:60").is_err());
        assert!(c.parse_datetime("2012-07-31").is_err());
    }

    #[test]
    fn gaps_are_refused_and_folds_take_the_earlier_instant() {
        let c = Clock::new(TimeZone::get("America/New_York").unwrap());
        assert_eq!(c.parse_datetime("2024-03-10 02:30"), Err(TimeError::Gap));
        let fold = c.parse_datetime("2024-11-03 01:30").unwrap();
        // 01:30 EDT (UTC-4) is the earlier of the two.
        assert_eq!(fold, 1730611800);
    }

    #[test]
    fn a_test_can_move_to_the_next_day() {
        let c = shanghai();
        let today = c.today();
        c.clone().advance_for_tests(86_400);
        assert_eq!(c.today(), today.tomorrow().unwrap());
    }

    #[test]
    fn never_is_all_zeros() {
        assert_eq!(shanghai().format_opt_datetime(None), NO_DATETIME);
    }
}
