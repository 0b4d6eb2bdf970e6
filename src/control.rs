//! The control socket: where it lives, its one-line protocol, the server
//! side that the event loop polls, and the client side of `going status`,
//! `start`, `stop`, `restart` and `reload`.
//!
//! Protocol: the client writes one line of blank-separated words; going
//! answers with the exit status on the first line, then the output, and
//! closes the connection.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Connections served at once; more are closed at once.
pub const MAX_CLIENTS: usize = 32;
/// The longest request line.
pub const MAX_REQUEST: usize = 4096;
/// From accept to the last byte of the answer.
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// After accept fails for want of descriptors, the listener rests this long.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

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

/// FNV-1a, 64 bits: a stable short name for a directory.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The socket of the going that supervises `dir`, as seen by user `euid`.
pub fn default_socket(dir: &Path, euid: u32) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let absolute = std::fs::canonicalize(dir).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .unwrap_or_else(|_| dir.to_path_buf())
    });
    let name = format!("going-{:016x}.sock", fnv1a(absolute.as_os_str().as_bytes()));
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

/// For a socket under /tmp: the directory is made private, and must be.
fn private_parent(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let Some(parent) = path.parent().filter(|p| p.starts_with("/tmp/")) else {
        return Ok(());
    };
    let _ = std::fs::DirBuilder::new().mode(0o700).create(parent);
    let meta = std::fs::symlink_metadata(parent)
        .map_err(|e| format!("{}: {}", parent.display(), crate::config::describe_io(&e)))?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is not a private directory of uid {me}",
            parent.display()
        ));
    }
    Ok(())
}

/// Why the socket could not be had.
pub enum BindError {
    /// Another going serves it: going must not start.
    Busy(String),
    /// Anything else: going runs without a control socket.
    Other(String),
}

struct Client {
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    deadline: Instant,
    answered: bool,
}

/// The listening socket and its connections.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    clients: Vec<Client>,
    paused_until: Option<Instant>,
    refused: Refusals,
}

/// Refused connections are logged at most once a second: a flood of them
/// must not become a flood of log lines.
#[derive(Default)]
struct Refusals {
    logged_at: Option<Instant>,
    /// Refused since then, not yet logged.
    unlogged: u64,
}

const REFUSALS_LOGGED_EVERY: Duration = Duration::from_secs(1);

impl Refusals {
    /// A connection from `who` was refused: the line to log now, if any.
    fn refused(&mut self, now: Instant, who: &str) -> Option<String> {
        if self
            .logged_at
            .is_some_and(|at| now < at + REFUSALS_LOGGED_EVERY)
        {
            self.unlogged += 1;
            return None;
        }
        self.logged_at = Some(now);
        Some(match std::mem::take(&mut self.unlogged) {
            0 => format!("refused control connection from {who}"),
            n => format!("refused control connection from {who}, and {n} more before it"),
        })
    }

    /// When the refusals not yet logged are due to be.
    fn due(&self) -> Option<Instant> {
        let at = self.logged_at?;
        (self.unlogged > 0).then(|| at + REFUSALS_LOGGED_EVERY)
    }

    /// The line for the refusals not yet logged, once they are due.
    fn expire(&mut self, now: Instant) -> Option<String> {
        if self.due().is_none_or(|due| now < due) {
            return None;
        }
        self.logged_at = Some(now);
        let n = std::mem::take(&mut self.unlogged);
        Some(format!("refused {n} more control connections"))
    }
}

/// What a poll slot of the server is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Listener,
    Client(usize),
}

impl Server {
    /// Binds `path`, replacing a stale socket; a live one is an error.
    /// `default_path`: the path was derived, not given with `-s`, and its
    /// directory under /tmp must be private.
    pub fn bind(path: &Path, dir: &Path, default_path: bool) -> Result<Server, BindError> {
        if default_path {
            private_parent(path).map_err(BindError::Other)?;
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(BindError::Other(format!(
                    "{} exists and is not a socket",
                    path.display()
                )));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(BindError::Busy(format!(
                    "another going is running on {} (socket {})",
                    dir.display(),
                    path.display()
                )));
            }
            let _ = std::fs::remove_file(path);
        }
        // SAFETY: umask only changes the creation mode of the socket file,
        // which must never exist with wider permissions than 0600.
        let old_mask = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(path);
        // SAFETY: as above.
        unsafe { libc::umask(old_mask) };
        let failed = |e: std::io::Error| {
            BindError::Other(format!(
                "cannot listen on {}: {}",
                path.display(),
                crate::config::describe_io(&e)
            ))
        };
        let listener = bound.map_err(failed)?;
        listener.set_nonblocking(true).map_err(failed)?;
        Ok(Server {
            listener,
            path: path.to_path_buf(),
            clients: Vec::new(),
            paused_until: None,
            refused: Refusals::default(),
        })
    }

    /// Adds the server's descriptors to a poll set.
    pub fn poll_fds(&self, now: Instant, fds: &mut Vec<libc::pollfd>, slots: &mut Vec<Slot>) {
        if self.paused_until.is_none_or(|until| now >= until) {
            fds.push(libc::pollfd {
                fd: self.listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            slots.push(Slot::Listener);
        }
        for (index, client) in self.clients.iter().enumerate() {
            let events = if client.answered {
                libc::POLLOUT
            } else {
                libc::POLLIN
            };
            fds.push(libc::pollfd {
                fd: client.stream.as_raw_fd(),
                events,
                revents: 0,
            });
            slots.push(Slot::Client(index));
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let clients = self.clients.iter().map(|c| c.deadline).min();
        [clients, self.paused_until, self.refused.due()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Accepts every pending connection.
    pub fn accept(&mut self, now: Instant) {
        self.paused_until = None;
        loop {
            // SAFETY: accept4 with no address buffers.
            let fd = unsafe {
                libc::accept4(
                    self.listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                )
            };
            if fd < 0 {
                let errno = nix::errno::Errno::last();
                match errno {
                    nix::errno::Errno::EAGAIN | nix::errno::Errno::ECONNABORTED => {}
                    nix::errno::Errno::EINTR => continue,
                    nix::errno::Errno::EMFILE
                    | nix::errno::Errno::ENFILE
                    | nix::errno::Errno::ENOBUFS
                    | nix::errno::Errno::ENOMEM => {
                        // Not spinning on a listener that cannot accept.
                        self.paused_until = Some(now + ACCEPT_PAUSE);
                    }
                    other => log::warn!("accept on {}: {}", self.path.display(), other.desc()),
                }
                return;
            }
            // SAFETY: accept4 returned a new descriptor that we now own.
            let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
            if let Err(who) = peer_allowed(fd) {
                if let Some(line) = self.refused.refused(now, &who) {
                    log::warn!("{line}");
                }
                continue; // dropped: closed
            }
            if self.clients.len() >= MAX_CLIENTS {
                continue; // dropped: closed
            }
            self.clients.push(Client {
                stream,
                input: Vec::new(),
                output: Vec::new(),
                written: 0,
                deadline: now + CLIENT_DEADLINE,
                answered: false,
            });
        }
    }

    /// Reads from a readable client; a complete request line comes back.
    pub fn read(&mut self, index: usize) -> Option<Result<Request, String>> {
        let client = self.clients.get_mut(index)?;
        if client.answered {
            return None;
        }
        let mut buffer = [0u8; 512];
        loop {
            match client.stream.read(&mut buffer) {
                Ok(0) => {
                    if client.input.is_empty() {
                        client.deadline = Instant::now();
                        return None;
                    }
                    return request_from(&client.input, true);
                }
                Ok(n) => {
                    client
                        .input
                        .extend_from_slice(buffer.get(..n).unwrap_or_default());
                    if let Some(request) = request_from(&client.input, false) {
                        return Some(request);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
    }

    /// Queues the answer for a client and starts writing it.
    pub fn answer(&mut self, index: usize, reply: Reply) {
        let Some(client) = self.clients.get_mut(index) else {
            return;
        };
        client.output = format!("{}\n{}", reply.code, reply.text).into_bytes();
        client.input = Vec::new();
        client.answered = true;
        self.write(index);
    }

    /// Writes what a writable client can take.
    pub fn write(&mut self, index: usize) {
        let Some(client) = self.clients.get_mut(index) else {
            return;
        };
        if !client.answered {
            return; // still reading its request, which may come in pieces
        }
        while client.written < client.output.len() {
            let rest = client.output.get(client.written..).unwrap_or_default();
            match client.stream.write(rest) {
                Ok(0) => break,
                Ok(n) => client.written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        // Done, or the client is gone: close it now.
        client.deadline = Instant::now();
        client.output = Vec::new();
    }

    /// Closes clients that are done or out of time.
    pub fn expire(&mut self, now: Instant) {
        self.clients.retain(|client| client.deadline > now);
        if let Some(line) = self.refused.expire(now) {
            log::warn!("{line}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Only root and going's own user may control it; others are closed (and
/// logged, see [`Refusals`]): `Err` names them.
fn peer_allowed(fd: RawFd) -> Result<(), String> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`.
    let got = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if got == 0 && (cred.uid == 0 || cred.uid == me) {
        return Ok(());
    }
    Err(format!("uid {}, pid {}", cred.uid, cred.pid))
}

/// The client side: sends `words` as one request, prints the answer,
/// returns the exit status.
pub fn run_client(socket: &Path, words: &[String]) -> i32 {
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!(
                "going: cannot connect to {}: {}",
                socket.display(),
                crate::config::describe_io(&e)
            );
            return 1;
        }
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let request = format!("{}\n", words.join(" "));
    if let Err(e) = stream.write_all(request.as_bytes()) {
        eprintln!(
            "going: {}: {}",
            socket.display(),
            crate::config::describe_io(&e)
        );
        return 1;
    }
    let mut answer = Vec::new();
    if let Err(e) = stream.read_to_end(&mut answer) {
        eprintln!(
            "going: {}: {}",
            socket.display(),
            crate::config::describe_io(&e)
        );
        return 1;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_at_most_once_a_second_with_a_count() {
        let mut refusals = Refusals::default();
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(
            refusals.refused(at(0), "uid 7, pid 9").as_deref(),
            Some("refused control connection from uid 7, pid 9")
        );
        assert_eq!(refusals.due(), None);
        for ms in 1..2000 {
            assert_eq!(refusals.refused(at(ms / 2), "uid 7, pid 9"), None);
        }
        assert_eq!(refusals.due(), Some(at(1000)));
        assert_eq!(refusals.expire(at(999)), None);
        assert_eq!(
            refusals.expire(at(1000)).as_deref(),
            Some("refused 1999 more control connections")
        );
        assert_eq!(refusals.due(), None);
        assert_eq!(refusals.expire(at(5000)), None);
        assert_eq!(refusals.refused(at(1500), "uid 8, pid 1"), None);
        assert_eq!(
            refusals.refused(at(2000), "uid 8, pid 2").as_deref(),
            Some("refused control connection from uid 8, pid 2, and 1 more before it")
        );
    }

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
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
