//! The control socket's server side, a part of the loop: the listener and
//! its clients, each read and written without blocking and closed at a
//! deadline, and the answers to their requests (`control.rs` has the
//! protocol).

use crate::control::{Reply, Request, request_from};
use crate::part::{Cx, Notice, Part, PollSet};
use crate::status;
use crate::supervisor::Command;
use nix::poll::PollFlags;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Connections served at once; more are closed at once.
pub const MAX_CLIENTS: usize = 32;
/// From accept to the last byte of the answer.
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// After accept fails for want of descriptors, the listener rests this long.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The part: the server, when going has a socket.
pub struct ControlServer {
    server: Option<Server>,
    /// The service directory, as `reload` logs it.
    dir: PathBuf,
}

impl ControlServer {
    pub fn new(server: Option<Server>, dir: &Path) -> ControlServer {
        let dir = dir.to_path_buf();
        ControlServer { server, dir }
    }
}

/// The listener's poll token; a client's is its index.
const LISTENER: u32 = u32::MAX;

impl Part for ControlServer {
    fn fds<'a>(&'a self, set: &mut PollSet<'a>) {
        let Some(server) = &self.server else { return };
        if server
            .paused_until
            .is_none_or(|until| Instant::now() >= until)
        {
            set.read(server.listener.as_fd(), LISTENER);
        }
        for (index, client) in server.clients.iter().enumerate() {
            let events = if client.answered {
                PollFlags::POLLOUT
            } else {
                PollFlags::POLLIN
            };
            set.add(client.stream.as_fd(), events, index as u32);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let server = self.server.as_ref()?;
        let clients = server.clients.iter().map(|c| c.deadline).min();
        [clients, server.paused_until].into_iter().flatten().min()
    }

    fn due(&mut self, cx: &mut Cx<'_>) {
        if let Some(server) = &mut self.server {
            server.clients.retain(|client| client.deadline > cx.now);
        }
    }

    fn ready(&mut self, token: u32, _revents: PollFlags, cx: &mut Cx<'_>) {
        let Some(server) = &mut self.server else {
            return;
        };
        if token == LISTENER {
            return server.accept(cx.now);
        }
        let dir = &self.dir;
        let index = token as usize;
        server.write(index);
        let Some(request) = server.read(index) else {
            return;
        };
        let reply = match request {
            Ok(request) => answer(request, dir, cx),
            Err(why) => Reply::error(&why),
        };
        server.answer(index, reply);
    }
}

/// What going answers a request.
fn answer(request: Request, dir: &Path, cx: &mut Cx<'_>) -> Reply {
    let command = match request {
        Request::Status { json, names } => return status_reply(json, &names, cx),
        Request::Reload => {
            log::info!("reload requested, rescanning {}", dir.display());
            cx.out.notices.push(Notice::Rescan);
            return Reply::ok(String::new());
        }
        Request::Start(names) => (Command::Start, names),
        Request::Stop(names) => (Command::Stop, names),
        Request::Restart(names) => (Command::Restart, names),
    };
    match cx.supervisor.command(command.0, &command.1, cx.now) {
        Ok(work) => {
            cx.out.work.extend(work);
            Reply::ok(String::new())
        }
        Err(why) => Reply::error(&why),
    }
}

/// `going status [--json] [NAME...]`: exit 0 unless a named service is not
/// running.
fn status_reply(json: bool, names: &[String], cx: &mut Cx<'_>) -> Reply {
    let supervisor = &*cx.supervisor;
    let selected = if names.is_empty() {
        Ok(supervisor.names().map(str::to_string).collect::<Vec<_>>())
    } else {
        supervisor.select(names)
    };
    let selected = match selected {
        Ok(selected) => selected,
        Err(why) => return Reply::error(&why),
    };
    let rows: Vec<status::Row<'_>> = supervisor
        .services()
        .filter(|s| selected.iter().any(|n| n == s.name()))
        .map(|service| status::Row {
            service,
            stats: service.pid().and_then(status::proc_stats),
        })
        .collect();
    let host = status::Host::read(status::going_uptime());
    let text = if json {
        status::json(&host, &rows, cx.now, std::time::SystemTime::now())
    } else {
        status::text(&host, &rows, cx.now, std::time::SystemTime::now())
    };
    let all_running = rows
        .iter()
        .all(|r| r.service.state() == crate::service::State::Running);
    let code = i32::from(!names.is_empty() && !all_running);
    Reply { code, text }
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
    let me = nix::unistd::geteuid().as_raw();
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
        // The socket file must never exist with wider permissions than 0600.
        let old_mask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(path);
        nix::sys::stat::umask(old_mask);
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
        })
    }

    /// Accepts every pending connection.
    pub fn accept(&mut self, now: Instant) {
        self.paused_until = None;
        loop {
            use nix::sys::socket::{SockFlag, accept4};
            let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
            let fd = match accept4(self.listener.as_raw_fd(), flags) {
                Ok(fd) => fd,
                Err(errno) => {
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
            };
            // SAFETY: accept4 returned a new descriptor that we now own.
            let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
            if !peer_allowed(&stream) || self.clients.len() >= MAX_CLIENTS {
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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Only root and going's own user may control it; others are logged once
/// a connection and closed.
fn peer_allowed(stream: &UnixStream) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let Ok(cred) = getsockopt(stream, PeerCredentials) else {
        log::warn!("refused control connection: its credentials cannot be read");
        return false;
    };
    let me = nix::unistd::geteuid().as_raw();
    if cred.uid() == 0 || cred.uid() == me {
        return true;
    }
    log::warn!(
        "refused control connection from uid {}, pid {}",
        cred.uid(),
        cred.pid()
    );
    false
}
