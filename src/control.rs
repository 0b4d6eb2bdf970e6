//! The control socket: where it lives, its one-line protocol, and the
//! client side of `going status`, `start`, `stop`, `restart`, `reload`,
//! `signal`, `pid`, `wait`, `upgrade` and `logs` (the server side is the
//! loop's part `control_server.rs`).
//!
//! Protocol: the client writes one line of blank-separated words; going
//! answers with the exit status on the first line, then the output, and
//! closes the connection.

use crate::supervisor::Command;
use crate::util::describe_io;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The service directory without `-d`.
pub const DEFAULT_DIR: &str = "/etc/going.d";

/// How long a command to the control socket may take without `-t`.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

pub const MAX_REQUEST: usize = 4096;

#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Status {
        json: bool,
        names: Vec<String>,
    },
    Start(Vec<String>),
    Stop(Vec<String>),
    Restart(Vec<String>),
    Reload,
    /// `going logs`: where NAME's output goes. `follow` and `lines` are
    /// the client's own business (it reads the file itself).
    Logs {
        name: String,
        follow: bool,
        lines: usize,
    },
    /// `signal SIG NAME...`: SIG to each service's process.
    Signal {
        signal: i32,
        names: Vec<String>,
    },
    /// `pid NAME...`: one pid a line.
    Pid(Vec<String>),
    /// `wait [-t DUR] NAME...`, and `start -w`/`restart -w` (`after`: the
    /// command to carry out first): answered once every service named is
    /// running and ready, one has ended for good, or `timeout` has passed.
    Wait {
        after: Option<Command>,
        names: Vec<String>,
        timeout: Duration,
    },
    /// Re-exec going in place, as SIGUSR2 does without a main command.
    Upgrade,
}

/// How long `wait`, `start -w` and `restart -w` wait without `-t`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);
/// What a waiting client allows beyond its wait, so that it prints going's
/// answer at the end of the wait (which says what it still waited for)
/// rather than a timeout of its own.
pub const WAIT_MARGIN: Duration = Duration::from_secs(5);

/// A signal as `going signal` takes it: `HUP`, `SIGHUP`, `hup` or `1`;
/// only the standard signals (1..31), which have names.
pub fn parse_signal(text: &str) -> Option<i32> {
    crate::signals::by_name(text)
        .or_else(|| text.parse().ok())
        .filter(|&n| nix::sys::signal::Signal::try_from(n).is_ok())
}

/// The names of a request that must have some and takes no option.
fn names_only(verb: &str, rest: Vec<String>) -> Result<Vec<String>, String> {
    if rest.is_empty() {
        return Err(format!("{verb} needs at least one service or group name"));
    }
    match rest.iter().find(|w| w.starts_with('-')) {
        Some(flag) => Err(format!("{verb}: unknown option {flag}")),
        None => Ok(rest),
    }
}

/// `wait [-t DUR] NAME...`, `start -w [-t DUR] NAME...`, `restart -w ...`.
fn wait_request(verb: &str, rest: Vec<String>) -> Result<Request, String> {
    let after = match verb {
        "start" => Some(Command::Start),
        "restart" => Some(Command::Restart),
        _ => None,
    };
    let mut timeout = DEFAULT_WAIT;
    let mut names = Vec::new();
    let mut words = rest.into_iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-w" if after.is_some() => {}
            "-t" => {
                let value = words.next().unwrap_or_default();
                timeout = crate::config::values::duration(&value)
                    .map_err(|why| format!("{verb}: -t: {why}"))?;
            }
            _ => names.push(word),
        }
    }
    let names = names_only(verb, names)?;
    Ok(Request::Wait {
        after,
        names,
        timeout,
    })
}

/// Lines `going logs` prints without `-n`.
pub const DEFAULT_LOG_LINES: usize = 10;

pub fn parse_request(line: &str) -> Result<Request, String> {
    let mut words = line.split_whitespace().map(String::from);
    let verb = words.next().unwrap_or_default();
    let rest: Vec<String> = words.collect();
    match verb.as_str() {
        "wait" => wait_request(&verb, rest),
        "start" | "restart" if rest.iter().any(|w| w == "-w") => wait_request(&verb, rest),
        "pid" => names_only(&verb, rest).map(Request::Pid),
        "signal" => {
            let mut rest = rest.into_iter();
            let word = rest.next().unwrap_or_default();
            let Some(signal) = parse_signal(&word) else {
                return Err(format!("signal: bad signal {word:?}"));
            };
            let names = names_only(&verb, rest.collect())?;
            Ok(Request::Signal { signal, names })
        }
        "status" => {
            let json = rest.iter().any(|w| w == "--json");
            let names: Vec<String> = rest.into_iter().filter(|w| w != "--json").collect();
            match names.iter().find(|w| w.starts_with('-')) {
                Some(flag) => Err(format!("status: unknown option {flag}")),
                None => Ok(Request::Status { json, names }),
            }
        }
        "start" => names_only(&verb, rest).map(Request::Start),
        "stop" => names_only(&verb, rest).map(Request::Stop),
        "restart" => names_only(&verb, rest).map(Request::Restart),
        "logs" => parse_logs(rest),
        "reload" | "upgrade" if !rest.is_empty() => Err(format!("{verb} takes no arguments")),
        "reload" => Ok(Request::Reload),
        "upgrade" => Ok(Request::Upgrade),
        "" => Err("empty request".into()),
        other => Err(format!("unknown request {other:?}")),
    }
}

/// `logs [-f] [-n N] NAME`, the options in any order before the name.
fn parse_logs(words: Vec<String>) -> Result<Request, String> {
    let (mut follow, mut lines, mut name) = (false, DEFAULT_LOG_LINES, None);
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-f" => follow = true,
            "-n" => {
                let count = words.next().unwrap_or_default();
                lines = count
                    .parse()
                    .map_err(|_| format!("logs: -n takes a number of lines, not {count:?}"))?;
            }
            flag if flag.starts_with('-') => return Err(format!("logs: unknown option {flag}")),
            _ if name.is_some() => return Err("logs takes one service name".into()),
            _ => name = Some(word),
        }
    }
    let name = name.ok_or("logs needs a service name")?;
    Ok(Request::Logs {
        name,
        follow,
        lines,
    })
}

/// What the bytes a client sent so far amount to (`closed`: it will send
/// no more): the request on its first line, an error, or `None` while the
/// line may still be coming. Closed before a full line, what came is the
/// line.
pub fn request_from(input: &[u8], closed: bool) -> Option<Result<Request, String>> {
    let line_end = input.iter().position(|&b| b == b'\n');
    if line_end.is_none() && !closed {
        if input.len() > MAX_REQUEST {
            return Some(Err(format!("request longer than {MAX_REQUEST} bytes")));
        }
        return None;
    }
    let line = input
        .get(..line_end.unwrap_or(input.len()))
        .unwrap_or_default();
    Some(match std::str::from_utf8(line) {
        Ok(text) => parse_request(text),
        Err(_) => Err("request is not UTF-8".into()),
    })
}

pub struct Reply {
    pub code: i32,
    pub text: String,
}

impl Reply {
    pub fn ok(text: String) -> Reply {
        Reply { code: 0, text }
    }
}

/// The socket of the going that supervises `dir`, as seen by user `euid`.
pub fn default_socket(dir: &Path, euid: u32) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let absolute = std::fs::canonicalize(dir).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .unwrap_or_else(|_| dir.to_path_buf())
    });
    let name = format!(
        "going-{:016x}.sock",
        crate::util::Fnv::hash(absolute.as_os_str().as_bytes())
    );
    if euid == 0 {
        if absolute == Path::new(DEFAULT_DIR) {
            return PathBuf::from("/run/going.sock");
        }
        return Path::new("/run").join(name);
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    match runtime.filter(|d| d.is_dir()) {
        Some(runtime) => runtime.join(name),
        None => PathBuf::from(format!("/tmp/going-{euid}")).join(name),
    }
}

/// The words of the request line and how long the whole exchange may
/// take: a request that waits (`wait`, `-w`) carries its wait (`-t`,
/// default [`DEFAULT_WAIT`]) to going, and the client allows
/// [`WAIT_MARGIN`] more; any other is bounded by `-t` alone.
pub fn client_request(
    mut words: Vec<String>,
    timeout: Option<Duration>,
) -> (Vec<String>, Duration) {
    let waits = words.first().is_some_and(|verb| verb == "wait") || words.iter().any(|w| w == "-w");
    if !waits {
        return (words, timeout.unwrap_or(DEFAULT_CLIENT_TIMEOUT));
    }
    let wait = timeout.unwrap_or(DEFAULT_WAIT);
    let at = 1.min(words.len());
    words.insert(at, "-t".to_string());
    words.insert(at + 1, format!("{}ms", wait.as_millis()));
    (words, wait.saturating_add(WAIT_MARGIN))
}

/// The client side: sends `words` as one request, prints the answer,
/// returns the exit status. `timeout` bounds the whole exchange, so that a
/// going that never answers cannot hold a script or a health check.
pub fn run_client(socket: &Path, words: &[String], timeout: Duration) -> i32 {
    if words.first().is_some_and(|verb| verb == "logs") {
        return logs_client(socket, words, timeout);
    }
    let Some((code, text)) = ask_printing(socket, &words.join(" "), timeout) else {
        return 1;
    };
    // Errors are `going: ...` lines; a status table, or the pids found,
    // are output even when not every named service runs.
    for line in text.split_inclusive('\n') {
        if code != 0 && line.starts_with("going: ") {
            eprint!("{line}");
        } else {
            print!("{line}");
        }
    }
    code
}

/// `going logs`: asks going where the output of NAME goes, then reads
/// the file itself (`tail.rs`): a long `-f` holds no connection open.
fn logs_client(socket: &Path, words: &[String], timeout: Duration) -> i32 {
    let request = parse_request(&words.join(" ")).map_err(|why| eprintln!("going: {why}"));
    let Ok(Request::Logs {
        name,
        follow,
        lines,
    }) = request
    else {
        return 2;
    };
    let Some((code, text)) = ask_printing(socket, &format!("logs {name}"), timeout) else {
        return 1;
    };
    if code != 0 {
        eprint!("{text}");
        return 1;
    }
    match text.strip_prefix(LOG_ANSWER) {
        Some(path) => {
            let path = Path::new(path.strip_suffix('\n').unwrap_or(path));
            crate::tail::run(path, lines, follow)
        }
        None => {
            print!("{}", text.strip_prefix(NO_LOG_ANSWER).unwrap_or(&text));
            0
        }
    }
}

/// The answers to `logs NAME`: `log PATH`, or `none` and then a sentence
/// saying where the output goes.
pub const LOG_ANSWER: &str = "log ";
pub const NO_LOG_ANSWER: &str = "none\n";

/// [`ask`], the failure said on stderr.
fn ask_printing(socket: &Path, line: &str, timeout: Duration) -> Option<(i32, String)> {
    ask(socket, line, timeout)
        .map_err(|(_, why)| eprintln!("going: {}: {why}", socket.display()))
        .ok()
}

/// The exit status and the text going answered.
pub type Answer = Result<(i32, String), Failure>;

/// One request `line`.
pub fn ask(socket: &Path, line: &str, timeout: Duration) -> Answer {
    let answer = exchange(socket, format!("{line}\n").as_bytes(), timeout)?;
    let answer = String::from_utf8_lossy(&answer);
    let (code, text) = answer.split_once('\n').unwrap_or((&answer, ""));
    Ok((code.trim().parse().unwrap_or(1), text.to_string()))
}

/// Why there was no answer, and whether it was for want of a going to
/// connect to.
pub type Failure = (bool, String);

fn failed(connecting: bool, e: &std::io::Error) -> Failure {
    match connecting {
        true => (true, format!("cannot connect: {}", describe_io(e))),
        false => (false, describe_io(e)),
    }
}

fn timed_out(timeout: Duration) -> Failure {
    let why = match timeout.as_millis() {
        ms if ms % 1000 == 0 => format!("no answer within {}s (-t)", ms / 1000),
        ms => format!("no answer within {ms}ms (-t)"),
    };
    (false, why)
}

/// One socket call, bounded by what is left of `timeout` after `start`
/// through SO_SNDTIMEO and SO_RCVTIMEO (a blocking connect to a listener
/// whose backlog is full waits for SO_SNDTIMEO too; a timeout is EAGAIN).
/// `None`: a stop and SIGCONT interrupted it, to be made again.
fn bounded<T>(
    stream: &UnixStream,
    (start, timeout): (Instant, Duration),
    connecting: bool,
    call: impl FnOnce() -> std::io::Result<T>,
) -> Result<Option<T>, Failure> {
    let left = timeout
        .checked_sub(start.elapsed())
        .filter(|left| !left.is_zero())
        .ok_or_else(|| timed_out(timeout))?;
    stream
        .set_write_timeout(Some(left))
        .and_then(|()| stream.set_read_timeout(Some(left)))
        .map_err(|e| failed(connecting, &e))?;
    match call() {
        Ok(value) => Ok(Some(value)),
        Err(e) => match e.kind() {
            std::io::ErrorKind::Interrupted => Ok(None),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                Err(timed_out(timeout))
            }
            _ => Err(failed(connecting, &e)),
        },
    }
}

/// Connects, writes the request and reads the answer to its end, all
/// within `timeout`.
fn exchange(socket: &Path, request: &[u8], timeout: Duration) -> Result<Vec<u8>, Failure> {
    use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let bound = (Instant::now(), timeout);
    let address = UnixAddr::new(socket).map_err(|e| failed(true, &e.into()))?;
    let fd = nix::sys::socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| failed(true, &e.into()))?;
    let stream = UnixStream::from(fd);
    let connect = || match nix::sys::socket::connect(stream.as_raw_fd(), &address) {
        // EISCONN: an interrupted connect went through after all.
        Ok(()) | Err(nix::errno::Errno::EISCONN) => Ok(()),
        Err(errno) => Err(errno.into()),
    };
    while bounded(&stream, bound, true, connect)?.is_none() {}
    let mut sent = 0;
    while let Some(rest) = request.get(sent..).filter(|rest| !rest.is_empty()) {
        // MSG_NOSIGNAL: a going that closed the connection is an error
        // here, not a SIGPIPE that kills the client without a word.
        let send = || {
            nix::sys::socket::send(stream.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL)
                .map_err(std::io::Error::from)
        };
        sent += bounded(&stream, bound, false, send)?.unwrap_or(0);
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = || (&stream).read(&mut buffer);
        match bounded(&stream, bound, false, read)? {
            Some(0) => return Ok(answer),
            Some(n) => answer.extend_from_slice(buffer.get(..n).unwrap_or_default()),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn requests_parse() {
        assert_eq!(
            parse_request("status"),
            Ok(Request::Status {
                json: false,
                names: vec![]
            })
        );
        assert_eq!(
            parse_request("status --json web db\n"),
            Ok(Request::Status {
                json: true,
                names: words(&["web", "db"])
            })
        );
        assert_eq!(
            parse_request("stop web"),
            Ok(Request::Stop(words(&["web"])))
        );
        assert_eq!(
            parse_request("start  a  b"),
            Ok(Request::Start(words(&["a", "b"])))
        );
        assert_eq!(
            parse_request("restart front"),
            Ok(Request::Restart(words(&["front"])))
        );
        assert_eq!(parse_request("reload"), Ok(Request::Reload));
        assert_eq!(parse_request("upgrade"), Ok(Request::Upgrade));
        assert_eq!(
            parse_request("upgrade now"),
            Err("upgrade takes no arguments".into())
        );
        assert_eq!(
            parse_request("logs web"),
            Ok(Request::Logs {
                name: "web".into(),
                follow: false,
                lines: DEFAULT_LOG_LINES
            })
        );
        assert_eq!(
            parse_request("logs -n 3 -f web@1"),
            Ok(Request::Logs {
                name: "web@1".into(),
                follow: true,
                lines: 3
            })
        );
    }

    #[test]
    fn bad_requests_say_why() {
        assert_eq!(
            parse_request("stop"),
            Err("stop needs at least one service or group name".into())
        );
        assert_eq!(
            parse_request("status -x"),
            Err("status: unknown option -x".into())
        );
        assert_eq!(
            parse_request("reload now"),
            Err("reload takes no arguments".into())
        );
        assert_eq!(
            parse_request("dance"),
            Err("unknown request \"dance\"".into())
        );
        assert_eq!(parse_request(""), Err("empty request".into()));
        assert_eq!(
            parse_request("logs"),
            Err("logs needs a service name".into())
        );
        assert_eq!(
            parse_request("logs a b"),
            Err("logs takes one service name".into())
        );
        assert_eq!(
            parse_request("logs -n x a"),
            Err("logs: -n takes a number of lines, not \"x\"".into())
        );
        assert_eq!(
            parse_request("logs -x a"),
            Err("logs: unknown option -x".into())
        );
    }

    #[test]
    fn signal_pid_and_wait_requests_parse() {
        for sig in ["HUP", "SIGHUP", "hup", "1"] {
            assert_eq!(
                parse_request(&format!("signal {sig} web db")),
                Ok(Request::Signal {
                    signal: 1,
                    names: words(&["web", "db"])
                })
            );
        }
        assert_eq!(parse_request("pid web"), Ok(Request::Pid(words(&["web"]))));
        assert_eq!(
            parse_request("wait db"),
            Ok(Request::Wait {
                after: None,
                names: words(&["db"]),
                timeout: DEFAULT_WAIT
            })
        );
        assert_eq!(
            parse_request("wait -t 250ms a b"),
            Ok(Request::Wait {
                after: None,
                names: words(&["a", "b"]),
                timeout: Duration::from_millis(250)
            })
        );
        assert_eq!(
            parse_request("start -w -t 30000ms web"),
            Ok(Request::Wait {
                after: Some(Command::Start),
                names: words(&["web"]),
                timeout: Duration::from_secs(30)
            })
        );
        assert_eq!(
            parse_request("restart -w web"),
            Ok(Request::Wait {
                after: Some(Command::Restart),
                names: words(&["web"]),
                timeout: DEFAULT_WAIT
            })
        );
    }

    #[test]
    fn bad_signal_pid_and_wait_requests_say_why() {
        for (line, why) in [
            ("signal TERMINATE web", "signal: bad signal \"TERMINATE\""),
            ("signal 0 web", "signal: bad signal \"0\""),
            ("signal 64 web", "signal: bad signal \"64\""),
            ("signal", "signal: bad signal \"\""),
            (
                "signal HUP",
                "signal needs at least one service or group name",
            ),
            ("pid", "pid needs at least one service or group name"),
            ("pid -x web", "pid: unknown option -x"),
            (
                "wait -t",
                "wait: -t: bad duration \"\": expected a number with a unit, like \"10s\"",
            ),
            ("wait -t 5", "wait needs at least one service or group name"),
            ("wait -w web", "wait: unknown option -w"),
            ("stop -w web", "stop: unknown option -w"),
        ] {
            assert_eq!(parse_request(line), Err(why.to_string()), "{line}");
        }
    }

    #[test]
    fn waiting_clients_carry_their_wait_and_allow_more() {
        let (sent, exchange) = client_request(words(&["wait", "db"]), None);
        assert_eq!(sent, words(&["wait", "-t", "60000ms", "db"]));
        assert_eq!(exchange, DEFAULT_WAIT + WAIT_MARGIN);
        let (sent, exchange) =
            client_request(words(&["start", "-w", "web"]), Some(Duration::from_secs(2)));
        assert_eq!(sent, words(&["start", "-t", "2000ms", "-w", "web"]));
        assert_eq!(exchange, Duration::from_secs(7));
        assert_eq!(
            parse_request(&sent.join(" ")),
            Ok(Request::Wait {
                after: Some(Command::Start),
                names: words(&["web"]),
                timeout: Duration::from_secs(2)
            })
        );
        let (sent, exchange) = client_request(words(&["pid", "web"]), None);
        assert_eq!(sent, words(&["pid", "web"]));
        assert_eq!(exchange, crate::control::DEFAULT_CLIENT_TIMEOUT);
    }

    #[test]
    fn request_lines_come_in_pieces() {
        assert_eq!(request_from(b"relo", false), None);
        assert_eq!(request_from(b"reload", true), Some(Ok(Request::Reload)));
        assert_eq!(
            request_from(b"reload\nstop a\n", false),
            Some(Ok(Request::Reload))
        );
        assert_eq!(request_from(&[b' '; MAX_REQUEST], false), None);
        assert_eq!(
            request_from(&[b' '; MAX_REQUEST + 1], false),
            Some(Err("request longer than 4096 bytes".into()))
        );
        assert_eq!(
            request_from(b"status \xff\n", false),
            Some(Err("request is not UTF-8".into()))
        );
    }

    #[test]
    fn socket_paths_follow_the_directory() {
        assert_eq!(
            default_socket(Path::new("/etc/going.d"), 0),
            PathBuf::from("/run/going.sock")
        );
        let a = default_socket(Path::new("/nonexistent/a"), 0);
        let b = default_socket(Path::new("/nonexistent/b"), 0);
        assert_ne!(a, b);
        assert!(a.starts_with("/run/") && a.to_string_lossy().ends_with(".sock"));
    }
}
