//! Parsers for the text forms of values that both file formats share:
//! durations, sizes, octal umasks and command lines. Pure functions; each
//! error is a short phrase that the caller puts after `FILE:LINE: KEY: `.

use std::time::Duration;

/// `"250ms"`, `"10s"`, `"1.5s"`, `"5m"`, `"1h"`, or a bare number of seconds.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let unit_at = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_at);
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("bad duration {text:?}: unit must be ms, s, m or h")),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(format!(
            "bad duration {text:?}: expected a number with a unit, like \"10s\""
        ));
    }
    // An empty part (`5.` or `.5`) is 0.
    let parse = |digits: &str| format!("0{digits}").parse::<u64>().ok();
    let too_long = || format!("bad duration {text:?}: too long");
    let whole = parse(whole).ok_or_else(too_long)?;
    // Fractions count to the millisecond; finer digits are dropped.
    let fraction = fraction.get(..6).unwrap_or(fraction);
    let numerator = u128::from(parse(fraction).ok_or_else(too_long)?);
    let denominator = 10u128.pow(fraction.len() as u32);
    let fraction_millis = (numerator * u128::from(millis_per_unit) / denominator) as u64;
    whole
        .checked_mul(millis_per_unit)
        .and_then(|millis| millis.checked_add(fraction_millis))
        .filter(|&millis| millis <= 365 * 24 * 3_600_000)
        .map(Duration::from_millis)
        .ok_or_else(too_long)
}

/// `"1M"`, `"512k"` (k = 1024, M = 1024 k, G = 1024 M) or bytes; at
/// least one byte.
pub fn size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_at);
    let multiplier: u64 = match unit {
        "" => 1,
        "k" | "K" => 1024,
        "M" => 1024 * 1024,
        "G" => 1024 * 1024 * 1024,
        _ => 0,
    };
    if multiplier == 0 || number.is_empty() {
        return Err(format!(
            "bad size {text:?}: expected bytes, or a number with k, M or G like \"512k\""
        ));
    }
    match number
        .parse()
        .ok()
        .and_then(|n: u64| n.checked_mul(multiplier))
    {
        Some(0) => Err(format!("bad size {text:?}: must be at least 1 byte")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("bad size {text:?}: too large")),
    }
}

/// Octal digits, `"022"` or `"0022"`, at most 0777.
pub fn umask(text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!(
            "bad umask {text:?}: expected octal digits like \"022\""
        ));
    }
    match u32::from_str_radix(text, 8) {
        Ok(mask) if mask <= 0o777 => Ok(mask),
        _ => Err(format!("bad umask {text:?}: must be at most 777")),
    }
}

/// Splits a command line on blanks. `'...'` is literal; in `"..."` a
/// backslash escapes `"` and `\`; outside quotes a backslash escapes the
/// next character. No other shell syntax is interpreted.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    // `Some` from the first character of a word on, even an empty `''`.
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            words.extend(word.take());
            continue;
        }
        let current = word.get_or_insert_with(String::new);
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => current.push(c),
                    None => return Err("unterminated ' quote".into()),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\')) => current.push(c),
                        Some(c) => current.extend(['\\', c]),
                        None => return Err("unterminated \" quote".into()),
                    },
                    Some(c) => current.push(c),
                    None => return Err("unterminated \" quote".into()),
                }
            },
            '\\' => current.push(chars.next().ok_or("trailing backslash")?),
            c => current.push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Result<Duration, String> {
        Ok(Duration::from_millis(n))
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(duration("250ms"), ms(250));
        assert_eq!(duration("10s"), ms(10_000));
        assert_eq!(duration("10"), ms(10_000));
        assert_eq!(duration("5m"), ms(300_000));
        assert_eq!(duration("1h"), ms(3_600_000));
        assert_eq!(duration("1.5s"), ms(1500));
        assert_eq!(duration("0.25s"), ms(250));
        assert_eq!(duration(".5s"), ms(500));
        assert_eq!(duration("2.5m"), ms(150_000));
        assert_eq!(duration("0"), ms(0));
    }

    #[test]
    fn bad_durations_say_why() {
        assert_eq!(
            duration("10x"),
            Err("bad duration \"10x\": unit must be ms, s, m or h".into())
        );
        assert_eq!(
            duration("s"),
            Err("bad duration \"s\": expected a number with a unit, like \"10s\"".into())
        );
        assert_eq!(
            duration("1.2.3s"),
            Err("bad duration \"1.2.3s\": expected a number with a unit, like \"10s\"".into())
        );
        assert_eq!(
            duration("-1s"),
            Err("bad duration \"-1s\": unit must be ms, s, m or h".into())
        );
        assert_eq!(
            duration("99999999999h"),
            Err("bad duration \"99999999999h\": too long".into())
        );
    }

    #[test]
    fn sizes_count_in_kibibytes() {
        assert_eq!(size("1M"), Ok(1024 * 1024));
        assert_eq!(size("512k"), Ok(512 * 1024));
        assert_eq!(size("4K"), Ok(4096));
        assert_eq!(size("2G"), Ok(2 << 30));
        assert_eq!(size(" 100 "), Ok(100));
        let bad = "expected bytes, or a number with k, M or G like \"512k\"";
        assert_eq!(size("1MB"), Err(format!("bad size \"1MB\": {bad}")));
        assert_eq!(size("k"), Err(format!("bad size \"k\": {bad}")));
        assert_eq!(size("-1"), Err(format!("bad size \"-1\": {bad}")));
        assert_eq!(
            size("0k"),
            Err("bad size \"0k\": must be at least 1 byte".into())
        );
        assert_eq!(
            size("99999999999999999999"),
            Err("bad size \"99999999999999999999\": too large".into())
        );
        assert_eq!(
            size("99999999999999G"),
            Err("bad size \"99999999999999G\": too large".into())
        );
    }

    #[test]
    fn umasks_are_octal() {
        assert_eq!(umask("022"), Ok(0o22));
        assert_eq!(umask("0077"), Ok(0o77));
        assert_eq!(umask("777"), Ok(0o777));
        assert_eq!(
            umask("8"),
            Err("bad umask \"8\": expected octal digits like \"022\"".into())
        );
        assert_eq!(
            umask(""),
            Err("bad umask \"\": expected octal digits like \"022\"".into())
        );
        assert_eq!(
            umask("1777"),
            Err("bad umask \"1777\": must be at most 777".into())
        );
    }

    #[test]
    fn commands_split_like_a_shell_without_one() {
        let split = |s: &str| split_command(s).unwrap_or_default();
        assert_eq!(split("/bin/sleep 100"), ["/bin/sleep", "100"]);
        assert_eq!(split("  a\t b  "), ["a", "b"]);
        assert_eq!(split("echo 'a b' \"c d\""), ["echo", "a b", "c d"]);
        assert_eq!(
            split(r#"x "say \"hi\"" 'it''s'"#),
            ["x", "say \"hi\"", "its"]
        );
        assert_eq!(split(r"a\ b c"), ["a b", "c"]);
        assert_eq!(split(r#""a\nb""#), [r"a\nb"]);
        assert_eq!(split("''"), [""]);
        assert_eq!(split("echo $HOME; ls"), ["echo", "$HOME;", "ls"]);
        assert!(split("").is_empty());
    }

    #[test]
    fn broken_quoting_is_an_error() {
        assert_eq!(split_command("echo 'x"), Err("unterminated ' quote".into()));
        assert_eq!(
            split_command("echo \"x"),
            Err("unterminated \" quote".into())
        );
        assert_eq!(split_command("echo x\\"), Err("trailing backslash".into()));
    }
}
