//! Virtual and wall time as plain numbers: `Time` is microseconds since an epoch.
//!
//! The machines never read a clock; the driver passes `now` into every call. The simulator's
//! epoch is the start of the run; the real driver's is its start, with a UNIX offset added
//! only where text timestamps are written.

use core::fmt;
use core::ops::{Add, Sub};
use core::str::FromStr;

/// A point in time: microseconds since the driver's epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Time(pub u64);

/// A span of time in microseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Duration(pub u64);

impl Time {
    /// The epoch.
    pub const ZERO: Time = Time(0);
    /// A deadline that never comes.
    pub const NEVER: Time = Time(u64::MAX);

    /// Microseconds since the epoch.
    pub const fn micros(self) -> u64 {
        self.0
    }
    /// Seconds since the epoch, with a fraction (for CSV and reports).
    pub fn secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// The time `d` after `self`, saturating at [`Time::NEVER`].
    pub const fn plus(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d.0))
    }
    /// The span from `earlier` to `self`, zero if `earlier` is later.
    pub const fn since(self, earlier: Time) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);
    /// `n` microseconds.
    pub const fn from_micros(n: u64) -> Self {
        Duration(n)
    }
    /// `n` milliseconds.
    pub const fn from_millis(n: u64) -> Self {
        Duration(n.saturating_mul(1_000))
    }
    /// `n` seconds.
    pub const fn from_secs(n: u64) -> Self {
        Duration(n.saturating_mul(1_000_000))
    }
    /// The span in microseconds.
    pub const fn micros(self) -> u64 {
        self.0
    }
    /// The span in seconds, with a fraction.
    pub fn secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// `self * k`, saturating.
    pub const fn times(self, k: u64) -> Duration {
        Duration(self.0.saturating_mul(k))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        self.plus(d)
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, earlier: Time) -> Duration {
        self.since(earlier)
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, d: Duration) -> Duration {
        Duration(self.0.saturating_add(d.0))
    }
}

/// Writes seconds with up to six decimals, trailing zeros trimmed: `60.02`, `5`, `0.000001`.
fn write_secs(f: &mut fmt::Formatter<'_>, micros: u64) -> fmt::Result {
    let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
    if frac == 0 {
        return write!(f, "{secs}");
    }
    let digits = format!("{frac:06}");
    write!(f, "{secs}.{}", digits.trim_end_matches('0'))
}

impl fmt::Display for Time {
    /// Seconds since the epoch, e.g. `60.02`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_secs(f, self.0)
    }
}

impl fmt::Display for Duration {
    /// Human form that [`Duration::from_str`] reads back: `90s`, `20ms`, `1.5s`, `250us`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => write!(f, "0s"),
            us if us % 1_000_000 == 0 => write!(f, "{}s", us / 1_000_000),
            us if us < 1_000_000 && us % 1_000 == 0 => write!(f, "{}ms", us / 1_000),
            us if us < 1_000 => write!(f, "{us}us"),
            us => {
                write_secs(f, us)?;
                write!(f, "s")
            }
        }
    }
}

/// Why a duration did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationParseError(pub String);

impl fmt::Display for DurationParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationParseError {}

impl FromStr for Duration {
    type Err = DurationParseError;
    /// Reads `90s`, `5m`, `1h`, `20ms`, `250us`, `1.5s`; a bare number is seconds.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| DurationParseError(format!("bad duration {s:?}: {why}"));
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        if num.is_empty() {
            return Err(err("expected a number such as 90s, 5m or 20ms"));
        }
        let scale: u64 = match unit {
            "" | "s" => 1_000_000,
            "ms" => 1_000,
            "us" | "µs" => 1,
            "m" | "min" => 60_000_000,
            "h" => 3_600_000_000,
            other => {
                return Err(err(&format!(
                    "unknown unit {other:?} (use us, ms, s, m or h)"
                )));
            }
        };
        let micros = parse_scaled(num, scale).ok_or_else(|| err("not a number or too large"))?;
        Ok(Duration(micros))
    }
}

/// `num` (digits with an optional fraction) times `scale`, exactly, without floats.
fn parse_scaled(num: &str, scale: u64) -> Option<u64> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return None;
    }
    let int_part = if int.is_empty() {
        0
    } else {
        int.parse::<u64>().ok()?
    };
    let mut total = int_part.checked_mul(scale)?;
    let mut unit = scale;
    for c in frac.chars() {
        unit /= 10;
        let digit = u64::from(c.to_digit(10)?);
        total = total.checked_add(digit * unit)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!("90s".parse(), Ok(Duration::from_secs(90)));
        assert_eq!("5m".parse(), Ok(Duration::from_secs(300)));
        assert_eq!("20ms".parse(), Ok(Duration::from_millis(20)));
        assert_eq!("1.5s".parse(), Ok(Duration::from_millis(1500)));
        assert_eq!("13".parse(), Ok(Duration::from_secs(13)));
        assert_eq!("250us".parse(), Ok(Duration::from_micros(250)));
        assert!("".parse::<Duration>().is_err());
        assert!("5 parsecs".parse::<Duration>().is_err());
        assert!("1.2.3s".parse::<Duration>().is_err());
        assert!("99999999999999999999s".parse::<Duration>().is_err());
    }

    #[test]
    fn durations_display_in_a_form_that_parses_back() {
        for d in [0, 1, 999, 20_000, 1_500_000, 90_000_000, 123_456_789] {
            let d = Duration(d);
            assert_eq!(d.to_string().parse(), Ok(d), "{d}");
        }
    }

    #[test]
    fn times_print_as_trimmed_seconds() {
        assert_eq!(Time(60_020_000).to_string(), "60.02");
        assert_eq!(Time(5_000_000).to_string(), "5");
        assert_eq!(Time(1).to_string(), "0.000001");
    }
}
