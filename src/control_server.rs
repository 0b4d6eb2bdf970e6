//! The control socket's server side, a part of the loop: the listener and
//! its clients, each read and written without blocking and closed at a
//! deadline, and the answers to their requests (`control.rs` has the
//! protocol). A `wait` is held, its client waiting, and looked at again
//! once a loop turn until it can be answered.

use crate::control::{LOG_ANSWER, NO_LOG_ANSWER, Reply, Request, request_from};
use crate::part::{Cx, Notice, Part, PollSet};
use crate::service::{Exit, Service, State};
use crate::status;
use crate::supervisor::{Command, Supervisor};
use crate::util::{describe_io, format_duration};
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
            } else if client.wait.is_some() {
                // Held: only its hang-up, which poll always reports.
                PollFlags::empty()
            } else {
                PollFlags::POLLIN
            };
            set.add(client.stream.as_fd(), events, index as u32);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let server = self.server.as_ref()?;
        let clients = server.clients.iter();
        let times = clients.flat_map(|c| [Some(c.deadline), c.wait.as_ref().map(|w| w.until)]);
        let others = [server.paused_until, server.refused.due()];
        times.chain(others).flatten().min()
    }

    fn due(&mut self, cx: &mut Cx<'_>) {
        if let Some(server) = &mut self.server {
            server.clients.retain(|client| client.deadline > cx.now);
            if let Some(line) = server.refused.expire(cx.now) {
                log::warn!("{line}");
            }
        }
    }

    fn ready(&mut self, token: u32, revents: PollFlags, cx: &mut Cx<'_>) {
        let Some(server) = &mut self.server else {
            return;
        };
        if token == LISTENER {
            return server.accept(cx.now);
        }
        let dir = &self.dir;
        let index = token as usize;
        if let Some(held) = server.clients.get_mut(index).filter(|c| c.wait.is_some()) {
            if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                // It gave up waiting: closed at the next deadline check.
                held.wait = None;
                held.deadline = Instant::now();
            }
            return;
        }
        server.write(index);
        let Some(request) = server.read(index) else {
            return;
        };
        let reply = match request {
            Ok(Request::Wait {
                after,
                names,
                timeout,
            }) => match begin_wait(after, &names, timeout, cx) {
                Ok(wait) => return server.hold(index, wait),
                Err(why) => Err(why),
            },
            Ok(Request::Status { json, names }) => {
                return server.answer_with(index, |out| status(json, &names, dir, cx, out));
            }
            request => request.and_then(|request| answer(request, dir, cx)),
        };
        match reply {
            Ok(reply) => server.answer(index, reply),
            Err(why) => server.answer_with(index, |out| write!(out, "1\ngoing: {why}\n")),
        }
    }

    fn before_sleep(&mut self, cx: &mut Cx<'_>) {
        let Some(server) = &mut self.server else {
            return;
        };
        for index in 0..server.clients.len() {
            let wait = server.clients.get(index).and_then(|c| c.wait.as_ref());
            if let Some(reply) = wait.and_then(|wait| wait.outcome(cx.supervisor, cx.now)) {
                server.answer(index, reply);
            }
        }
    }
}

/// What going answers a request (a status and a wait are answered apart).
fn answer(request: Request, dir: &Path, cx: &mut Cx<'_>) -> Result<Reply, String> {
    let (command, names) = match request {
        Request::Status { .. } | Request::Wait { .. } => return Err("not answered here".into()),
        Request::Reload => {
            log::info!("reload requested, rescanning {}", dir.display());
            cx.out.notices.push(Notice::Rescan);
            return Ok(Reply::ok(String::new()));
        }
        // The answer is written (it fits any socket buffer) before the
        // loop carries out the notice and execs, so the client reads 0 and
        // then the close of a descriptor the exec does not keep. A failed
        // exec is logged, and going carries on as it was.
        Request::Upgrade if cx.supervisor.is_shutting_down() => {
            return Err("shutting down, not upgrading".into());
        }
        Request::Upgrade => {
            log::info!("upgrade requested");
            cx.out.notices.push(Notice::Upgrade);
            return Ok(Reply::ok(String::new()));
        }
        Request::Logs { name, .. } => return logs_reply(&name, cx),
        Request::Start(names) => (Command::Start, names),
        Request::Stop(names) => (Command::Stop, names),
        Request::Restart(names) => (Command::Restart, names),
        Request::Signal { signal, names } => return pid_reply(Some(signal), &names, cx),
        Request::Pid(names) => return pid_reply(None, &names, cx),
    };
    let work = cx.supervisor.command(command, &names, cx.now)?;
    cx.out.work.extend(work);
    Ok(Reply::ok(String::new()))
}

/// `going status [--json] [NAME...]`, written to `out` as it is made:
/// exit 0 unless a named service is not running and ready (a health check
/// must not pass before then).
fn status(
    json: bool,
    names: &[String],
    dir: &Path,
    cx: &mut Cx<'_>,
    out: &mut dyn std::fmt::Write,
) -> std::fmt::Result {
    let supervisor = &*cx.supervisor;
    let selected = match supervisor.select(names) {
        Ok(selected) => selected,
        Err(why) => return write!(out, "1\ngoing: {why}\n"),
    };
    let rows: Vec<status::Row<'_>> = supervisor
        .services()
        .filter(|s| names.is_empty() || selected.iter().any(|n| n == s.name()))
        .map(|service| status::Row {
            service,
            stats: service.pid().and_then(status::proc_stats),
            file: json
                .then(|| crate::config::file_of(dir, service.base_name()))
                .flatten(),
        })
        .collect();
    let all_ready = rows
        .iter()
        .all(|r| r.service.state() == State::Running && r.service.is_ready());
    writeln!(out, "{}", i32::from(!names.is_empty() && !all_ready))?;
    let host = status::Host::read(status::going_uptime());
    let wall_now = std::time::SystemTime::now();
    match json {
        true => status::write_json(out, &host, &rows, cx.now, wall_now),
        false => status::write_text(out, &host, &rows, cx.now, wall_now),
    }
}

/// `going pid NAME...` (`signal`: `None`): the pid of each service that
/// has a process, one a line, in the order named. `going signal SIG
/// NAME...`: SIG to each service's own process, not its group (a reload
/// is the main process's to pass on: nginx's master, not its workers).
/// Exit 1, with a line for each, when some have no process.
fn pid_reply(signal: Option<i32>, words: &[String], cx: &Cx<'_>) -> Result<Reply, String> {
    use nix::sys::signal::{Signal, kill};
    let mut names: Vec<String> = Vec::new();
    for word in words {
        for name in cx.supervisor.select(std::slice::from_ref(word))? {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let sent = match signal.map(Signal::try_from) {
        Some(Err(_)) => return Err(format!("bad signal {}", signal.unwrap_or_default())),
        sent => sent.and_then(Result::ok),
    };
    let (mut text, mut errors) = (String::new(), String::new());
    for name in names {
        let Some(pid) = cx.supervisor.get(&name).and_then(Service::pid) else {
            errors.push_str(&format!("going: {name} is not running\n"));
            continue;
        };
        match sent.map(|sent| kill(nix::unistd::Pid::from_raw(pid), sent)) {
            None => text.push_str(&format!("{pid}\n")),
            Some(Ok(())) => log::info!(
                target: &name,
                "signal {} sent to pid {pid} (going signal)",
                crate::signals::name(signal.unwrap_or_default())
            ),
            Some(Err(errno)) => errors.push_str(&format!(
                "going: {name}: cannot signal pid {pid}: {}\n",
                errno.desc()
            )),
        }
    }
    let code = i32::from(!errors.is_empty());
    text.push_str(&errors);
    Ok(Reply { code, text })
}

/// A `wait`, `start -w` or `restart -w` until it can be answered.
struct Wait {
    /// Each service, and after `start -w` or `restart -w` the service as
    /// the command found it, whose run does not count (`None`: any run
    /// will do).
    services: Vec<(String, Option<Seen>)>,
    until: Instant,
    timeout: Duration,
}

/// What a wait reads of a service, through its accessors only.
#[derive(Clone, Copy, Debug)]
struct Seen {
    state: State,
    ready: bool,
    started_at: Option<Instant>,
    restarts: u32,
    last_exit: Option<Exit>,
    admin_down: bool,
    /// `restart = "never"`: done when it has exited with status 0.
    one_shot: bool,
}

impl Seen {
    fn of(service: &Service) -> Seen {
        Seen {
            state: service.state(),
            ready: service.is_ready(),
            started_at: service.started_at(),
            restarts: service.restarts(),
            last_exit: service.last_exit(),
            admin_down: service.is_admin_down(),
            one_shot: service.spec.restart == crate::config::Restart::Never,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Ready,
    /// Not yet, and why.
    Pending(String),
    /// Never, and why.
    Failed(String),
}

/// Where a service waited for stands: ready when running and ready, or
/// when it has exited with status 0 and its policy does not restart it (a
/// one-shot, `restart = "never"`, only then). It has ended for good when it is
/// gone, disabled, down by `going stop`, exited (its restart policy
/// does not restart it) other than with status 0, or when going shuts
/// down; after `start -w` or `restart -w`, also when its new run ended or
/// could not be started (a restart or a backoff since the command). A
/// service in backoff otherwise is still on its way up.
fn verdict(seen: Option<Seen>, before: Option<Seen>, shutting_down: bool) -> Verdict {
    let Some(s) = seen else {
        return Verdict::Failed("removed".into());
    };
    // After a command, only a run that began after it counts: a restart
    // is not over while the old process still runs.
    let new_run = before.is_none_or(|b| s.started_at != b.started_at);
    if s.state == State::Running && s.ready && new_run && !s.one_shot {
        return Verdict::Ready;
    }
    if shutting_down {
        return Verdict::Failed("going is shutting down".into());
    }
    if s.admin_down {
        return Verdict::Failed("stopped by going stop".into());
    }
    let ended = || match s.last_exit.filter(|_| new_run) {
        Some(Exit::Code(code)) => format!("exited with status {code}"),
        Some(Exit::Signal(signal)) => format!("killed by signal {}", crate::signals::name(signal)),
        Some(Exit::Unknown) => "ended (status unknown)".to_string(),
        None => "could not be started".to_string(),
    };
    let failed_start = before.is_some_and(|b| s.state == State::Backoff || s.restarts > b.restarts);
    match s.state {
        State::Disabled => Verdict::Failed("disabled (enabled = false)".into()),
        State::Exited if new_run && s.last_exit == Some(Exit::Code(0)) => Verdict::Ready,
        State::Exited => Verdict::Failed(format!("{}, not restarted", ended())),
        _ if failed_start => Verdict::Failed(format!("failed to start: {}", ended())),
        State::Running if s.one_shot => Verdict::Pending("running, not exited yet".into()),
        State::Running => Verdict::Pending("running, not ready".into()),
        State::Backoff => Verdict::Pending(format!("in backoff, {}", ended())),
        other => Verdict::Pending(other.name().into()),
    }
}

/// Starts a wait: carries out its command, if any, and notes what each
/// service's run was before it.
fn begin_wait(
    after: Option<Command>,
    words: &[String],
    timeout: Duration,
    cx: &mut Cx<'_>,
) -> Result<Wait, String> {
    let names = cx.supervisor.select(words)?;
    let services = names
        .into_iter()
        .map(|name| {
            let before = cx.supervisor.get(&name).filter(|s| {
                // A start leaves a service on its way up alone: its run counts.
                after == Some(Command::Restart)
                    || after == Some(Command::Start)
                        && !matches!(s.state(), State::Starting | State::Running)
            });
            (name, before.map(Seen::of))
        })
        .collect();
    if let Some(command) = after {
        let work = cx.supervisor.command(command, words, cx.now)?;
        cx.out.work.extend(work);
    }
    Ok(Wait {
        services,
        until: cx.now + timeout,
        timeout,
    })
}

impl Wait {
    /// The answer, once there is one: 0 when every service is ready, 1
    /// with a line for each that failed, or at the end of the wait for
    /// each still not ready.
    fn outcome(&self, supervisor: &Supervisor, now: Instant) -> Option<Reply> {
        let shutting_down = supervisor.is_shutting_down();
        let mut failed = String::new();
        let mut pending = String::new();
        for (name, before) in &self.services {
            let seen = supervisor.get(name).map(Seen::of);
            match verdict(seen, *before, shutting_down) {
                Verdict::Ready => {}
                Verdict::Failed(why) => failed.push_str(&format!("going: {name}: {why}\n")),
                Verdict::Pending(why) => pending.push_str(&format!(
                    "going: {name}: not ready within {} ({why})\n",
                    format_duration(self.timeout)
                )),
            }
        }
        // Failed at once; ready, or pending at the end of the wait.
        let done = !failed.is_empty() || pending.is_empty() || now >= self.until;
        let text = if failed.is_empty() { pending } else { failed };
        done.then(|| Reply {
            code: i32::from(!text.is_empty()),
            text,
        })
    }
}

/// `going logs NAME`: the path of its log, or where its output goes. A
/// file's name with several instances will do when they share one log.
fn logs_reply(name: &str, cx: &mut Cx<'_>) -> Result<Reply, String> {
    use crate::config::Output;
    let selected = cx.supervisor.select(&[name.to_string()])?;
    let specs: Vec<_> = cx
        .supervisor
        .services()
        .filter(|s| selected.iter().any(|n| n == s.name()))
        .map(|s| &s.spec)
        .collect();
    let spec = specs
        .first()
        .ok_or_else(|| format!("unknown service or group: {name}"))?;
    if specs
        .iter()
        .any(|other| other.log().map(|l| &l.path) != spec.log().map(|l| &l.path))
    {
        return Err(format!(
            "{name} names {} services; logs takes one: {}",
            selected.len(),
            selected.join(", ")
        ));
    }
    if let Some(path) = spec.log().map(|l| &l.path) {
        return Ok(Reply::ok(format!("{LOG_ANSWER}{}\n", path.display())));
    }
    let place = |output: &Output, stream: &str| match output {
        Output::Inherit => format!("going's own {stream} (inherit)"),
        Output::Null => "/dev/null (null)".to_string(),
        Output::Syslog => "going's log (syslog)".to_string(),
        Output::File(path) => path.display().to_string(),
    };
    let text = match (&spec.stdout, &spec.stderr) {
        (Output::Inherit, Output::Inherit) => {
            format!("{name} has no log file: its stdout and stderr are going's own (inherit)")
        }
        (stdout, stderr) if stdout == stderr => format!(
            "{name} has no log file: its stdout and stderr go to {}",
            place(stdout, "stdout")
        ),
        (stdout, stderr) => format!(
            "{name} has no log file: its stdout goes to {}, its stderr to {}",
            place(stdout, "stdout"),
            place(stderr, "stderr")
        ),
    };
    Ok(Reply::ok(format!("{NO_LOG_ANSWER}{text}\n")))
}

/// For a socket under /tmp: the directory is made private, and must be.
fn private_parent(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let Some(parent) = path.parent().filter(|p| p.starts_with("/tmp/")) else {
        return Ok(());
    };
    let _ = std::fs::DirBuilder::new().mode(0o700).create(parent);
    let meta = std::fs::symlink_metadata(parent)
        .map_err(|e| format!("{}: {}", parent.display(), describe_io(&e)))?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is not a private directory of uid {me}",
            parent.display()
        ));
    }
    Ok(())
}

/// Takes the lock that says which going serves `socket`: an flock, which
/// dies with its holder, unlike a socket that a child cloned but not yet
/// exec'd still holds open. Such a child of a going just killed holds the
/// lock too, until its exec closes it (it is close-on-exec): a few tries
/// over half a second wait that out.
fn lock(socket: &Path, dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, BindError> {
    use nix::fcntl::{Flock, FlockArg, OFlag};
    use nix::{errno::Errno, sys::stat::Mode};
    let path = socket.with_extension("lock");
    let cannot = |errno: Errno| {
        BindError::Other(format!("cannot lock {}: {}", path.display(), errno.desc()))
    };
    // Read-only: an flock needs no more, and a descriptor open for
    // writing would keep the runtime directory from a read-only remount.
    let flags = OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let mut file = nix::fcntl::open(&path, flags, Mode::from_bits_truncate(0o600))
        .map(std::fs::File::from)
        .map_err(cannot)?;
    for _ in 0..50 {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((back, Errno::EWOULDBLOCK)) => file = back,
            Err((_, errno)) => return Err(cannot(errno)),
        }
        // Start-up, before the loop: nothing else waits meanwhile.
        let _ = nix::poll::poll(&mut [], nix::poll::PollTimeout::from(10u8));
    }
    Err(BindError::Busy(format!(
        "another going is running on {} (socket {})",
        dir.display(),
        socket.display()
    )))
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
    deadline: Instant,
    answered: bool,
    /// A wait held until it can be answered.
    wait: Option<Wait>,
}

/// What an answer written as it is made has room for before it goes to
/// the socket (on the stack).
const SPILL_CHUNK: usize = 4096;

/// Writes to a client's socket in chunks, without blocking; what the
/// socket does not take is kept, in order, for the loop to write later.
struct Spill<'a> {
    stream: &'a UnixStream,
    chunk: [u8; SPILL_CHUNK],
    len: usize,
    /// Not taken by the socket yet: everything after it goes here too.
    kept: Vec<u8>,
    /// The client is gone: the rest is dropped.
    gone: bool,
}

impl Spill<'_> {
    fn flush(&mut self) {
        let pending = self.chunk.get(..self.len).unwrap_or_default();
        self.len = 0;
        if self.gone {
            return;
        }
        if !self.kept.is_empty() {
            return self.kept.extend_from_slice(pending);
        }
        match send(self.stream, pending) {
            Some(sent) => self
                .kept
                .extend_from_slice(pending.get(sent..).unwrap_or_default()),
            None => self.gone = true,
        }
    }
}

/// Writes what a client's socket takes of `bytes` without blocking: how
/// much, or `None` once the client is gone.
fn send(mut stream: &UnixStream, bytes: &[u8]) -> Option<usize> {
    let mut sent = 0;
    while let Some(rest) = bytes.get(sent..).filter(|rest| !rest.is_empty()) {
        match stream.write(rest) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Ok(0) | Err(_) => return None,
            Ok(n) => sent += n,
        }
    }
    Some(sent)
}

impl std::fmt::Write for Spill<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        for piece in text.as_bytes().chunks(SPILL_CHUNK) {
            if self.len + piece.len() > SPILL_CHUNK {
                self.flush();
            }
            if let Some(room) = self.chunk.get_mut(self.len..self.len + piece.len()) {
                room.copy_from_slice(piece);
                self.len += piece.len();
            }
        }
        Ok(())
    }
}

/// The listening socket and its connections.
pub struct Server {
    listener: UnixListener,
    /// The lock on `SOCKET.lock` that says this going serves the socket.
    _lock: nix::fcntl::Flock<std::fs::File>,
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
        let more = crate::util::counted(n, "more control connection");
        Some(format!("refused {more}"))
    }
}

impl Server {
    /// Binds `path`, replacing a stale socket; a live one is an error.
    /// `default_path`: the path was derived, not given with `-s`, and its
    /// directory under /tmp must be private.
    pub fn bind(path: &Path, dir: &Path, default_path: bool) -> Result<Server, BindError> {
        if default_path {
            private_parent(path).map_err(BindError::Other)?;
        }
        let lock = lock(path, dir)?;
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(BindError::Other(format!(
                    "{} exists and is not a socket",
                    path.display()
                )));
            }
            // Stale: whoever bound it no longer holds the lock.
            let _ = std::fs::remove_file(path);
        }
        // The socket file must never exist with wider permissions than 0600.
        let old_mask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(path);
        nix::sys::stat::umask(old_mask);
        let failed = |e: std::io::Error| {
            let why = describe_io(&e);
            BindError::Other(format!("cannot listen on {}: {why}", path.display()))
        };
        let listener = bound.map_err(failed)?;
        listener.set_nonblocking(true).map_err(failed)?;
        Ok(Server {
            listener,
            _lock: lock,
            path: path.to_path_buf(),
            clients: Vec::new(),
            paused_until: None,
            refused: Refusals::default(),
        })
    }

    /// Accepts every pending connection.
    pub fn accept(&mut self, now: Instant) {
        self.paused_until = None;
        loop {
            use nix::{errno::Errno, sys::socket::SockFlag, sys::socket::accept4};
            let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
            let fd = match accept4(self.listener.as_raw_fd(), flags) {
                Ok(fd) => fd,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN | Errno::ECONNABORTED) => return,
                Err(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM) => {
                    // Not spinning on a listener that cannot accept.
                    self.paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
                Err(other) => {
                    return log::warn!("accept on {}: {}", self.path.display(), other.desc());
                }
            };
            // SAFETY: accept4 returned a new descriptor that we now own.
            let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
            if let Err(who) = peer_allowed(&stream) {
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
                deadline: now + CLIENT_DEADLINE,
                answered: false,
                wait: None,
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
                Ok(0) if client.input.is_empty() => {
                    client.deadline = Instant::now();
                    return None;
                }
                Ok(0) => return request_from(&client.input, true),
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

    pub fn answer(&mut self, index: usize, reply: Reply) {
        self.answer_with(index, |out| write!(out, "{}\n{}", reply.code, reply.text));
    }

    /// Answers a client with what `write` writes (its status line first),
    /// straight into its socket as it is made: only what the socket does
    /// not take at once is kept, so that a long status costs going no
    /// buffer of its size (one made most of going's peak memory).
    pub fn answer_with(
        &mut self,
        index: usize,
        write: impl FnOnce(&mut dyn std::fmt::Write) -> std::fmt::Result,
    ) {
        let Some(client) = self.clients.get_mut(index) else {
            return;
        };
        let mut out = Spill {
            stream: &client.stream,
            chunk: [0; SPILL_CHUNK],
            len: 0,
            kept: Vec::new(),
            gone: false,
        };
        let _ = write(&mut out);
        out.flush();
        client.output = if out.gone { Vec::new() } else { out.kept };
        client.input = Vec::new();
        client.answered = true;
        client.wait = None;
        self.write(index);
    }

    /// Holds a client until its wait can be answered; it then has the
    /// usual time to take the answer.
    fn hold(&mut self, index: usize, wait: Wait) {
        let Some(client) = self.clients.get_mut(index) else {
            return;
        };
        client.input = Vec::new();
        client.deadline = wait.until + CLIENT_DEADLINE;
        client.wait = Some(wait);
    }

    pub fn write(&mut self, index: usize) {
        let Some(client) = self.clients.get_mut(index) else {
            return;
        };
        if !client.answered {
            return; // still reading its request, which may come in pieces
        }
        let output = &mut client.output;
        if let Some(sent) = send(&client.stream, output).filter(|&sent| sent < output.len()) {
            output.drain(..sent); // the rest once the socket takes it
            return;
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

/// Only root and going's own user may control it; others are closed (and
/// logged, see [`Refusals`]): `Err` names them.
fn peer_allowed(stream: &UnixStream) -> Result<(), String> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let cred = getsockopt(stream, PeerCredentials)
        .map_err(|errno| format!("a peer whose credentials cannot be read ({})", errno.desc()))?;
    let me = nix::unistd::geteuid().as_raw();
    if cred.uid() == 0 || cred.uid() == me {
        return Ok(());
    }
    Err(format!("uid {}, pid {}", cred.uid(), cred.pid()))
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

    fn seen(state: State, ready: bool, started: Option<Instant>, restarts: u32) -> Seen {
        Seen {
            state,
            ready,
            started_at: started,
            restarts,
            last_exit: None,
            admin_down: false,
            one_shot: false,
        }
    }

    fn failed(verdict: Verdict) -> String {
        match verdict {
            Verdict::Failed(why) => why,
            other => panic!("not failed: {other:?}"),
        }
    }

    #[test]
    fn a_wait_ends_only_when_running_and_ready() {
        let t0 = Instant::now();
        let running = seen(State::Running, false, Some(t0), 0);
        assert!(matches!(
            verdict(Some(running), None, false),
            Verdict::Pending(_)
        ));
        let ready = Seen {
            ready: true,
            ..running
        };
        assert_eq!(verdict(Some(ready), None, false), Verdict::Ready);
        let starting = seen(State::Starting, false, Some(t0), 0);
        assert_eq!(
            verdict(Some(starting), None, false),
            Verdict::Pending("starting".into())
        );
        // Backoff: it will be started again, unless a command just did.
        let backoff = Seen {
            last_exit: Some(Exit::Code(1)),
            ..seen(State::Backoff, false, Some(t0), 1)
        };
        assert!(matches!(
            verdict(Some(backoff), None, false),
            Verdict::Pending(_)
        ));
        let before = seen(State::Stopped, false, None, 0);
        assert_eq!(
            failed(verdict(Some(backoff), Some(before), false)),
            "failed to start: exited with status 1"
        );
    }

    #[test]
    fn a_restart_waits_for_a_new_run() {
        let t0 = Instant::now();
        let old = Seen {
            ready: true,
            ..seen(State::Running, true, Some(t0), 0)
        };
        let before = Some(seen(State::Running, true, Some(t0), 0));
        assert!(matches!(
            verdict(Some(old), before, false),
            Verdict::Pending(_)
        ));
        let stopping = Seen {
            state: State::Stopping,
            ..old
        };
        assert!(matches!(
            verdict(Some(stopping), before, false),
            Verdict::Pending(_)
        ));
        let new = Seen {
            started_at: Some(t0 + Duration::from_millis(5)),
            ..old
        };
        assert_eq!(verdict(Some(new), before, false), Verdict::Ready);
        // Died before it was ready and was started again: that start failed.
        let again = Seen {
            state: State::Starting,
            ready: false,
            restarts: 1,
            last_exit: Some(Exit::Signal(9)),
            ..new
        };
        assert_eq!(
            failed(verdict(Some(again), before, false)),
            "failed to start: killed by signal KILL"
        );
    }

    #[test]
    fn ended_for_good() {
        let t0 = Instant::now();
        let exited = |exit| Seen {
            last_exit: Some(exit),
            one_shot: true,
            ..seen(State::Exited, false, Some(t0), 0)
        };
        // A one-shot is done when it has exited 0, not while it runs.
        let running = Seen {
            state: State::Running,
            ready: true,
            ..exited(Exit::Code(0))
        };
        assert_eq!(
            verdict(Some(running), None, false),
            Verdict::Pending("running, not exited yet".into())
        );
        assert_eq!(
            verdict(Some(exited(Exit::Code(0))), None, false),
            Verdict::Ready
        );
        assert_eq!(
            failed(verdict(Some(exited(Exit::Code(1))), None, false)),
            "exited with status 1, not restarted"
        );
        // Exited again without a new run: the start did not happen.
        let before = Some(seen(State::Running, true, Some(t0), 0));
        assert_eq!(
            failed(verdict(Some(exited(Exit::Code(0))), before, false)),
            "could not be started, not restarted"
        );
        assert_eq!(failed(verdict(None, None, false)), "removed");
        let disabled = seen(State::Disabled, false, None, 0);
        assert_eq!(
            failed(verdict(Some(disabled), None, false)),
            "disabled (enabled = false)"
        );
        let down = Seen {
            admin_down: true,
            ..seen(State::Stopped, false, None, 0)
        };
        assert_eq!(
            failed(verdict(Some(down), None, false)),
            "stopped by going stop"
        );
        let stopped = seen(State::Stopped, false, None, 0);
        assert!(matches!(
            verdict(Some(stopped), None, false),
            Verdict::Pending(_)
        ));
        assert_eq!(
            failed(verdict(Some(stopped), None, true)),
            "going is shutting down"
        );
    }
}
