//! The command line, parsed into what going is to do. Pure: no I/O.

use crate::config::values;
use crate::log::Target;
use lexopt::prelude::*;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::control::DEFAULT_DIR;
/// Below Docker's 10 s between SIGTERM and SIGKILL, leaving time for the
/// services and the final sweep.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

pub const USAGE: &str = "\
usage: going [-d DIR] [-s SOCKET] [-l stderr|syslog|syslog:/PATH] [-g] [-e CODE]
             [-t DURATION] [-- CMD [ARG...]]
       going check [-d DIR]                          validate service files, exit 0 or 1
       going status [-s SOCKET|-d DIR] [-t DURATION] [--json] [NAME|GROUP...]
       going start|stop|restart [-s SOCKET|-d DIR] [-t DURATION] NAME|GROUP...
       going start|restart -w [-s SOCKET|-d DIR] [-t DURATION] NAME|GROUP...
       going reload [-s SOCKET|-d DIR] [-t DURATION]
       going signal [-s SOCKET|-d DIR] [-t DURATION] SIG NAME|GROUP...
       going pid [-s SOCKET|-d DIR] [-t DURATION] NAME|GROUP...
       going wait [-s SOCKET|-d DIR] [-t DURATION] NAME|GROUP...
       going upgrade [-s SOCKET|-d DIR] [-t DURATION]   re-exec going in place
       going logs [-s SOCKET|-d DIR] [-f] [-n N] NAME  the last N lines (10) of the
                                                     service's log; -f follows it
       going add [-d DIR] [-g GROUP]... [-n N] [--no-wait] [-t DURATION] NAME -- CMD [ARG...]
       going remove [-d DIR] [-t DURATION] NAME
       going expand [-d DIR] NAME                    the definition in effect, templates resolved
       going -v, --version         print the version
       going -h, --help            print this help

  -d DIR       the service directory (default /etc/going.d)
  -s SOCKET    the control socket (default: derived from DIR)
  -l WHERE     log to stderr, syslog, or syslog:/PATH (a socket other than
               /dev/log); default: syslog if /dev/log answers
  -- CMD ARG   run CMD as the main command; going exits with its status
  -g           forward signals to the main command's process group
  -e CODE      count exit status CODE of the main command as 0 (repeatable)
  -t DURATION  the supervisor: grace period before SIGKILL at shutdown
               (default 5s); a command to the control socket: how long it
               may take in all, connecting, sending and reading the answer
               (default 5s); wait, start -w, restart -w: how long to wait
               (default 60s); 250ms, 10s, 5m, or whole seconds
  -w           start, restart: wait until running and ready
";

/// How going runs a main command given after `--`.
#[derive(Debug, PartialEq, Eq)]
pub struct MainOptions {
    pub argv: Vec<OsString>,
    pub forward_to_group: bool,
    pub success_codes: Vec<i32>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Supervise {
    pub dir: PathBuf,
    pub socket: Option<PathBuf>,
    /// `-l syslog:PATH`: a syslog socket other than /dev/log.
    pub syslog_socket: Option<PathBuf>,
    pub log: Option<Target>,
    pub main: Option<MainOptions>,
    pub grace: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    Supervise(Supervise),
    Check {
        dir: PathBuf,
    },
    /// A request to a running going over its control socket.
    Control {
        dir: PathBuf,
        socket: Option<PathBuf>,
        words: Vec<String>,
        /// `-t`: bounds the exchange (and, for the commands that wait, the
        /// wait); `None` leaves the default to the command.
        timeout: Option<Duration>,
    },
    Version,
    Help,
    /// `add`, `remove`, `expand`: the directory itself.
    Adhoc(crate::adhoc::Verb),
}

pub fn parse(mut args: Vec<OsString>) -> Result<Mode, String> {
    if let Some(verb) = crate::adhoc::parse(&args) {
        return verb.map(Mode::Adhoc);
    }
    // Everything after the first `--` is the main command, untouched.
    let main_argv = args.iter().position(|a| a == "--").map(|at| {
        let rest = args.split_off(at);
        rest.into_iter().skip(1).collect::<Vec<_>>()
    });
    let mut parser = lexopt::Parser::from_args(args);
    let mut dir = PathBuf::from(DEFAULT_DIR);
    let mut log = None;
    let mut check = false;
    let mut socket = None;
    let mut control: Vec<String> = Vec::new();
    let mut json = false;
    // `logs -f -n N`, passed on as words of its request.
    let mut logs_options: Vec<String> = Vec::new();
    let mut syslog_socket = None;
    let mut forward_to_group = false;
    let mut success_codes = Vec::new();
    let mut duration = None;
    let mut wait = false;
    let text = |e: lexopt::Error| e.to_string();
    while let Some(arg) = parser.next().map_err(text)? {
        match arg {
            Short('d') | Long("dir") => dir = PathBuf::from(parser.value().map_err(text)?),
            Short('s') | Long("socket") => {
                socket = Some(PathBuf::from(parser.value().map_err(text)?))
            }
            Long("json") if control.first().is_some_and(|verb| verb == "status") => json = true,
            Short('f') if control.first().is_some_and(|verb| verb == "logs") => {
                logs_options.push("-f".into())
            }
            Short('n') if control.first().is_some_and(|verb| verb == "logs") => {
                let value = parser.value().map_err(text)?;
                match value.to_str().and_then(|v| v.parse::<usize>().ok()) {
                    Some(lines) => logs_options.extend(["-n".into(), lines.to_string()]),
                    None => return Err(format!("-n takes a number of lines, not {value:?}")),
                }
            }
            Short('l') | Long("log") => {
                let value = parser.value().map_err(text)?;
                log = Some(match value.to_str() {
                    Some("stderr") => Target::Stderr,
                    Some("syslog") => Target::Syslog,
                    Some(text) if text.starts_with("syslog:/") => {
                        syslog_socket = text.strip_prefix("syslog:").map(PathBuf::from);
                        Target::Syslog
                    }
                    _ => {
                        return Err(format!(
                            "-l takes stderr, syslog or syslog:/PATH, not {value:?}"
                        ));
                    }
                });
            }
            Short('g') => forward_to_group = true,
            Short('w') => wait = true,
            Short('e') => {
                let value = parser.value().map_err(text)?;
                match value.to_str().and_then(|v| v.parse::<i32>().ok()) {
                    Some(code) if (0..=255).contains(&code) => success_codes.push(code),
                    _ => return Err(format!("-e takes an exit status 0..255, not {value:?}")),
                }
            }
            Short('t') => {
                let value = parser.value().map_err(text)?;
                let value = value.to_str().ok_or_else(|| "not text".to_string());
                let value = value.and_then(values::duration);
                duration = Some(value.map_err(|why| format!("-t: {why}"))?);
            }
            Short('v') | Long("version") => return Ok(Mode::Version),
            Short('h') | Long("help") => return Ok(Mode::Help),
            Value(word) if word == "check" && !check && control.is_empty() => check = true,
            Value(word) if !check => {
                let word = word
                    .into_string()
                    .map_err(|w| format!("{w:?} is not UTF-8"))?;
                let is_verb = [
                    "status", "start", "stop", "restart", "reload", "signal", "pid", "wait",
                    "upgrade", "logs",
                ]
                .contains(&word.as_str());
                if control.is_empty() && !is_verb {
                    return Err(format!("unknown command {word:?}"));
                }
                control.push(word);
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    let supervisor_options =
        log.is_some() || main_argv.is_some() || forward_to_group || !success_codes.is_empty();
    if !control.is_empty() && supervisor_options {
        return Err("control commands take only -s, -d, -t and names".into());
    }
    let verb = control.first().map_or("", String::as_str);
    if wait && !matches!(verb, "start" | "restart") {
        return Err("-w goes with start and restart".into());
    }
    if !control.is_empty() {
        if json {
            control.insert(1, "--json".into());
        }
        check_operands(&control)?;
        if wait {
            control.insert(1, "-w".into());
        }
        control.splice(1..1, logs_options);
        return Ok(Mode::Control {
            dir,
            socket,
            words: control,
            timeout: duration,
        });
    }
    if check {
        if supervisor_options || duration.is_some() {
            return Err("check takes only -d".into());
        }
        return Ok(Mode::Check { dir });
    }
    let main = match main_argv {
        Some(argv) if argv.is_empty() => return Err("-- needs a command after it".into()),
        Some(argv) => Some(MainOptions {
            argv,
            forward_to_group,
            success_codes,
        }),
        None if forward_to_group || !success_codes.is_empty() => {
            return Err("-g and -e need a main command after --".into());
        }
        None => None,
    };
    Ok(Mode::Supervise(Supervise {
        dir,
        socket,
        syslog_socket,
        log,
        main,
        grace: duration.unwrap_or(DEFAULT_GRACE),
    }))
}

/// What `signal`, `pid` and `wait` need: a signal going knows, and at
/// least one name.
fn check_operands(control: &[String]) -> Result<(), String> {
    let verb = control.first().map_or("", String::as_str);
    let operands = control.get(1..).unwrap_or_default();
    let names = match verb {
        "signal" => {
            let signal = operands.first().ok_or("signal needs a signal and names")?;
            if crate::control::parse_signal(signal).is_none() {
                return Err(format!(
                    "signal: bad signal {signal:?}: a name (HUP, SIGHUP) or a number 1-31"
                ));
            }
            operands.get(1..).unwrap_or_default()
        }
        "pid" | "wait" => operands,
        _ => return Ok(()),
    };
    if names.is_empty() {
        return Err(format!("{verb} needs at least one service or group name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Mode, String> {
        parse(words.iter().map(OsString::from).collect())
    }

    fn supervise(dir: &str, log: Option<Target>) -> Mode {
        Mode::Supervise(Supervise {
            dir: dir.into(),
            socket: None,
            syslog_socket: None,
            log,
            main: None,
            grace: DEFAULT_GRACE,
        })
    }

    #[test]
    fn modes() {
        assert_eq!(parse_words(&[]), Ok(supervise(DEFAULT_DIR, None)));
        assert_eq!(
            parse_words(&["-d", "/x", "-l", "stderr"]),
            Ok(supervise("/x", Some(Target::Stderr)))
        );
        assert_eq!(
            parse_words(&["-d/x", "-lsyslog"]),
            Ok(supervise("/x", Some(Target::Syslog)))
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
    fn main_commands_take_everything_after_the_double_dash() {
        let got = parse_words(&[
            "-g", "-e", "143", "-e", "1", "-t", "2s", "--", "java", "-d", "--", "x",
        ]);
        let expected = Supervise {
            dir: DEFAULT_DIR.into(),
            socket: None,
            syslog_socket: None,
            log: None,
            main: Some(MainOptions {
                argv: ["java", "-d", "--", "x"]
                    .iter()
                    .map(OsString::from)
                    .collect(),
                forward_to_group: true,
                success_codes: vec![143, 1],
            }),
            grace: Duration::from_secs(2),
        };
        assert_eq!(got, Ok(Mode::Supervise(expected)));
        let check_as_command = parse_words(&["--", "check"]);
        assert!(matches!(
            check_as_command,
            Ok(Mode::Supervise(Supervise { main: Some(_), .. }))
        ));
    }

    #[test]
    fn control_commands() {
        let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_words(&["status", "--json", "-d", "/x", "web"]),
            Ok(Mode::Control {
                dir: "/x".into(),
                socket: None,
                words: words(&["status", "--json", "web"]),
                timeout: None,
            })
        );
        assert_eq!(
            parse_words(&["-s", "/s", "stop", "web", "db"]),
            Ok(Mode::Control {
                dir: DEFAULT_DIR.into(),
                socket: Some("/s".into()),
                words: words(&["stop", "web", "db"]),
                timeout: None,
            })
        );
        assert_eq!(
            parse_words(&["reload"]),
            Ok(Mode::Control {
                dir: DEFAULT_DIR.into(),
                socket: None,
                words: words(&["reload"]),
                timeout: None,
            })
        );
        assert_eq!(
            parse_words(&["upgrade", "-s", "/s"]),
            Ok(Mode::Control {
                dir: DEFAULT_DIR.into(),
                socket: Some("/s".into()),
                words: words(&["upgrade"]),
                timeout: None,
            })
        );
        assert_eq!(
            parse_words(&["-t", "250ms", "status", "-t", "2"]),
            Ok(Mode::Control {
                dir: DEFAULT_DIR.into(),
                socket: None,
                words: words(&["status"]),
                timeout: Some(Duration::from_secs(2)),
            })
        );
        assert_eq!(
            parse_words(&["logs", "-f", "web", "-n", "3"]),
            Ok(Mode::Control {
                dir: DEFAULT_DIR.into(),
                socket: None,
                words: words(&["logs", "-f", "-n", "3", "web"]),
                timeout: None,
            })
        );
        assert!(matches!(
            parse_words(&["restart", "-t", "5m", "web"]),
            Ok(Mode::Control { timeout: Some(t), .. }) if t == Duration::from_secs(300)
        ));
        assert!(matches!(
            parse_words(&["-s", "/s", "-d", "/x"]),
            Ok(Mode::Supervise(Supervise {
                socket: Some(_),
                ..
            }))
        ));
    }

    #[test]
    fn signal_pid_wait_and_dash_w() {
        let words_of = |list: &[&str]| match parse_words(list) {
            Ok(Mode::Control { words, .. }) => words,
            other => panic!("{list:?}: {other:?}"),
        };
        assert_eq!(
            words_of(&["signal", "HUP", "nginx"]),
            ["signal", "HUP", "nginx"]
        );
        assert_eq!(words_of(&["signal", "sigusr1", "a", "b"]).len(), 4);
        assert_eq!(words_of(&["pid", "web"]), ["pid", "web"]);
        assert_eq!(words_of(&["wait", "-t", "30s", "db"]), ["wait", "db"]);
        assert_eq!(words_of(&["start", "-w", "web"]), ["start", "-w", "web"]);
        assert_eq!(
            words_of(&["-w", "restart", "web"]),
            ["restart", "-w", "web"]
        );
    }

    #[test]
    fn usage_errors() {
        for words in [
            &["-x"][..],
            &["-d"],
            &["-l", "file"],
            &["dance"],
            &["status", "-l", "stderr"],
            &["--json"],
            &["check", "check"],
            &["check", "-l", "stderr"],
            &["--"],
            &["-g"],
            &["-e", "3"],
            &["-e", "300", "--", "x"],
            &["-t", "soon", "--", "x"],
            &["check", "--", "x"],
            &["check", "-t", "1s"],
            &["status", "-t", "soon"],
            &["status", "-t"],
            &["signal", "HANGUP", "web"],
            &["signal", "0", "web"],
            &["signal", "HUP"],
            &["signal"],
            &["pid"],
            &["wait"],
            &["wait", "-t", "1s"],
            &["stop", "-w", "web"],
            &["wait", "-w", "web"],
            &["-w"],
            &["status", "-w"],
            &["logs", "-n", "many", "web"],
            &["status", "-f"],
            &["-f", "logs", "web"],
        ] {
            assert!(
                parse_words(words).is_err(),
                "{words:?} should be a usage error"
            );
        }
    }
}
