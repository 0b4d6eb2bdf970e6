//! The control socket: where it lives, its one-line protocol, and the
//! client side of `going status`, `start`, `stop`, `restart` and `reload`
//! (the server side is the loop's part `control_server.rs`).
//!
//! Protocol: the client writes one line of blank-separated words; going
//! answers with the exit status on the first line, then the output, and
//! closes the connection.

use std::io::Read;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest request line.
pub const MAX_REQUEST: usize = 4096;

/// What a client asks.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Status { json: bool, names: Vec<String> },
    Start(Vec<String>),
    Stop(Vec<String>),
    Restart(Vec<String>),
    Reload,
}

pub fn parse_request(line: &str) -> Result<Request, String> {
    let mut words = line.split_whitespace().map(String::from);
    let verb = words.next().unwrap_or_default();
    let rest: Vec<String> = words.collect();
    let names = |rest: Vec<String>| -> Result<Vec<String>, String> {
        if rest.is_empty() {
            return Err(format!("{verb} needs at least one service or group name"));
        }
        match rest.iter().find(|w| w.starts_with('-')) {
            Some(flag) => Err(format!("{verb}: unknown option {flag}")),
            None => Ok(rest),
        }
    };
    match verb.as_str() {
        "status" => {
            let json = rest.iter().any(|w| w == "--json");
            let names: Vec<String> = rest.into_iter().filter(|w| w != "--json").collect();
            match names.iter().find(|w| w.starts_with('-')) {
                Some(flag) => Err(format!("status: unknown option {flag}")),
                None => Ok(Request::Status { json, names }),
            }
        }
        "start" => names(rest).map(Request::Start),
        "stop" => names(rest).map(Request::Stop),
        "restart" => names(rest).map(Request::Restart),
        "reload" if rest.is_empty() => Ok(Request::Reload),
        "reload" => Err("reload takes no arguments".into()),
        "" => Err("empty request".into()),
        other => Err(format!("unknown request {other:?}")),
    }
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

/// The answer to a request.
pub struct Reply {
    pub code: i32,
    pub text: String,
}

impl Reply {
    pub fn ok(text: String) -> Reply {
        Reply { code: 0, text }
    }

    pub fn error(why: &str) -> Reply {
        Reply {
            code: 1,
            text: format!("going: {why}\n"),
        }
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
        if absolute == Path::new(crate::args::DEFAULT_DIR) {
            return PathBuf::from("/run/going.sock");
        }
        return Path::new("/run").join(name);
    }
    match std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
    {
        Some(runtime) => runtime.join(name),
        None => PathBuf::from(format!("/tmp/going-{euid}")).join(name),
    }
}

/// The client side: sends `words` as one request, prints the answer,
/// returns the exit status. `timeout` bounds the whole exchange, so that a
/// going that never answers cannot hold a script or a health check.
pub fn run_client(socket: &Path, words: &[String], timeout: Duration) -> i32 {
    let request = format!("{}\n", words.join(" "));
    let answer = match exchange(socket, request.as_bytes(), Instant::now() + timeout) {
        Ok(answer) => answer,
        Err(why) => {
            let why = match why {
                ClientError::Connect(e) => format!("cannot connect: {}", describe(&e)),
                ClientError::Exchange(e) => describe(&e),
                ClientError::TimedOut => match timeout.as_millis() {
                    ms if ms % 1000 == 0 => format!("no answer within {}s (-t)", ms / 1000),
                    ms => format!("no answer within {ms}ms (-t)"),
                },
            };
            eprintln!("going: {}: {why}", socket.display());
            return 1;
        }
    };
    let answer = String::from_utf8_lossy(&answer);
    let (code, text) = answer.split_once('\n').unwrap_or((&answer, ""));
    let code: i32 = code.trim().parse().unwrap_or(1);
    // Errors are `going: ...` lines; a status table is output even when
    // not every named service runs.
    if code != 0 && text.starts_with("going: ") {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    code
}

/// One request for a program (`going add` waiting): the exit status and
/// the text going answered, or why there was no answer and whether it was
/// for want of a going to connect to.
pub fn ask(
    socket: &Path,
    words: &[&str],
    timeout: Duration,
) -> Result<(i32, String), (bool, String)> {
    let request = format!("{}\n", words.join(" "));
    match exchange(socket, request.as_bytes(), Instant::now() + timeout) {
        Ok(answer) => {
            let answer = String::from_utf8_lossy(&answer);
            let (code, text) = answer.split_once('\n').unwrap_or((&answer, ""));
            Ok((code.trim().parse().unwrap_or(1), text.to_string()))
        }
        Err(ClientError::Connect(e)) => Err((true, format!("cannot connect: {}", describe(&e)))),
        Err(ClientError::Exchange(e)) => Err((false, describe(&e))),
        Err(ClientError::TimedOut) => Err((false, "no answer".into())),
    }
}

enum ClientError {
    Connect(std::io::Error),
    Exchange(std::io::Error),
    TimedOut,
}

fn describe(e: &std::io::Error) -> String {
    crate::config::describe_io(e)
}

/// What is left of the time until `deadline`, or `TimedOut`.
fn remaining(deadline: Instant) -> Result<Duration, ClientError> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(left) if !left.is_zero() => Ok(left),
        _ => Err(ClientError::TimedOut),
    }
}

/// One socket call, bounded by what is left before `deadline` through
/// SO_SNDTIMEO and SO_RCVTIMEO (a blocking connect to a listener whose
/// backlog is full waits for SO_SNDTIMEO too; a timeout is EAGAIN). `None`:
/// a stop and SIGCONT interrupted it, to be made again.
fn bounded<T>(
    stream: &UnixStream,
    deadline: Instant,
    wrap: fn(std::io::Error) -> ClientError,
    call: impl FnOnce() -> std::io::Result<T>,
) -> Result<Option<T>, ClientError> {
    let left = remaining(deadline)?;
    stream
        .set_write_timeout(Some(left))
        .and_then(|()| stream.set_read_timeout(Some(left)))
        .map_err(wrap)?;
    match call() {
        Ok(value) => Ok(Some(value)),
        Err(e) => match e.kind() {
            std::io::ErrorKind::Interrupted => Ok(None),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                Err(ClientError::TimedOut)
            }
            _ => Err(wrap(e)),
        },
    }
}

/// Connects, writes the request and reads the answer to its end, all
/// before `deadline`.
fn exchange(socket: &Path, request: &[u8], deadline: Instant) -> Result<Vec<u8>, ClientError> {
    use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let nix_error = |errno: nix::errno::Errno| std::io::Error::from_raw_os_error(errno as i32);
    let address = UnixAddr::new(socket).map_err(|e| ClientError::Connect(nix_error(e)))?;
    let fd = nix::sys::socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| ClientError::Connect(nix_error(e)))?;
    let stream = UnixStream::from(fd);
    let connect = || match nix::sys::socket::connect(stream.as_raw_fd(), &address) {
        // EISCONN: an interrupted connect went through after all.
        Ok(()) | Err(nix::errno::Errno::EISCONN) => Ok(()),
        Err(errno) => Err(nix_error(errno)),
    };
    while bounded(&stream, deadline, ClientError::Connect, connect)?.is_none() {}
    let mut sent = 0;
    while let Some(rest) = request.get(sent..).filter(|rest| !rest.is_empty()) {
        // MSG_NOSIGNAL: a going that closed the connection is an error
        // here, not a SIGPIPE that kills the client without a word.
        let send = || {
            nix::sys::socket::send(stream.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL)
                .map_err(nix_error)
        };
        sent += bounded(&stream, deadline, ClientError::Exchange, send)?.unwrap_or(0);
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = || (&stream).read(&mut buffer);
        match bounded(&stream, deadline, ClientError::Exchange, read)? {
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
