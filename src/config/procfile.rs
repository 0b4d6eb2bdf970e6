//! foreman's `Procfile` (`name: command` lines) and the `.env` file beside
//! it (`NAME=value` lines). Each line of the Procfile is a service that
//! runs `/bin/sh -c COMMAND` with the `.env` variables. Pure: the caller
//! reads the files and puts `Procfile:` or `.env:` before each problem.

use super::{Problem, is_service_name};

/// One service of a Procfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcLine {
    pub name: String,
    /// The rest of the line, trimmed, for `/bin/sh -c`.
    pub command: String,
    pub line: usize,
}

/// The lines of `text` with their numbers, without a CRLF's CR, skipping
/// blank lines and `#` comments.
fn content_lines(text: &str) -> impl Iterator<Item = (&str, usize)> {
    text.lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .zip(1..)
        .filter(|(line, _)| {
            let line = line.trim();
            !line.is_empty() && !line.starts_with('#')
        })
}

/// The good lines' services, in the file's order, and every bad line's
/// problem.
pub fn read_procfile(text: &str) -> (Vec<ProcLine>, Vec<Problem>) {
    let mut services: Vec<ProcLine> = Vec::new();
    let mut problems = Vec::new();
    for (line, number) in content_lines(text) {
        let Some((name, command)) = line.split_once(':') else {
            problems.push(Problem::new(number, "expected \"name: command\""));
            continue;
        };
        let (name, command) = (name.trim(), command.trim());
        let why = if !is_service_name(name) {
            format!("bad name {name:?}: use letters, digits, _ and -")
        } else if command.is_empty() {
            format!("{name}: empty command")
        } else if let Some(first) = services.iter().find(|s| s.name == name) {
            format!("{name}: defined twice (first on line {})", first.line)
        } else {
            services.push(ProcLine {
                name: name.into(),
                command: command.into(),
                line: number,
            });
            continue;
        };
        problems.push(Problem::new(number, why));
    }
    (services, problems)
}

/// The variables of a `.env` file, in the file's order; a name set twice
/// keeps its last value, as a shell would. `NAME=value`, optionally after
/// `export `; a value in single quotes is taken as written, one in double
/// quotes understands `\n`, `\t`, `\r`, `\"` and `\\`; an unquoted value
/// ends before ` #`. Nothing is expanded (`$HOME` stays as written).
pub fn parse_env(text: &str) -> Result<Vec<(String, String)>, Vec<Problem>> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut problems = Vec::new();
    for (line, number) in content_lines(text) {
        match env_line(line) {
            Ok((name, value)) => match vars.iter_mut().find(|(n, _)| n == name) {
                Some((_, old)) => *old = value,
                None => vars.push((name.into(), value)),
            },
            Err(why) => problems.push(Problem::new(number, why)),
        }
    }
    problems.is_empty().then_some(vars).ok_or(problems)
}

fn env_line(line: &str) -> Result<(&str, String), String> {
    let line = line.trim();
    let line = line
        .strip_prefix("export")
        .filter(|rest| rest.starts_with([' ', '\t']))
        .map_or(line, str::trim_start);
    let Some((name, value)) = line.split_once('=') else {
        return Err("expected NAME=value".into());
    };
    let name = name.trim_end();
    let mut bytes = name.bytes();
    let good_name = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !good_name {
        return Err(format!(
            "bad variable name {name:?}: use letters, digits and _"
        ));
    }
    let value = env_value(value.trim_start()).map_err(|why| format!("{name}: {why}"))?;
    if value.contains('\0') {
        return Err(format!("{name}: a value cannot hold a NUL byte"));
    }
    Ok((name, value))
}

fn env_value(text: &str) -> Result<String, String> {
    let quote = match text.chars().next() {
        Some(quote @ ('\'' | '"')) => quote,
        _ => {
            let end = text.find(" #").or_else(|| text.find("\t#"));
            let value = end.and_then(|end| text.get(..end)).unwrap_or(text);
            return Ok(value.trim_end().into());
        }
    };
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' if quote == '"' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                Some((_, other)) => value.extend(['\\', other]),
                None => break,
            },
            c if c == quote => {
                let rest = text.get(at + 1..).unwrap_or("").trim_start();
                if !rest.is_empty() && !rest.starts_with('#') {
                    return Err(format!("text after the closing quote: {rest:?}"));
                }
                return Ok(value);
            }
            c => value.push(c),
        }
    }
    Err(format!("no closing {quote} on this line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, command: &str, line: usize) -> ProcLine {
        ProcLine {
            name: name.into(),
            command: command.into(),
            line,
        }
    }

    fn problems(result: Result<impl std::fmt::Debug, Vec<Problem>>) -> Vec<String> {
        let found = result.unwrap_err().into_iter();
        found
            .map(|p| format!("{}: {}", p.line, p.message))
            .collect()
    }

    #[test]
    fn a_procfile_read() {
        let text = "# services\n\nweb: bundle exec rails s -p $PORT\n  worker :  sidekiq -q a:b  \nclock_2-x:sh -c 'x # not a comment'\n";
        assert_eq!(
            read_procfile(text),
            (
                vec![
                    service("web", "bundle exec rails s -p $PORT", 3),
                    service("worker", "sidekiq -q a:b", 4),
                    service("clock_2-x", "sh -c 'x # not a comment'", 5),
                ],
                vec![]
            )
        );
        assert_eq!(read_procfile(""), (vec![], vec![]));
        assert_eq!(read_procfile("  # only\n\n"), (vec![], vec![]));
    }

    #[test]
    fn crlf_line_ends() {
        let text = "web: ./web\r\n\r\n# c\r\nworker: ./w --x\r\n";
        assert_eq!(
            read_procfile(text),
            (
                vec![service("web", "./web", 1), service("worker", "./w --x", 4)],
                vec![]
            )
        );
        assert_eq!(
            parse_env("A=1\r\nB=\"two\"\r\n"),
            Ok(vec![("A".into(), "1".into()), ("B".into(), "two".into())])
        );
    }

    #[test]
    fn bad_procfile_lines_each_with_their_line() {
        let text = "web: ./web\nno colon here\nwe b: x\n: x\nworker:\nweb: ./other\nw.x: y\n";
        assert_eq!(
            problems(Err::<(), _>(read_procfile(text).1)),
            [
                "2: expected \"name: command\"",
                "3: bad name \"we b\": use letters, digits, _ and -",
                "4: bad name \"\": use letters, digits, _ and -",
                "5: worker: empty command",
                "6: web: defined twice (first on line 1)",
                "7: bad name \"w.x\": use letters, digits, _ and -",
            ]
        );
    }

    #[test]
    fn env_values_in_every_form() {
        let text = "\
# settings
PORT=5000
export RACK_ENV=production
  SPACED = padded value  
EMPTY=
SINGLE='a \\n $x \"q\" # kept'
DOUBLE=\"line\\nnext\\t\\\"q\\\" \\\\ \\$x\"  # note
UNQUOTED=a b # comment
HASH=a#b
export=1
exported_twice=1
exported_twice=2
URL=postgres://u:p@h/db?x=1
";
        let expected: Vec<(String, String)> = [
            ("PORT", "5000"),
            ("RACK_ENV", "production"),
            ("SPACED", "padded value"),
            ("EMPTY", ""),
            ("SINGLE", "a \\n $x \"q\" # kept"),
            ("DOUBLE", "line\nnext\t\"q\" \\ \\$x"),
            ("UNQUOTED", "a b"),
            ("HASH", "a#b"),
            ("export", "1"),
            ("exported_twice", "2"),
            ("URL", "postgres://u:p@h/db?x=1"),
        ]
        .iter()
        .map(|&(n, v)| (n.into(), v.into()))
        .collect();
        assert_eq!(parse_env(text), Ok(expected));
    }

    #[test]
    fn bad_env_lines_each_with_their_line() {
        let text =
            "A=1\nnothing\n1A=x\nB='open\nC=\"open\\\"\nD=\"x\" y\nexport =1\nE-F=1\nH=\"x\\";
        assert_eq!(
            problems(parse_env(text)),
            [
                "2: expected NAME=value",
                "3: bad variable name \"1A\": use letters, digits and _",
                "4: B: no closing ' on this line",
                "5: C: no closing \" on this line",
                "6: D: text after the closing quote: \"y\"",
                "7: bad variable name \"\": use letters, digits and _",
                "8: bad variable name \"E-F\": use letters, digits and _",
                "9: H: no closing \" on this line",
            ]
        );
        assert_eq!(
            problems(parse_env("N='a\0b'\n")),
            ["1: N: a value cannot hold a NUL byte"]
        );
    }
}
