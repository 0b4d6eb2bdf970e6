//! The command line, parsed into what going is to do. Pure: no I/O.

use crate::log::Target;
use lexopt::prelude::*;
use std::ffi::OsString;
use std::path::PathBuf;

pub const DEFAULT_DIR: &str = "/etc/going.d";

pub const USAGE: &str = "\
usage: going [-d DIR] [-l stderr|syslog]    supervise the services in DIR
       going check [-d DIR]                 validate service files, exit 0 or 1
       going -v                             print the version
       going -h                             print this help

  -d DIR   the service directory (default /etc/going.d)
  -l WHERE log to stderr or syslog (default: syslog if /dev/log answers)
";

#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    Supervise { dir: PathBuf, log: Option<Target> },
    Check { dir: PathBuf },
    Version,
    Help,
}

pub fn parse(args: Vec<OsString>) -> Result<Mode, String> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut dir = PathBuf::from(DEFAULT_DIR);
    let mut log = None;
    let mut check = false;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('d') | Long("dir") => {
                dir = PathBuf::from(parser.value().map_err(|e| e.to_string())?)
            }
            Short('l') | Long("log") => {
                let value = parser.value().map_err(|e| e.to_string())?;
                log = Some(match value.to_str() {
                    Some("stderr") => Target::Stderr,
                    Some("syslog") => Target::Syslog,
                    _ => return Err(format!("-l takes stderr or syslog, not {:?}", value)),
                });
            }
            Short('v') | Long("version") => return Ok(Mode::Version),
            Short('h') | Long("help") => return Ok(Mode::Help),
            Value(word) if word == "check" && !check => check = true,
            other => return Err(other.unexpected().to_string()),
        }
    }
    if check {
        if log.is_some() {
            return Err("check takes no -l".into());
        }
        return Ok(Mode::Check { dir });
    }
    Ok(Mode::Supervise { dir, log })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Mode, String> {
        parse(words.iter().map(OsString::from).collect())
    }

    #[test]
    fn modes() {
        assert_eq!(
            parse_words(&[]),
            Ok(Mode::Supervise {
                dir: DEFAULT_DIR.into(),
                log: None
            })
        );
        assert_eq!(
            parse_words(&["-d", "/x", "-l", "stderr"]),
            Ok(Mode::Supervise {
                dir: "/x".into(),
                log: Some(Target::Stderr)
            })
        );
        assert_eq!(
            parse_words(&["-d/x", "-lsyslog"]),
            Ok(Mode::Supervise {
                dir: "/x".into(),
                log: Some(Target::Syslog)
            })
        );
        assert_eq!(
            parse_words(&["check", "-d", "/x"]),
            Ok(Mode::Check { dir: "/x".into() })
        );
        assert_eq!(
            parse_words(&["-d", "/x", "check"]),
            Ok(Mode::Check { dir: "/x".into() })
        );
        assert_eq!(parse_words(&["-v"]), Ok(Mode::Version));
        assert_eq!(parse_words(&["--help"]), Ok(Mode::Help));
    }

    #[test]
    fn usage_errors() {
        assert!(parse_words(&["-x"]).is_err());
        assert!(parse_words(&["-d"]).is_err());
        assert!(parse_words(&["-l", "file"]).is_err());
        assert!(parse_words(&["status"]).is_err());
        assert!(parse_words(&["check", "check"]).is_err());
        assert!(parse_words(&["check", "-l", "stderr"]).is_err());
    }
}
