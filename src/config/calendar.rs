//! Schedule windows (`[schedule]`): which local times a service may run at,
//! and the next local time that changes that. Pure date arithmetic on
//! broken-down local times; the only contact with the time zone is
//! [`local_time`] and [`next_edge_unix`], through localtime_r.
//!
//! A window opens at `start-time` on each listed week day and closes at
//! `stop-time`. A stop at or before the start (`22:00` to `06:00`, or equal
//! times) closes on the next day: the window belongs to the day it opens,
//! so `week-days = "fri"` with 22:00-06:00 runs Friday night into Saturday.
//! A window is never empty and at most 24 hours long.

use super::{Entry, Problem, Value};
use std::fmt;

const DAY: i64 = 86_400;
const ALL_DAYS: u8 = 0x7f;
/// Monday first, as the bits of [`Schedule::week_days`].
const DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// When a service may run: 12 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Seconds after local midnight, `0..86400`.
    pub start: u32,
    /// Seconds after local midnight, `1..=86400`; at or before `start`
    /// means on the next day.
    pub stop: u32,
    /// Bit 0 Monday ... bit 6 Sunday: the days a window opens on.
    pub week_days: u8,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            start: 0,
            stop: DAY as u32,
            week_days: ALL_DAYS,
        }
    }
}

/// A local date and time of day, as the wall clock shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime {
    pub year: i32,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
    /// Seconds after midnight, `0..86400`.
    pub secs: u32,
}

/// The next change of a schedule's state, and when (local time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// A start, else a stop.
    pub start: bool,
    pub at: LocalTime,
}

impl LocalTime {
    /// Days since 1970-01-01 (proleptic Gregorian calendar).
    pub fn days(&self) -> i64 {
        // Howard Hinnant's days_from_civil: years start in March, so the
        // leap day is the last day of its year.
        let month = i64::from(self.month);
        let year = i64::from(self.year) - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The inverse of [`LocalTime::days`], at `secs` into that day.
    pub fn from_days(days: i64, secs: u32) -> LocalTime {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = (shifted_month + 2) % 12 + 1;
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        LocalTime {
            year: year as i32,
            month: month as u8,
            day: day as u8,
            secs,
        }
    }

    /// Seconds since 1970-01-01 00:00 of the wall clock: a total order of
    /// local times, which is not a UNIX time.
    fn stamp(&self) -> i64 {
        self.days() * DAY + i64::from(self.secs)
    }

    fn from_stamp(stamp: i64) -> LocalTime {
        LocalTime::from_days(stamp.div_euclid(DAY), stamp.rem_euclid(DAY) as u32)
    }
}

/// `2026-12-03 08:00`, seconds shown only when there are some.
impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = (self.year, self.month, self.day);
        let (h, m, s) = (self.secs / 3600, self.secs / 60 % 60, self.secs % 60);
        write!(f, "{year:04}-{month:02}-{day:02} {h:02}:{m:02}")?;
        if s != 0 {
            write!(f, ":{s:02}")?;
        }
        Ok(())
    }
}

/// `next start 2026-12-03 08:00`, as `going status` words it.
impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.start { "start" } else { "stop" };
        write!(f, "next {kind} {}", self.at)
    }
}

impl Schedule {
    /// The schedule of a file's `schedule.*` entries: `None` without any.
    /// Each problem's message starts with its key, for `FILE:LINE: `.
    pub fn from_entries(entries: &[Entry]) -> Result<Option<Schedule>, Vec<Problem>> {
        let mut schedule = Schedule::default();
        let mut any = false;
        let mut problems = Vec::new();
        for entry in entries {
            let Some(key) = entry.key.strip_prefix("schedule.") else {
                continue;
            };
            any = true;
            let read = match key {
                "start-time" => time_value(&entry.value, false).map(|t| schedule.start = t),
                "stop-time" => time_value(&entry.value, true).map(|t| schedule.stop = t),
                "week-days" => week_days_value(&entry.value).map(|d| schedule.week_days = d),
                _ => Err("unknown key: a schedule has start-time, stop-time and week-days".into()),
            };
            if let Err(why) = read {
                problems.push(Problem::new(entry.line, format!("{}: {why}", entry.key)));
            }
        }
        problems
            .is_empty()
            .then_some(any.then_some(schedule))
            .ok_or(problems)
    }

    /// Seconds a window lasts: `1..=86400`.
    fn length(&self) -> i64 {
        (i64::from(self.stop) - i64::from(self.start) - 1).rem_euclid(DAY) + 1
    }

    fn opens_on(&self, days: i64) -> bool {
        // 1970-01-01 was a Thursday.
        self.week_days & (1 << (days + 3).rem_euclid(7)) != 0
    }

    fn in_window_at(&self, stamp: i64) -> bool {
        let today = stamp.div_euclid(DAY);
        // A window is at most a day long: only today's and yesterday's
        // can cover now.
        [today - 1, today].into_iter().any(|day| {
            let open = day * DAY + i64::from(self.start);
            self.opens_on(day) && open <= stamp && stamp < open + self.length()
        })
    }

    /// Whether the service may run at `now`: a window includes its start
    /// and excludes its stop.
    pub fn in_window(&self, now: LocalTime) -> bool {
        self.in_window_at(now.stamp())
    }

    /// The first local time after `now` at which [`Schedule::in_window`]
    /// changes; `None` for a schedule that never changes (every day, all
    /// day). Windows that touch (a 24-hour window on two days in a row)
    /// make one, with no stop between them.
    pub fn next_edge(&self, now: LocalTime) -> Option<Edge> {
        let now = now.stamp();
        let today = now.div_euclid(DAY);
        let inside = self.in_window_at(now);
        // Every edge within the next 8 days, in order: the state changes
        // within a week unless it never does.
        let mut edges = [0i64; 20];
        for (slot, day) in edges.chunks_exact_mut(2).zip(today - 1..) {
            let open = day * DAY + i64::from(self.start);
            slot.copy_from_slice(&[open, open + self.length()]);
        }
        crate::util::sort(&mut edges);
        let at = edges
            .into_iter()
            .find(|&edge| edge > now && self.in_window_at(edge) != inside)?;
        Some(Edge {
            start: !inside,
            at: LocalTime::from_stamp(at),
        })
    }
}

/// `"08:00:00"` or `"08:00"`, to seconds after midnight; `24:00` only as
/// an end. A stop at midnight is stored as 86400, the end of the day.
fn time_value(value: &Value, end: bool) -> Result<u32, String> {
    let text = match value {
        Value::Str(text) | Value::Text(text) => text.trim(),
        Value::Datetime(_) => return Err("write the time as a string: \"08:00:00\"".into()),
        other => {
            return Err(format!(
                "expected a time \"HH:MM:SS\", not {}",
                other.type_name()
            ));
        }
    };
    let secs = parse_time(text).ok_or_else(|| format!("bad time {text:?}: expected HH:MM:SS"))?;
    match secs {
        0 if end => Ok(DAY as u32),
        86_400 if !end => Err(format!("bad time {text:?}: a start is before 24:00")),
        secs => Ok(secs),
    }
}

fn parse_time(text: &str) -> Option<u32> {
    let mut fields = text.split(':');
    let number = |field: Option<&str>, digits: std::ops::RangeInclusive<usize>, max: u32| {
        field
            .filter(|f| digits.contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|f| f.parse::<u32>().ok())
            .filter(|&n| n <= max)
    };
    let hours = number(fields.next(), 1..=2, 24)?;
    let minutes = number(fields.next(), 2..=2, 59)?;
    let seconds = match fields.next() {
        None => 0,
        seconds => number(seconds, 2..=2, 59)?,
    };
    let secs = hours * 3600 + minutes * 60 + seconds;
    (fields.next().is_none() && secs <= 86_400).then_some(secs)
}

/// `"all"`, `"mon-fri"`, `"sat,sun"`, `["mon", "wed"]`: days by their
/// names or first three letters, any case; a range wraps past Sunday
/// (`"fri-mon"` is Friday to Monday).
fn week_days_value(value: &Value) -> Result<u8, String> {
    let items = match value {
        Value::List(items) => items.as_slice(),
        one => std::slice::from_ref(one),
    };
    let mut days = 0u8;
    for item in items {
        match item {
            Value::Str(text) | Value::Text(text) => days |= week_days_text(text)?,
            other => return Err(format!("expected day names, not {}", other.type_name())),
        }
    }
    if days == 0 {
        return Err("no week day: use \"all\", \"mon-fri\" or [\"mon\", \"wed\"]".into());
    }
    Ok(days)
}

fn week_days_text(text: &str) -> Result<u8, String> {
    let mut days = 0u8;
    for word in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if word.eq_ignore_ascii_case("all") {
            days |= ALL_DAYS;
            continue;
        }
        let (first, last) = word.split_once('-').unwrap_or((word, word));
        let (first, last) = (day_number(first)?, day_number(last)?);
        for step in 0..=(last + 7 - first) % 7 {
            days |= 1 << ((first + step) % 7);
        }
    }
    Ok(days)
}

fn day_number(word: &str) -> Result<u32, String> {
    let word = word.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|name| *name == word || word.len() == 3 && name.starts_with(&word))
        .map(|at| at as u32)
        .ok_or_else(|| format!("bad week day {word:?}: use mon, tue, wed, thu, fri, sat or sun"))
}

/// The local time of a UNIX time, in the zone of TZ or /etc/localtime.
pub fn local_time(unix: i64) -> Option<LocalTime> {
    // The libc crate flags musl's time_t as due to change (to 64 bits on
    // 32-bit targets); on 64-bit ones it is i64 already.
    #[allow(deprecated)]
    let time = unix as libc::time_t;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::uninit();
    // SAFETY: both pointers are valid for the call; localtime_r fills `tm`
    // whenever it returns non-null. nix has no wrapper for it.
    let filled = unsafe { libc::localtime_r(&time, tm.as_mut_ptr()) };
    if filled.is_null() {
        return None;
    }
    // SAFETY: localtime_r succeeded, so it wrote every field.
    let tm = unsafe { tm.assume_init() };
    // A leap second (tm_sec 60) counts as the second before it.
    let secs = tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec.min(59);
    Some(LocalTime {
        year: tm.tm_year.checked_add(1900)?,
        month: u8::try_from(tm.tm_mon + 1).ok()?,
        day: u8::try_from(tm.tm_mday).ok()?,
        secs: u32::try_from(secs).ok().filter(|&s| s < DAY as u32)?,
    })
}

unsafe extern "C" {
    // POSIX; the libc crate declares it for Windows only.
    fn tzset();
}

/// Reads TZ and /etc/localtime again: glibc's localtime_r reads them
/// once, so a changed zone is seen only after this (musl's reads TZ at
/// each call).
pub fn reload_zone() {
    // SAFETY: tzset takes nothing and cannot fail; going has one thread,
    // so nothing reads the zone while it changes.
    unsafe { tzset() }
}

/// The next edge of `schedule` after the UNIX time `now`, as a UNIX time.
pub fn next_edge_unix(schedule: &Schedule, now: i64) -> Option<(Edge, i64)> {
    let edge = schedule.next_edge(local_time(now)?)?;
    let at = first_instant(local_time, edge.at, now)?;
    Some((edge, at))
}

/// The UNIX time at which the local wall clock first shows `local` (the
/// end of the gap for a time a DST change skips); `None` out of range.
pub fn unix_of(local: LocalTime) -> Option<i64> {
    // Every zone's offset is within a day of UTC.
    first_instant(local_time, local, local.stamp().checked_sub(2 * DAY)?)
}

/// The first UNIX time after `after` at which the wall clock of `zone`
/// shows `target` or later: a time the clock skips (a DST gap) gives the
/// end of the gap, one it shows twice gives the first.
fn first_instant(
    zone: impl Fn(i64) -> Option<LocalTime>,
    target: LocalTime,
    after: i64,
) -> Option<i64> {
    let target = target.stamp();
    let reached = |t: i64| zone(t).map(|local| local.stamp() >= target);
    let mut before = after.checked_add(1)?;
    if reached(before)? {
        return Some(before);
    }
    // Step by what the clock still lacks: with no change of offset on the
    // way, the step lands on `target`. A day at most, so that at most one
    // change of offset lies within a step.
    for _ in 0..64 {
        let shown = zone(before)?.stamp();
        let mut past = before.checked_add((target - shown).clamp(1, DAY))?;
        if reached(past)? {
            // The clock jumped forward within the step: the first instant
            // is where it did, or after.
            while past - before > 1 {
                let middle = before + (past - before) / 2;
                if reached(middle)? {
                    past = middle;
                } else {
                    before = middle;
                }
            }
            return Some(past);
        }
        before = past;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(year: i32, month: u8, day: u8, hms: &str) -> LocalTime {
        LocalTime {
            year,
            month,
            day,
            secs: parse_time(hms).unwrap(),
        }
    }

    fn schedule(start: &str, stop: &str, days: &str) -> Schedule {
        Schedule {
            start: time_value(&Value::Str(start.into()), false).unwrap(),
            stop: time_value(&Value::Str(stop.into()), true).unwrap(),
            week_days: week_days_value(&Value::Str(days.into())).unwrap(),
        }
    }

    const START: bool = true;
    const STOP: bool = false;

    fn edge(start: bool, at: LocalTime) -> Option<Edge> {
        Some(Edge { start, at })
    }

    /// The next edge as status shows it.
    fn next(schedule: &Schedule, now: LocalTime) -> String {
        schedule
            .next_edge(now)
            .map_or("never".into(), |e| e.to_string())
    }

    /// `"2026-12-03 08:00"` or with seconds.
    fn local(text: &str) -> LocalTime {
        let (date, time) = text.split_once(' ').unwrap();
        let mut ymd = date.split('-').map(|n| n.parse::<i32>().unwrap());
        let mut field = || ymd.next().unwrap();
        let (year, month, day) = (field(), field() as u8, field() as u8);
        at(year, month, day, time)
    }

    /// Whether each time is in a window, and the next edge from it.
    fn walk(schedule: &Schedule, cases: &[(&str, bool, &str)]) {
        for &(now, inside, edge) in cases {
            let now = local(now);
            assert_eq!(schedule.in_window(now), inside, "{schedule:?} at {now}");
            assert_eq!(
                next(schedule, now),
                format!("next {edge}"),
                "{schedule:?} at {now}"
            );
        }
    }

    fn entry(key: &str, line: usize, value: Value) -> Entry {
        Entry {
            key: key.into(),
            line,
            value,
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(at(1970, 1, 1, "00:00").days(), 0);
        assert_eq!(at(2000, 3, 1, "00:00").days(), 11_017);
        assert_eq!(at(1969, 12, 31, "00:00").days(), -1);
        for days in -800_000..800_000 {
            let local = LocalTime::from_days(days, 0);
            assert_eq!(local.days(), days, "{local:?}");
        }
        // 2026-12-03 is a Thursday, 2024-02-29 a Thursday too.
        let weekday = |t: LocalTime| {
            let on = |day: u32| Schedule {
                week_days: 1 << day,
                ..Schedule::default()
            };
            (0..7).find(|&day| on(day).opens_on(t.days()))
        };
        assert_eq!(weekday(at(2026, 12, 3, "08:00")), Some(3));
        assert_eq!(weekday(at(2024, 2, 29, "08:00")), Some(3));
        assert_eq!(weekday(at(2026, 12, 6, "08:00")), Some(6));
        assert_eq!(weekday(at(2026, 12, 7, "08:00")), Some(0));
    }

    #[test]
    fn times_parse_with_or_without_seconds() {
        assert_eq!(parse_time("08:00:00"), Some(8 * 3600));
        assert_eq!(parse_time("08:00"), Some(8 * 3600));
        assert_eq!(parse_time("8:05"), Some(8 * 3600 + 300));
        assert_eq!(parse_time("23:59:59"), Some(86_399));
        assert_eq!(parse_time("24:00"), Some(86_400));
        for bad in [
            "",
            "8",
            "08:0",
            "08:60",
            "08:00:60",
            "24:00:01",
            "25:00",
            "08:00:00:00",
            "-1:00",
            "08:00 ",
            "+8:00",
            "008:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
        let start = |v: Value| time_value(&v, false);
        assert_eq!(start(Value::Str(" 08:00 ".into())), Ok(28_800));
        assert!(
            start(Value::Str("24:00".into()))
                .unwrap_err()
                .contains("before 24:00")
        );
        assert_eq!(time_value(&Value::Str("24:00".into()), true), Ok(86_400));
        assert_eq!(time_value(&Value::Str("00:00".into()), true), Ok(86_400));
        assert!(
            start(Value::Datetime("08:00:00".into()))
                .unwrap_err()
                .contains("as a string")
        );
        assert!(start(Value::Int(8)).unwrap_err().contains("not integer"));
    }

    #[test]
    fn week_days_in_every_form() {
        let days = |v: Value| week_days_value(&v);
        let s = |t: &str| days(Value::Str(t.into()));
        assert_eq!(s("all"), Ok(0x7f));
        assert_eq!(s("ALL"), Ok(0x7f));
        assert_eq!(s("mon-fri"), Ok(0b001_1111));
        assert_eq!(s("Monday-Friday"), Ok(0b001_1111));
        assert_eq!(s("sat,sun"), Ok(0b110_0000));
        assert_eq!(s("sat sun"), Ok(0b110_0000));
        assert_eq!(s("fri-mon"), Ok(0b111_0001));
        assert_eq!(s("sun-mon"), Ok(0b100_0001));
        assert_eq!(s("wed-wed"), Ok(0b000_0100));
        assert_eq!(s("wed"), Ok(0b000_0100));
        let list = Value::List(vec![Value::Str("mon".into()), Value::Str("wed".into())]);
        assert_eq!(days(list), Ok(0b000_0101));
        assert_eq!(days(Value::Text("mon-wed".into())), Ok(0b000_0111));
        for bad in [
            "",
            "mo",
            "mond",
            "funday",
            "mon-",
            "-fri",
            "mon-fri-sat",
            "moon",
        ] {
            assert!(s(bad).is_err(), "{bad:?}");
        }
        assert!(s("").unwrap_err().contains("no week day"));
        assert!(s("mon-xyz").unwrap_err().contains("bad week day \"xyz\""));
        assert!(days(Value::List(vec![])).is_err());
        assert!(
            days(Value::List(vec![Value::Int(1)]))
                .unwrap_err()
                .contains("integer")
        );
        assert!(days(Value::Bool(true)).is_err());
    }

    #[test]
    fn entries_make_a_schedule_or_say_what_is_wrong() {
        assert_eq!(
            Schedule::from_entries(&[entry("cmd", 1, Value::Int(1))]),
            Ok(None)
        );
        let entries = [
            entry("cmd", 1, Value::Str("x".into())),
            entry("schedule.start-time", 3, Value::Str("08:00:00".into())),
            entry("schedule.stop-time", 4, Value::Str("18:00".into())),
            entry("schedule.week-days", 5, Value::Str("mon-fri".into())),
        ];
        let expected = Schedule {
            start: 8 * 3600,
            stop: 18 * 3600,
            week_days: 0x1f,
        };
        assert_eq!(Schedule::from_entries(&entries), Ok(Some(expected)));
        let only_days = [entry("schedule.week-days", 2, Value::Str("sun".into()))];
        let sundays = Schedule {
            week_days: 0x40,
            ..Schedule::default()
        };
        assert_eq!(Schedule::from_entries(&only_days), Ok(Some(sundays)));
        let bad = [
            entry("schedule.start-time", 3, Value::Str("8h".into())),
            entry("schedule.stop", 4, Value::Str("18:00".into())),
            entry("schedule.week-days", 5, Value::Str("mon-fry".into())),
        ];
        let problems = Schedule::from_entries(&bad).unwrap_err();
        let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 4, 5]);
        assert_eq!(
            problems[0].message,
            "schedule.start-time: bad time \"8h\": expected HH:MM:SS"
        );
        assert!(
            problems[1]
                .message
                .starts_with("schedule.stop: unknown key")
        );
        assert!(
            problems[2]
                .message
                .starts_with("schedule.week-days: bad week day \"fry\"")
        );
    }

    #[test]
    fn a_day_window() {
        // 2026-12-03 is a Thursday.
        walk(
            &schedule("08:00", "18:00", "mon-fri"),
            &[
                ("2026-12-03 07:00", false, "start 2026-12-03 08:00"),
                ("2026-12-03 07:59:59", false, "start 2026-12-03 08:00"),
                ("2026-12-03 08:00", true, "stop 2026-12-03 18:00"),
                ("2026-12-03 17:59:59", true, "stop 2026-12-03 18:00"),
                ("2026-12-03 18:00", false, "start 2026-12-04 08:00"),
                // Friday evening and Saturday: the next start is Monday.
                ("2026-12-04 18:30", false, "start 2026-12-07 08:00"),
                ("2026-12-05 12:00", false, "start 2026-12-07 08:00"),
            ],
        );
    }

    #[test]
    fn a_week_day_that_is_not_today() {
        walk(
            &schedule("10:00", "11:00", "wed"),
            &[
                // Thursday: the next Wednesday is six days on, across a year.
                ("2026-12-31 10:30", false, "start 2027-01-06 10:00"),
                // Wednesday after its window: a week on.
                ("2026-12-02 11:00", false, "start 2026-12-09 10:00"),
                ("2026-12-02 10:59:59", true, "stop 2026-12-02 11:00"),
            ],
        );
    }

    #[test]
    fn a_window_over_midnight_belongs_to_its_first_day() {
        // Friday 2026-12-04 22:00 to Saturday 06:00.
        walk(
            &schedule("22:00", "06:00", "fri"),
            &[
                ("2026-12-04 05:00", false, "start 2026-12-04 22:00"),
                ("2026-12-04 22:00", true, "stop 2026-12-05 06:00"),
                ("2026-12-04 23:00", true, "stop 2026-12-05 06:00"),
                ("2026-12-05 00:00", true, "stop 2026-12-05 06:00"),
                ("2026-12-05 05:59:59", true, "stop 2026-12-05 06:00"),
                ("2026-12-05 06:00", false, "start 2026-12-11 22:00"),
                ("2026-12-05 22:00", false, "start 2026-12-11 22:00"),
            ],
        );
        // Sunday's night runs into Monday; Monday's own does not start.
        walk(
            &schedule("23:00", "01:00", "sun"),
            &[
                ("2026-12-07 00:30", true, "stop 2026-12-07 01:00"),
                ("2026-12-07 23:30", false, "start 2026-12-13 23:00"),
                ("2026-12-13 23:00", true, "stop 2026-12-14 01:00"),
            ],
        );
    }

    #[test]
    fn windows_at_midnight() {
        walk(
            &schedule("00:00", "01:00", "all"),
            &[
                ("2026-12-31 00:00", true, "stop 2026-12-31 01:00"),
                ("2026-12-31 23:59:59", false, "start 2027-01-01 00:00"),
            ],
        );
        let to_midnight = schedule("23:00", "24:00", "sun");
        walk(
            &to_midnight,
            &[
                ("2026-12-06 23:30", true, "stop 2026-12-07 00:00"),
                ("2026-12-06 23:59:59", true, "stop 2026-12-07 00:00"),
                ("2026-12-07 00:00", false, "start 2026-12-13 23:00"),
            ],
        );
        // Stopping at 00:00 is stopping at 24:00.
        assert_eq!(schedule("23:00", "00:00", "sun"), to_midnight);
    }

    #[test]
    fn whole_days_join_into_one_window() {
        let always = Schedule::default();
        assert_eq!(always.next_edge(at(2026, 12, 3, "12:00")), None);
        assert!(always.in_window(at(2026, 12, 3, "12:00")));
        walk(
            &schedule("00:00", "24:00", "sat-sun"),
            &[
                ("2026-12-03 12:00", false, "start 2026-12-05 00:00"),
                ("2026-12-05 00:00", true, "stop 2026-12-07 00:00"),
                ("2026-12-06 23:59:59", true, "stop 2026-12-07 00:00"),
            ],
        );
        // Equal times make a 24-hour window from the start.
        walk(
            &schedule("08:00", "08:00", "mon"),
            &[
                ("2026-12-07 09:00", true, "stop 2026-12-08 08:00"),
                ("2026-12-08 07:59:59", true, "stop 2026-12-08 08:00"),
                ("2026-12-08 08:00", false, "start 2026-12-14 08:00"),
            ],
        );
        // Every day but Wednesday, all day: the stop is at Wednesday's midnight.
        walk(
            &schedule("00:00", "24:00", "thu-tue"),
            &[
                ("2026-12-03 12:00", true, "stop 2026-12-09 00:00"),
                ("2026-12-09 12:00", false, "start 2026-12-10 00:00"),
            ],
        );
    }

    #[test]
    fn leap_days() {
        walk(
            &schedule("08:00", "09:00", "all"),
            &[
                ("2028-02-28 10:00", false, "start 2028-02-29 08:00"),
                ("2028-02-29 08:30", true, "stop 2028-02-29 09:00"),
                ("2027-02-28 10:00", false, "start 2027-03-01 08:00"),
                ("2100-02-28 10:00", false, "start 2100-03-01 08:00"),
                ("2000-02-28 10:00", false, "start 2000-02-29 08:00"),
            ],
        );
        // 2028-02-29 is a Tuesday.
        walk(
            &schedule("08:00", "09:00", "tue"),
            &[("2028-02-23 10:00", false, "start 2028-02-29 08:00")],
        );
    }
    #[test]
    fn edges_are_shown_as_status_says() {
        let next = edge(START, at(2026, 12, 3, "08:00")).unwrap();
        assert_eq!(next.to_string(), "next start 2026-12-03 08:00");
        let stop = edge(STOP, at(2027, 1, 9, "18:30:05")).unwrap();
        assert_eq!(stop.to_string(), "next stop 2027-01-09 18:30:05");
    }

    /// A zone one hour ahead of UTC, two hours from `spring` until `fall`
    /// (UNIX times).
    fn summer_zone(spring: i64, fall: i64) -> impl Fn(i64) -> Option<LocalTime> {
        move |t| {
            let offset = if (spring..fall).contains(&t) {
                7200
            } else {
                3600
            };
            Some(LocalTime::from_stamp(t + offset))
        }
    }

    #[test]
    fn first_instant_across_offset_changes() {
        // 2026-03-29 01:00 UTC: 02:00 local becomes 03:00.
        let spring = at(2026, 3, 29, "01:00").stamp();
        // 2026-10-25 01:00 UTC: 03:00 local becomes 02:00.
        let fall = at(2026, 10, 25, "01:00").stamp();
        let zone = summer_zone(spring, fall);
        let utc = |y, m, d, hms| at(y, m, d, hms).stamp();
        let week_before = utc(2026, 3, 22, "00:00");
        // Plain: 08:00 local is 07:00 UTC in winter, 06:00 UTC in summer.
        let plain = first_instant(&zone, at(2026, 3, 28, "08:00"), week_before);
        assert_eq!(plain, Some(utc(2026, 3, 28, "07:00")));
        let plain = first_instant(&zone, at(2026, 3, 30, "08:00"), week_before);
        assert_eq!(plain, Some(utc(2026, 3, 30, "06:00")));
        // 02:30 does not exist that night: the gap's end, 03:00 local.
        let gap = first_instant(&zone, at(2026, 3, 29, "02:30"), week_before);
        assert_eq!(gap, Some(spring));
        let gap = first_instant(&zone, at(2026, 3, 29, "02:00"), utc(2026, 3, 28, "23:59"));
        assert_eq!(gap, Some(spring));
        // 02:30 happens twice in October: the first.
        let twice = first_instant(&zone, at(2026, 10, 25, "02:30"), utc(2026, 10, 24, "12:00"));
        assert_eq!(twice, Some(utc(2026, 10, 25, "00:30")));
        // ... or the second, from within the second pass.
        let in_second = utc(2026, 10, 25, "01:10");
        let second = first_instant(&zone, at(2026, 10, 25, "02:30"), in_second);
        assert_eq!(second, Some(utc(2026, 10, 25, "01:30")));
        // Past the repeated hour, from within the first pass.
        let after_first = utc(2026, 10, 25, "00:40");
        let later = first_instant(&zone, at(2026, 10, 25, "03:30"), after_first);
        assert_eq!(later, Some(utc(2026, 10, 25, "02:30")));
        // Always after `after`, even for a target already shown.
        let now = utc(2026, 6, 1, "12:00");
        assert_eq!(
            first_instant(&zone, at(2026, 6, 1, "00:00"), now),
            Some(now + 1)
        );
        // A zone that fails fails the search.
        assert_eq!(first_instant(|_| None, at(2026, 6, 1, "00:00"), now), None);
    }

    /// Runs `zone_child` in a child process with `tz` as TZ: the variable is
    /// the process's, so it is set there, never in this one.
    fn in_zone(tz: &str) {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "config::calendar::tests::zone_child",
                "--exact",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env("TZ", tz)
            .env("GOING_ZONE_CHILD", tz)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("zone checked"),
            "TZ={tz}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn next_edges_in_real_zones() {
        in_zone("UTC0");
        // The European rule as a POSIX string needs no zoneinfo files.
        in_zone("CET-1CEST,M3.5.0,M10.5.0/3");
        if std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
            in_zone("Europe/Berlin");
        }
    }

    /// Passes at once unless run by [`in_zone`].
    #[test]
    fn zone_child() {
        let Ok(tz) = std::env::var("GOING_ZONE_CHILD") else {
            return;
        };
        let utc = |y, m, d, hms| at(y, m, d, hms).stamp();
        let office = schedule("08:00", "18:00", "mon-fri");
        reload_zone();
        if tz == "UTC0" {
            let now = utc(2026, 12, 3, "12:00");
            assert_eq!(local_time(now), Some(at(2026, 12, 3, "12:00")));
            let (next, unix) = next_edge_unix(&office, now).unwrap();
            assert_eq!(next, edge(STOP, at(2026, 12, 3, "18:00")).unwrap());
            assert_eq!(unix, utc(2026, 12, 3, "18:00"));
            let friday_night = utc(2026, 12, 4, "20:00");
            let (next, unix) = next_edge_unix(&office, friday_night).unwrap();
            assert_eq!(next.start, START);
            assert_eq!(unix, utc(2026, 12, 7, "08:00"));
            assert_eq!(next_edge_unix(&Schedule::default(), now), None);
        } else {
            // Berlin: CET (+1) in winter, CEST (+2) from 2026-03-29 01:00
            // UTC to 2026-10-25 01:00 UTC.
            assert_eq!(
                local_time(utc(2026, 12, 3, "07:00")),
                Some(at(2026, 12, 3, "08:00"))
            );
            assert_eq!(
                local_time(utc(2026, 7, 1, "06:00")),
                Some(at(2026, 7, 1, "08:00"))
            );
            let (_, unix) = next_edge_unix(&office, utc(2026, 12, 3, "00:00")).unwrap();
            assert_eq!(unix, utc(2026, 12, 3, "07:00"));
            // A start at 02:30 on the night the clocks skip it (Sunday).
            let night = schedule("02:30", "04:00", "sun");
            let (next, unix) = next_edge_unix(&night, utc(2026, 3, 28, "12:00")).unwrap();
            assert_eq!(next, edge(START, at(2026, 3, 29, "02:30")).unwrap());
            assert_eq!(unix, utc(2026, 3, 29, "01:00"));
            // ... and on the night it is shown twice: the first.
            let (_, unix) = next_edge_unix(&night, utc(2026, 10, 24, "12:00")).unwrap();
            assert_eq!(unix, utc(2026, 10, 25, "00:30"));
            // The stop at 04:00 that night is three hours of UTC later.
            let (next, unix) = next_edge_unix(&night, utc(2026, 10, 25, "00:30")).unwrap();
            assert_eq!(next.start, STOP);
            assert_eq!(unix, utc(2026, 10, 25, "03:00"));
        }
        println!("zone checked");
    }
}
