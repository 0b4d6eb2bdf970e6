//! `apply-on` and `[[version]]` (procman's): a file's definitions over
//! time. The definition in effect at T is the top level merged with the
//! latest version whose `apply-on` is at or before T and that is not
//! `fake`; before a top-level `apply-on`, nothing is. Pure, but for the
//! local time zone (`calendar`), which turns a local date-time into a
//! UNIX time.

use super::{Entry, Problem, Value};
use crate::config::calendar::{self, LocalTime};

/// One `[[version]]` table.
#[derive(Debug, Default)]
pub struct Version {
    /// UNIX time; `None` when missing or bad (a problem says so).
    pub apply_on: Option<i64>,
    pub fake: bool,
    /// Its first key's line.
    pub line: usize,
    /// It has an `apply-on` key, good or bad.
    pub dated: bool,
    /// Its keys, without the `version.N.` prefix, `apply-on` and `fake`.
    pub entries: Vec<Entry>,
}

/// A file's entries taken apart.
#[derive(Debug, Default)]
pub struct Split {
    pub top: Vec<Entry>,
    /// The top level's `apply-on`, a UNIX time.
    pub apply_on: Option<i64>,
    /// In file order.
    pub versions: Vec<Version>,
    pub problems: Vec<Problem>,
}

/// Which definition is in effect at a time, and when that changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effect {
    /// Index into [`Split::versions`]; `None`: the top level alone.
    pub version: Option<usize>,
    /// The top level's `apply-on` is still to come: nothing is in effect.
    pub pending: bool,
    /// The next `apply-on` (UNIX time) that changes the answer.
    pub next: Option<i64>,
}

/// Separates the top level, its `apply-on` and each `version.N.*`.
pub fn split(entries: Vec<Entry>) -> Split {
    let mut split = Split::default();
    let mut by_index: Vec<(usize, Version)> = Vec::new();
    for entry in entries {
        if entry.key == "apply-on" {
            match date_time(&entry.value) {
                Ok(at) => split.apply_on = Some(at),
                Err(why) => split
                    .problems
                    .push(Problem::new(entry.line, format!("apply-on: {why}"))),
            }
            continue;
        }
        if entry.key == "version" || entry.key == "fake" {
            let why = if entry.key == "fake" {
                "fake: only inside a [[version]] table"
            } else {
                "version: expected [[version]] tables"
            };
            split.problems.push(Problem::new(entry.line, why));
            continue;
        }
        let Some(rest) = entry.key.strip_prefix("version.") else {
            split.top.push(entry);
            continue;
        };
        let Some((index, key)) = rest
            .split_once('.')
            .and_then(|(n, key)| Some((n.parse::<usize>().ok()?, key.to_string())))
        else {
            let why = "version: expected [[version]] tables";
            split.problems.push(Problem::new(entry.line, why));
            continue;
        };
        if !by_index.iter().any(|(i, _)| *i == index) {
            let line = entry.line;
            by_index.push((
                index,
                Version {
                    line,
                    ..Version::default()
                },
            ));
        }
        let Some((_, version)) = by_index.iter_mut().find(|(i, _)| *i == index) else {
            continue;
        };
        version.line = version.line.min(entry.line);
        let problem = |why: String| Problem::new(entry.line, format!("version: {why}"));
        match key.as_str() {
            "apply-on" => {
                version.dated = true;
                match date_time(&entry.value) {
                    Ok(at) => version.apply_on = Some(at),
                    Err(why) => split.problems.push(problem(format!("apply-on: {why}"))),
                }
            }
            "fake" => match entry.value {
                Value::Bool(fake) => version.fake = fake,
                Value::Text(ref text) if text == "true" || text == "false" => {
                    version.fake = text == "true";
                }
                ref other => split.problems.push(problem(format!(
                    "fake: expected true or false, found {}",
                    other.type_name()
                ))),
            },
            _ if matches!(key.as_str(), "template" | "version")
                || key.starts_with("vars.")
                || key.starts_with("version.") =>
            {
                let key = key.split('.').next().unwrap_or("");
                split
                    .problems
                    .push(problem(format!("{key}: not inside a version")));
            }
            _ => version.entries.push(Entry { key, ..entry }),
        }
    }
    crate::util::sort_by_key(&mut by_index, |(i, _)| *i);
    for (_, version) in by_index {
        if !version.dated {
            let why = "version: every [[version]] needs an apply-on";
            split.problems.push(Problem::new(version.line, why));
        }
        if let Some(twin) = split
            .versions
            .iter()
            .find(|v| v.apply_on.is_some() && v.apply_on == version.apply_on)
        {
            let why = format!(
                "version: same apply-on as the version on line {}",
                twin.line
            );
            split.problems.push(Problem::new(version.line, why));
        }
        split.versions.push(version);
    }
    split
}

/// What is in effect at `now` (a UNIX time).
pub fn effect(split: &Split, now: i64) -> Effect {
    let applied = |v: &Version| !v.fake && v.apply_on.is_some_and(|at| at <= now);
    let version = split
        .versions
        .iter()
        .enumerate()
        .filter(|(_, v)| applied(v))
        .max_by_key(|(_, v)| v.apply_on)
        .map(|(index, _)| index);
    let pending = split.apply_on.is_some_and(|at| at > now);
    let next = split
        .versions
        .iter()
        .filter(|v| !v.fake)
        .filter_map(|v| v.apply_on)
        .chain(split.apply_on)
        .filter(|&at| at > now)
        .min();
    Effect {
        version,
        pending,
        next,
    }
}

/// `base` with every key of `over` set as `over` says: a key replaces
/// the same key; a table's keys (`env.A`) each on their own.
pub fn merge(base: &[Entry], over: &[Entry]) -> Vec<Entry> {
    let mut merged: Vec<Entry> = base
        .iter()
        .filter(|b| !over.iter().any(|o| o.key == b.key))
        .cloned()
        .collect();
    merged.extend(over.iter().cloned());
    merged
}

/// A local date-time, TOML's or as a string, as a UNIX time.
fn date_time(value: &Value) -> Result<i64, String> {
    let text = match value {
        Value::Datetime(text) | Value::Str(text) | Value::Text(text) => text,
        other => {
            return Err(format!(
                "expected a local date-time like 2026-12-24T08:00:00, found {}",
                other.type_name()
            ));
        }
    };
    let local = parse_local(text.trim())?;
    calendar::unix_of(local).ok_or_else(|| format!("{text:?} is out of range"))
}

/// `2026-12-24T08:00:00` (or a space for the `T`, seconds optional,
/// fractions ignored) as a local time; a zone is refused.
pub fn parse_local(text: &str) -> Result<LocalTime, String> {
    let bad = || format!("{text:?} is not a local date-time like 2026-12-24T08:00:00");
    let (date, time) = text.split_once(['T', 't', ' ']).ok_or_else(bad)?;
    if time.contains(['Z', 'z', '+']) || time.get(5..).is_some_and(|t| t.contains('-')) {
        return Err(format!("{text:?}: write the local time, without a zone"));
    }
    let number = |part: Option<&str>, digits: usize| -> Result<u32, String> {
        part.filter(|p| p.len() == digits && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse().ok())
            .ok_or_else(bad)
    };
    let mut ymd = date.split('-');
    let (year, month, day) = (
        number(ymd.next(), 4)?,
        number(ymd.next(), 2)?,
        number(ymd.next(), 2)?,
    );
    let time = time.split_once('.').map_or(time, |(whole, _)| whole);
    let mut hms = time.split(':');
    let (h, m) = (number(hms.next(), 2)?, number(hms.next(), 2)?);
    let s = match hms.next() {
        None => 0,
        seconds => number(seconds, 2)?,
    };
    if ymd.next().is_some() || hms.next().is_some() || h > 23 || m > 59 || s > 59 {
        return Err(bad());
    }
    let local = LocalTime {
        year: year as i32,
        month: u8::try_from(month).map_err(|_| bad())?,
        day: u8::try_from(day).map_err(|_| bad())?,
        secs: h * 3600 + m * 60 + s,
    };
    // 2026-02-30 comes back as another day.
    if !(1..=12).contains(&month) || LocalTime::from_days(local.days(), local.secs) != local {
        return Err(bad());
    }
    Ok(local)
}

/// A UNIX time as the local `2026-12-24T08:00:00`.
pub fn format_local(unix: i64) -> String {
    match calendar::local_time(unix) {
        Some(t) => {
            let (year, month, day) = (t.year, t.month, t.day);
            let (h, m, s) = (t.secs / 3600, t.secs / 60 % 60, t.secs % 60);
            format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}")
        }
        None => format!("@{unix}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, line: usize, value: Value) -> Entry {
        Entry {
            key: key.into(),
            line,
            value,
        }
    }

    fn text(value: &str) -> Value {
        Value::Str(value.into())
    }

    fn problems(split: &Split) -> Vec<String> {
        let found = split.problems.iter();
        found
            .map(|p| format!("{}: {}", p.line, p.message))
            .collect()
    }

    #[test]
    fn local_date_times_read_and_refused() {
        let t = parse_local("2026-12-24T08:00:00").unwrap();
        assert_eq!((t.year, t.month, t.day, t.secs), (2026, 12, 24, 8 * 3600));
        assert_eq!(parse_local("2026-12-24 08:00"), Ok(t));
        assert_eq!(parse_local("2026-12-24T08:00:00.250"), Ok(t));
        for bad in [
            "2026-12-24",
            "2026-02-30T00:00:00",
            "2026-13-01T00:00:00",
            "2026-12-24T24:00:00",
            "26-12-24T08:00:00",
            "2026-12-24T08:00:00Z",
            "2026-12-24T08:00:00+02:00",
            "2026-12-24T08:00:00-02:00",
            "2026-12-24T8:00:00",
        ] {
            assert!(parse_local(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_taken_apart_with_their_problems() {
        let entries = vec![
            entry("cmd", 1, text("a")),
            entry("apply-on", 2, Value::Datetime("2026-01-01T00:00:00".into())),
            entry("version.0.apply-on", 4, text("2026-02-01T00:00:00")),
            entry("version.0.cmd", 5, text("b")),
            entry("version.0.env.X", 6, text("1")),
            entry("version.1.fake", 8, Value::Bool(true)),
            entry("version.1.apply-on", 9, text("2026-03-01T00:00:00")),
            entry("version.2.cmd", 11, text("c")),
            entry("version.2.template", 12, text("t")),
            entry("version.3.apply-on", 14, text("2026-02-01T00:00:00")),
            entry("fake", 15, Value::Bool(true)),
        ];
        let split = split(entries);
        assert_eq!(split.top.len(), 1);
        assert!(split.apply_on.is_some());
        assert_eq!(split.versions.len(), 4);
        let first = &split.versions[0];
        let keys: Vec<&str> = first.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["cmd", "env.X"]);
        assert!(split.versions[1].fake);
        assert_eq!(
            problems(&split),
            [
                "12: version: template: not inside a version",
                "15: fake: only inside a [[version]] table",
                "11: version: every [[version]] needs an apply-on",
                "14: version: same apply-on as the version on line 4",
            ]
        );
    }

    #[test]
    fn the_latest_passed_real_version_is_in_effect() {
        let v = |at: i64, fake: bool| Version {
            apply_on: Some(at),
            fake,
            line: 1,
            dated: true,
            entries: Vec::new(),
        };
        let split = Split {
            apply_on: Some(100),
            versions: vec![v(300, false), v(200, false), v(250, true)],
            ..Split::default()
        };
        let at = |now| effect(&split, now);
        assert_eq!(
            at(50),
            Effect {
                version: None,
                pending: true,
                next: Some(100)
            }
        );
        assert_eq!(
            (at(100).version, at(100).pending, at(100).next),
            (None, false, Some(200))
        );
        assert_eq!((at(260).version, at(260).next), (Some(1), Some(300)));
        assert_eq!((at(300).version, at(300).next), (Some(0), None));
    }

    #[test]
    fn a_merge_replaces_keys_one_by_one() {
        let base = [
            entry("cmd", 1, text("a")),
            entry("env.A", 2, text("1")),
            entry("env.B", 3, text("2")),
        ];
        let over = [entry("env.B", 7, text("3")), entry("cmd", 8, text("b"))];
        let merged: Vec<(String, usize)> = merge(&base, &over)
            .into_iter()
            .map(|e| (e.key, e.line))
            .collect();
        assert_eq!(
            merged,
            [("env.A".into(), 2), ("env.B".into(), 7), ("cmd".into(), 8)]
        );
    }
}
