//! The loop: owns every descriptor, blocks in `poll(2)` with the nearest
//! deadline as timeout, turns readiness into events for the supervisor and
//! carries out the actions it returns. The only place that waits.
//!
//! Descriptors polled: a signalfd (every catchable signal is blocked and
//! read from it), the inotify descriptor of the service directory, the
//! control socket and its clients, output and readiness pipes, the notify
//! socket and pidfds of adopted processes.
//!
//! It also keeps the state file (`state.rs`) current, takes over what an
//! earlier going left running, and execs a new going on SIGUSR2.

use crate::config;
use crate::config::Readiness;
use crate::control::{Reply, Request, Server, Slot};
use crate::main_command::{self, MainCommand};
use crate::notify::NotifySocket;
use crate::output::OutputPipe;
use crate::service::{Action, Event, Exit, Hook, State};
use crate::signals;
use crate::spawn::{self, Context};
use crate::state;
use crate::status;
use crate::supervisor::Command;
use crate::supervisor::{Adoption, Supervisor, Work};
use crate::watch::DirWatch;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a polled descriptor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Signals,
    Watch,
    Control(Slot),
    /// A service's output pipe, by index.
    Output(usize),
    /// A `ready-fd` pipe, by index.
    ReadyPipe(usize),
    Notify,
    /// An adopted process that is not going's child, by index.
    Adopted(usize),
    /// going's stderr, while log lines wait for it (log.rs).
    LogBacklog,
}

/// A process taken over from an earlier going that is not going's child:
/// its pidfd turns readable when it ends.
struct AdoptedWatch {
    pid: i32,
    fd: OwnedFd,
    done: bool,
}

/// What the state file last said of one process, by pid: reused so that
/// a write reads /proc only for processes new since the last one.
struct Recorded {
    pid: i32,
    start_time: u64,
    /// The exec was confirmed when this was read.
    exec_done: bool,
    cmdline: u64,
}

/// A service's process started since the last state write.
struct FreshSpawn {
    pid: i32,
    /// When known from the clock at the clone (spawn.rs), without /proc.
    start_time: Option<u64>,
}

/// The read end of a service's `ready-fd`.
struct ReadyPipe {
    service: String,
    pid: i32,
    fd: OwnedFd,
    done: bool,
}

/// The shortest time between two walks of the children list (below).
const REAP_WALK_GAP: Duration = Duration::from_millis(1);

/// When the loop walks its children for zombies. A SIGCHLD names the
/// child it is for, and that child is reaped at once by its pid, which the
/// kernel finds without a search. A child whose SIGCHLD merged into one
/// already pending is found only by `waitpid(-1)`, which walks the list of
/// live children up to the first zombie: in a burst of thousands of
/// orphans' exits (a container's process tree torn down) a walk after
/// each exit took going most of a core, about 0.7 s for 10,000, whenever
/// they died out of the list's order. So walks come at most one per
/// [`REAP_WALK_GAP`]: at once for a SIGCHLD after a quiet spell, else at
/// the end of the gap.
#[derive(Default)]
struct ReapWalks {
    last: Option<Instant>,
    /// When a deferred walk is due.
    due: Option<Instant>,
}

impl ReapWalks {
    /// A SIGCHLD came at `now`: true when the walk is to be made now;
    /// otherwise it is due at the end of the gap.
    fn requested(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now < last + REAP_WALK_GAP => {
                self.due.get_or_insert(last + REAP_WALK_GAP);
                false
            }
            _ => true,
        }
    }

    fn is_due(&self, now: Instant) -> bool {
        self.due.is_some_and(|at| at <= now)
    }

    fn walked(&mut self, now: Instant) {
        self.last = Some(now);
        self.due = None;
    }
}

/// Signals that stay deliverable: a fault in going itself must kill it
/// (and show up as a core) rather than loop forever.
const SYNCHRONOUS: [Signal; 6] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

/// Every signal going reads from its signalfd.
pub fn handled_signals() -> SigSet {
    let mut set = SigSet::all();
    for signal in SYNCHRONOUS {
        set.remove(signal);
    }
    set
}

/// Blocks the handled signals; the first thing going does, so that no
/// SIGTERM sent to a PID 1 can be lost in between.
pub fn block_signals() {
    let _ = handled_signals().thread_block();
}

/// A service's child that could not exec: why, kept until it is reaped.
struct FailedExec {
    pid: i32,
    why: String,
}

/// The last step of a PID 1's shutdown: every process left in the
/// namespace gets SIGTERM, then SIGKILL.
struct Sweep {
    kill_at: Option<Instant>,
    give_up_at: Instant,
}

/// How long a PID 1 waits after the final SIGKILL before it exits anyway
/// (a process in uninterruptible sleep must not keep the container up).
const SWEEP_KILL_WAIT: Duration = Duration::from_secs(1);

/// Service files, and the directory, that could not be read for want of a
/// resource (EMFILE, ENOMEM...): each said so once, and is read again after
/// a delay that doubles while the want lasts.
#[derive(Default)]
struct ReadRetry {
    names: Vec<String>,
    rescan: bool,
    at: Option<Instant>,
    delay: Duration,
}

const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

impl ReadRetry {
    fn schedule(&mut self, now: Instant) {
        if self.delay.is_zero() {
            self.delay = RETRY_FIRST;
        }
        self.at.get_or_insert(now + self.delay);
    }
}

pub struct EventLoop {
    dir: PathBuf,
    supervisor: Supervisor,
    signals: SignalFd,
    watch: DirWatch,
    context: Context,
    failed_execs: Vec<FailedExec>,
    started: Instant,
    main: Option<MainCommand>,
    main_failure: Option<(u32, i32)>,
    /// `-t`: from SIGTERM to SIGKILL for the main command and the sweep.
    grace: Duration,
    is_pid1: bool,
    sweep: Option<Sweep>,
    read_retry: ReadRetry,
    /// False once waitpid has said there is no child left.
    has_children: bool,
    reap_walks: ReapWalks,
    /// Pids named by the SIGCHLDs of one read of the signalfd.
    exited_hints: Vec<i32>,
    server: Option<Server>,
    /// Pipes of `stdout`/`stderr = "syslog"`, read until end of file.
    outputs: Vec<OutputPipe>,
    /// The status of a critical service that ended going.
    critical_exit: Option<i32>,
    /// Hooks running: `before`, `stop`, `on-exit`, health checks.
    jobs: Vec<Job>,
    ready_pipes: Vec<ReadyPipe>,
    notify: Option<NotifySocket>,
    /// Where the services are recorded for the next going.
    state_path: PathBuf,
    /// Signature of the pids and states last recorded.
    recorded: u64,
    /// Sorted by pid.
    recorded_procs: Vec<Recorded>,
    /// Services' processes started since the last state write: their
    /// command line is the one going exec'd, which /proc may not show yet
    /// (the exec can still be loading the program when clone returns), and
    /// a read of /proc/PID/stat would wait for that exec.
    fresh_spawns: Vec<FreshSpawn>,
    /// Whether going has given up the CPU in this turn of the loop (see
    /// [`step_aside`]).
    stepped_aside: bool,
    state_failed: bool,
    adopted: Vec<AdoptedWatch>,
    /// going's own arguments, for the exec of an upgrade.
    argv: Vec<std::ffi::OsString>,
}

/// A hook process of a service, a child of the loop like the service.
struct Job {
    pid: i32,
    service: String,
    hook: Hook,
    /// When it is killed if still running.
    deadline: Instant,
    killed: bool,
    /// Killed because its service moved on: its end is not reported.
    cancelled: bool,
    /// (step, errno) when it could not exec.
    exec_failure: Option<(u32, i32)>,
    /// What it runs, for messages about it.
    spec: crate::config::ServiceSpec,
}

impl EventLoop {
    pub fn new(
        dir: &Path,
        mut context: Context,
        main: Option<MainCommand>,
        grace: Duration,
        server: Option<Server>,
        state_path: PathBuf,
        argv: Vec<std::ffi::OsString>,
    ) -> Result<EventLoop, String> {
        let signals = SignalFd::with_flags(
            &handled_signals(),
            SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
        )
        .map_err(|errno| format!("cannot create a signalfd: {}", errno.desc()))?;
        let watch = DirWatch::new(dir, main.is_some())?;
        let notify = match NotifySocket::bind() {
            Ok(socket) => Some(socket),
            Err(why) => {
                log::warn!("{why}; notify = true services cannot say they are ready");
                None
            }
        };
        context.notify_socket = notify.as_ref().map(|n| n.address.clone());
        Ok(EventLoop {
            dir: dir.to_path_buf(),
            supervisor: Supervisor::default(),
            signals,
            watch,
            context,
            failed_execs: Vec::new(),
            started: Instant::now(),
            main,
            main_failure: None,
            grace,
            is_pid1: std::process::id() == 1,
            sweep: None,
            read_retry: ReadRetry::default(),
            has_children: true,
            reap_walks: ReapWalks::default(),
            exited_hints: Vec::new(),
            server,
            outputs: Vec::new(),
            critical_exit: None,
            jobs: Vec::new(),
            ready_pipes: Vec::new(),
            notify,
            state_path,
            recorded: 0,
            recorded_procs: Vec::new(),
            fresh_spawns: Vec::new(),
            stepped_aside: false,
            state_failed: false,
            adopted: Vec::new(),
            argv,
        })
    }

    /// Runs until an orderly shutdown has finished; going's exit status.
    pub fn run(&mut self) -> i32 {
        self.take_over();
        if let Err(code) = self.start_main() {
            return code;
        }
        self.rescan(Instant::now());
        self.stop_unclaimed();
        let mut poll_fds: Vec<libc::pollfd> = Vec::new();
        let mut sources: Vec<Source> = Vec::new();
        loop {
            if let Some(code) = self.finished() {
                // Nothing is left running for a next going to take over.
                let _ = std::fs::remove_file(&self.state_path);
                return code;
            }
            self.record_state();
            self.stepped_aside = false;
            self.poll_set(&mut poll_fds, &mut sources);
            let timeout = self.timeout_ms();
            // SAFETY: poll_fds is a valid array of its length.
            let ready = unsafe {
                libc::poll(
                    poll_fds.as_mut_ptr(),
                    poll_fds.len() as libc::nfds_t,
                    timeout,
                )
            };
            if ready < 0 {
                let errno = nix::errno::Errno::last();
                if errno != nix::errno::Errno::EINTR {
                    log::error!("poll: {}", errno.desc());
                }
                continue;
            }
            // Signals first: a reaped child is never mistaken for a live one.
            if sources
                .iter()
                .zip(&poll_fds)
                .any(|(source, fd)| *source == Source::Signals && fd.revents != 0)
            {
                self.read_signals();
            }
            for (&source, _) in sources
                .iter()
                .zip(&poll_fds)
                .filter(|(_, fd)| fd.revents != 0)
            {
                match source {
                    Source::Signals => {}
                    Source::Watch => self.directory_changed(),
                    Source::Control(slot) => self.control_ready(slot),
                    Source::Output(index) => {
                        if let Some(pipe) = self.outputs.get_mut(index) {
                            pipe.drain();
                        }
                    }
                    Source::ReadyPipe(index) => self.ready_pipe_readable(index),
                    Source::Notify => self.notified(),
                    Source::Adopted(index) => self.adopted_ended(index),
                    Source::LogBacklog => crate::log::writable(),
                }
            }
            self.adopted.retain(|watch| !watch.done);
            self.outputs.retain(|pipe| !pipe.closed);
            self.ready_pipes.retain(|pipe| !pipe.done);
            let now = Instant::now();
            if self.reap_walks.is_due(now) {
                self.reap();
            }
            for name in self.supervisor.due(now) {
                let work = self.supervisor.event(&name, Event::Deadline, now);
                self.execute(work);
            }
            self.main_and_sweep_deadlines(now);
            if self.read_retry.at.is_some_and(|at| at <= now) {
                self.retry_reads(now);
            }
            self.job_deadlines(now);
            if let Some(server) = &mut self.server {
                server.expire(now);
            }
        }
    }

    /// The descriptors to poll, and what each one is.
    fn poll_set(&self, fds: &mut Vec<libc::pollfd>, sources: &mut Vec<Source>) {
        fds.clear();
        sources.clear();
        let watched = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        fds.push(watched(self.signals.as_raw_fd()));
        sources.push(Source::Signals);
        fds.push(watched(self.watch.fd().as_raw_fd()));
        sources.push(Source::Watch);
        for (index, pipe) in self.outputs.iter().enumerate() {
            fds.push(watched(pipe.fd()));
            sources.push(Source::Output(index));
        }
        for (index, pipe) in self.ready_pipes.iter().enumerate() {
            fds.push(watched(pipe.fd.as_raw_fd()));
            sources.push(Source::ReadyPipe(index));
        }
        if let Some(notify) = &self.notify {
            fds.push(watched(notify.fd()));
            sources.push(Source::Notify);
        }
        for (index, watch) in self.adopted.iter().enumerate() {
            fds.push(watched(watch.fd.as_raw_fd()));
            sources.push(Source::Adopted(index));
        }
        if let Some(server) = &self.server {
            let mut slots = Vec::new();
            server.poll_fds(Instant::now(), fds, &mut slots);
            sources.extend(slots.into_iter().map(Source::Control));
        }
        // Log lines waiting for stderr (log.rs): written when it can take them.
        if let Some(fd) = crate::log::backlog_fd() {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            });
            sources.push(Source::LogBacklog);
        }
    }

    fn directory_changed(&mut self) {
        let changes = self.watch.read();
        let now = Instant::now();
        if changes.rescan {
            self.rescan(now);
        } else if !changes.names.is_empty() {
            // One batch for all the files of one read: thousands of new
            // files cost one pass over the services, not one each.
            self.supervisor.begin_batch(false);
            for name in &changes.names {
                self.reload(name, now);
            }
            let work = self.supervisor.end_batch(now);
            self.execute(work);
        }
    }

    /// A control connection (or the listener) is ready.
    fn control_ready(&mut self, slot: Slot) {
        let now = Instant::now();
        let Some(server) = &mut self.server else {
            return;
        };
        let index = match slot {
            Slot::Listener => {
                server.accept(now);
                return;
            }
            Slot::Client(index) => index,
        };
        server.write(index);
        let Some(request) = server.read(index) else {
            return;
        };
        let reply = match request {
            Ok(request) => self.answer(request),
            Err(why) => Reply::error(&why),
        };
        if let Some(server) = &mut self.server {
            server.answer(index, reply);
        }
    }

    fn answer(&mut self, request: Request) -> Reply {
        let now = Instant::now();
        match request {
            Request::Status { json, names } => {
                let selected = if names.is_empty() {
                    Ok(self
                        .supervisor
                        .names()
                        .map(str::to_string)
                        .collect::<Vec<_>>())
                } else {
                    self.supervisor.select(&names)
                };
                let selected = match selected {
                    Ok(selected) => selected,
                    Err(why) => return Reply::error(&why),
                };
                let rows: Vec<status::Row<'_>> = self
                    .supervisor
                    .services()
                    .filter(|s| selected.iter().any(|n| n == s.name()))
                    .map(|service| status::Row {
                        service,
                        stats: service.pid.and_then(status::proc_stats),
                    })
                    .collect();
                let host = status::Host::read(now.saturating_duration_since(self.started));
                let text = if json {
                    status::json(&host, &rows, now, std::time::SystemTime::now())
                } else {
                    status::text(&host, &rows, now)
                };
                let all_running = rows.iter().all(|r| r.service.state == State::Running);
                let code = i32::from(!names.is_empty() && !all_running);
                Reply { code, text }
            }
            Request::Start(names) => self.command(Command::Start, &names, now),
            Request::Stop(names) => self.command(Command::Stop, &names, now),
            Request::Restart(names) => self.command(Command::Restart, &names, now),
            Request::Reload => {
                log::info!("reload requested, rescanning {}", self.dir.display());
                self.rescan(now);
                Reply::ok(String::new())
            }
        }
    }

    fn command(&mut self, command: Command, names: &[String], now: Instant) -> Reply {
        match self.supervisor.command(command, names, now) {
            Ok(work) => {
                self.execute(work);
                Reply::ok(String::new())
            }
            Err(why) => Reply::error(&why),
        }
    }

    /// Spawns the main command, if there is one; Err(exit status) when it
    /// cannot even be forked.
    fn start_main(&mut self) -> Result<(), i32> {
        let Some(main) = &mut self.main else {
            return Ok(());
        };
        if main.pid.is_some() {
            return Ok(()); // taken over from the going before an upgrade
        }
        match spawn::spawn_main(&main.argv, &self.context) {
            Ok(child) => {
                main.pid = Some(child.pid);
                self.main_failure = child.exec_failure;
                log::info!(
                    "main command {:?} started, pid {}",
                    main.argv
                        .first()
                        .map(|a| a.to_string_lossy())
                        .unwrap_or_default(),
                    child.pid
                );
                Ok(())
            }
            Err(why) => {
                report_main_failure(&why);
                Err(1)
            }
        }
    }

    /// Going's exit status once everything has stopped, else `None`.
    fn finished(&mut self) -> Option<i32> {
        let services_done = self.supervisor.is_shutting_down()
            && self.supervisor.all_stopped()
            && self.jobs.is_empty();
        let main_done = self.main.as_ref().is_none_or(|main| !main.is_running());
        if !services_done || !main_done {
            return None;
        }
        if self.is_pid1 && !self.sweep_done() {
            return None;
        }
        // The last words of the services, before going goes.
        for pipe in &mut self.outputs {
            pipe.drain();
        }
        log::info!("all services stopped, exiting");
        let main_code = self.main.as_ref().map_or(0, MainCommand::exit_code);
        Some(self.critical_exit.unwrap_or(main_code))
    }

    /// A PID 1 ends only when the namespace is empty, or the sweep has
    /// given up on what SIGKILL could not end.
    fn sweep_done(&mut self) -> bool {
        let now = Instant::now();
        match &self.sweep {
            None => {
                // SAFETY: kill has no memory effects.
                let sent = unsafe { libc::kill(-1, libc::SIGTERM) };
                if sent != 0 {
                    return true; // ESRCH: nothing else is left
                }
                log::info!(
                    "sending TERM to every process left, KILL in {}",
                    config::values::format_duration(self.grace)
                );
                self.sweep = Some(Sweep {
                    kill_at: Some(now + self.grace),
                    give_up_at: now + self.grace + SWEEP_KILL_WAIT,
                });
                self.has_children = true;
                false
            }
            Some(sweep) => !self.has_children || now >= sweep.give_up_at,
        }
    }

    fn main_and_sweep_deadlines(&mut self, now: Instant) {
        if let Some(main) = &mut self.main
            && main.is_running()
            && main.kill_at.is_some_and(|at| now >= at)
        {
            main.kill_at = None;
            if let Some(pid) = main.pid {
                log::warn!(
                    "main command did not exit within {}, pid {pid}, sending KILL",
                    config::values::format_duration(self.grace)
                );
                signal_group(pid, libc::SIGKILL);
            }
        }
        if let Some(sweep) = &mut self.sweep
            && sweep.kill_at.is_some_and(|at| now >= at)
        {
            sweep.kill_at = None;
            log::warn!(
                "processes left after {}, sending KILL to all",
                config::values::format_duration(self.grace)
            );
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(-1, libc::SIGKILL) };
        }
    }

    /// A critical service ended for good: everything stops, and going
    /// exits with its status (the first one, if several fail).
    fn critical_failure(&mut self, name: &str, code: i32) {
        if self.critical_exit.is_some() {
            return;
        }
        self.critical_exit = Some(code);
        log::error!("critical service {name} ended with status {code}, stopping everything");
        self.forward(libc::SIGTERM);
        if !self.supervisor.is_shutting_down() {
            let work = self.supervisor.shutdown(Instant::now());
            self.execute(work);
        }
    }

    /// Passes a signal to the main command; true if it was running.
    fn forward(&mut self, signal: i32) -> bool {
        let Some(main) = &mut self.main else {
            return false;
        };
        let Some(pid) = main.pid.filter(|_| main.is_running()) else {
            return false;
        };
        if main.forward_to_group {
            signal_group(pid, signal);
        } else {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(pid, signal) };
        }
        if (signal == libc::SIGTERM || signal == libc::SIGINT) && main.kill_at.is_none() {
            main.kill_at = Some(Instant::now() + self.grace);
        }
        step_aside(&mut self.stepped_aside);
        true
    }

    /// The main command was reaped: record how, then stop everything.
    fn main_ended(&mut self, status: Exit) {
        let report = self.main_failure.take();
        let Some(main) = &mut self.main else { return };
        main.status = Some(status);
        let program = main
            .argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        let pid = main.pid.unwrap_or(0);
        if let Some((step, errno)) = report {
            let why = spawn::describe_main_failure(step, errno, &program);
            main.exec_error = Some((errno, why.clone()));
            report_main_failure(&why);
        } else {
            let how = match status {
                Exit::Code(code) => format!("exited with status {code}"),
                Exit::Signal(signal) => format!("killed by signal {}", signals::name(signal)),
                Exit::Unknown => "ended".to_string(),
            };
            log::info!("main command {program:?} {how}, pid {pid}");
        }
        // SAFETY: isatty/tcsetpgrp/getpgrp; SIGTTOU is blocked in going.
        unsafe {
            if libc::isatty(0) == 1 {
                libc::tcsetpgrp(0, libc::getpgrp());
            }
        }
        if !self.supervisor.is_shutting_down() {
            let work = self.supervisor.shutdown(Instant::now());
            self.execute(work);
        }
    }

    /// Milliseconds until the nearest deadline, rounded up so the loop
    /// never wakes early and spins; -1 (forever) when nothing is pending.
    fn timeout_ms(&self) -> i32 {
        let main = self.main.as_ref().and_then(|m| m.kill_at);
        let sweep = self
            .sweep
            .as_ref()
            .map(|s| s.kill_at.unwrap_or(s.give_up_at));
        let control = self.server.as_ref().and_then(Server::next_deadline);
        let jobs = self
            .jobs
            .iter()
            .filter(|j| !j.killed)
            .map(|j| j.deadline)
            .min();
        let nearest = [
            self.supervisor.next_deadline(),
            main,
            sweep,
            control,
            jobs,
            self.read_retry.at,
            self.reap_walks.due,
        ]
        .into_iter()
        .flatten()
        .min();
        match nearest {
            None => -1,
            Some(at) => {
                let wait = at.saturating_duration_since(Instant::now());
                let ms = wait.as_micros().div_ceil(1000);
                i32::try_from(ms).unwrap_or(i32::MAX)
            }
        }
    }

    fn read_signals(&mut self) {
        let mut reap = false;
        self.exited_hints.clear();
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => {
                    let signal = info.ssi_signo as i32;
                    if signal != libc::SIGCHLD
                        && main_command::forwards(signal)
                        && self.forward(signal)
                    {
                        continue;
                    }
                    match signal {
                        libc::SIGCHLD => {
                            reap = true;
                            if matches!(
                                info.ssi_code,
                                libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED
                            ) {
                                self.exited_hints.push(info.ssi_pid as i32);
                            }
                        }
                        libc::SIGHUP => {
                            log::info!("SIGHUP, rescanning {}", self.dir.display());
                            self.rescan(Instant::now());
                        }
                        libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => self.shutdown(signal),
                        libc::SIGUSR1 => self.log_status(),
                        libc::SIGUSR2 => self.upgrade(),
                        _ => {}
                    }
                }
                Ok(None) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => {
                    log::error!("reading the signalfd: {}", errno.desc());
                    break;
                }
            }
        }
        if reap {
            self.reap();
        }
    }

    fn shutdown(&mut self, signal: i32) {
        let name = signals::name(signal);
        if self.supervisor.is_shutting_down() {
            log::warn!("SIG{name} again, killing what is left");
            let work = self.supervisor.kill_all();
            self.execute(work);
            for job in &mut self.jobs {
                signal_group(job.pid, libc::SIGKILL);
                job.killed = true;
            }
            return;
        }
        let active = self.supervisor.services().filter(|s| s.is_active()).count();
        log::info!("SIG{name}, stopping {active} services");
        let work = self.supervisor.shutdown(Instant::now());
        self.execute(work);
    }

    fn log_status(&self) {
        let now = Instant::now();
        log::info!(
            "pid {}, up {}, {} services",
            std::process::id(),
            config::values::format_duration(now - self.started),
            self.supervisor.services().count()
        );
        for service in self.supervisor.services() {
            let pid = service
                .pid
                .map(|pid| format!(", pid {pid}"))
                .unwrap_or_default();
            let up = match (service.is_active(), service.started_at) {
                (true, Some(at)) => format!(", up {}", config::values::format_duration(now - at)),
                _ => String::new(),
            };
            log::info!(target: service.name(), "{}{pid}{up}, {} restarts", service.state.name(), service.restarts);
        }
    }

    /// After SIGCHLD, or when a deferred walk is due: the children the
    /// signals named at once, the rest by a walk when [`ReapWalks`] allows.
    fn reap(&mut self) {
        let now = Instant::now();
        let mut hints = std::mem::take(&mut self.exited_hints);
        for &pid in &hints {
            // Not a child (anyone may send SIGCHLD), or reaped already: no status.
            if let Some((pid, status)) =
                ended(waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)))
            {
                self.child_ended(pid, status, now);
            }
        }
        hints.clear();
        self.exited_hints = hints;
        if self.reap_walks.requested(now) {
            self.walk_children(now);
        }
        // Orphans of a stopping group may have been among them.
        let work = self.supervisor.awaiting_group();
        self.execute(work);
    }

    /// Reaps every child that has ended: `waitpid(-1)` until none is left.
    fn walk_children(&mut self, now: Instant) {
        self.reap_walks.walked(now);
        loop {
            let result = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG));
            if let Some((pid, status)) = ended(result) {
                self.child_ended(pid, status, now);
                continue;
            }
            match result {
                Ok(WaitStatus::StillAlive) => break,
                Err(nix::errno::Errno::ECHILD) => {
                    self.has_children = false;
                    break;
                }
                Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
                Err(errno) => {
                    log::error!("waitpid: {}", errno.desc());
                    break;
                }
            }
        }
    }

    /// A reaped child: whichever of going's processes it was moves on.
    fn child_ended(&mut self, pid: i32, status: Exit, now: Instant) {
        if self.main.as_ref().is_some_and(|main| main.pid == Some(pid)) {
            self.main_ended(status);
            return;
        }
        if let Some(index) = self.jobs.iter().position(|j| j.pid == pid) {
            self.job_ended(index, status);
            return;
        }
        // Whoever it was, why it could not exec (if so) is done with.
        let exec_error = self
            .failed_execs
            .iter()
            .position(|f| f.pid == pid)
            .map(|index| self.failed_execs.swap_remove(index).why);
        let Some(name) = self.supervisor.by_pid(pid).map(str::to_string) else {
            return;
        };
        let work = self
            .supervisor
            .event(&name, Event::Exited { status, exec_error }, now);
        self.execute(work);
    }

    /// Carries out actions, feeding each outcome back as the next event.
    fn execute(&mut self, work: Work) {
        let mut queue: VecDeque<(String, Action)> = work.into();
        while let Some((name, action)) = queue.pop_front() {
            let now = Instant::now();
            // The spawn's outcome is known at once (spawn.rs): the exec's
            // success is a second event.
            let mut exec_ok = false;
            let outcome = match action {
                Action::Spawn => {
                    let (event, running) = self.spawn(&name);
                    exec_ok = running;
                    Some(event)
                }
                Action::Signal { pid, signal } => {
                    signal_group(pid, signal);
                    None
                }
                Action::CheckGroup { pid } => (!group_alive(pid)).then_some(Event::GroupGone),
                Action::Critical { code } => {
                    self.critical_failure(&name, code);
                    None
                }
                Action::RunHook { hook, env } => self.run_hook(&name, hook, env),
                Action::ReadPidFile => Some(Event::PidFile(self.read_pid_file(&name))),
                Action::CancelHook { hook } => {
                    for job in self
                        .jobs
                        .iter_mut()
                        .filter(|j| j.service == name && j.hook == hook)
                    {
                        // Killed, and its end no longer news for the service.
                        signal_group(job.pid, libc::SIGKILL);
                        job.cancelled = true;
                    }
                    None
                }
            };
            if let Some(event) = outcome {
                queue.extend(self.supervisor.event(&name, event, now));
            }
            if exec_ok {
                queue.extend(self.supervisor.event(&name, Event::ExecOk, now));
            }
        }
    }

    /// Starts a hook of `name` as a job of the loop; an event only when it
    /// could not even be started.
    fn run_hook(&mut self, name: &str, hook: Hook, env: Vec<(String, String)>) -> Option<Event> {
        let failed = Some(Event::HookDone {
            hook,
            status: Exit::Code(127),
        });
        let Some(service) = self.supervisor.services().find(|s| s.name() == name) else {
            return failed;
        };
        let spec = &service.spec;
        let (argv, timeout) = match hook {
            Hook::Before => (spec.extras().before.clone(), spec.extras().hook_timeout),
            Hook::Stop => (spec.extras().stop_command.clone(), spec.stop_timeout),
            Hook::OnExit => (spec.extras().on_exit.clone(), spec.extras().hook_timeout),
            Hook::Health => (
                spec.extras().health_check.as_ref().map(|h| h.argv.clone()),
                spec.extras()
                    .health_check
                    .as_ref()
                    .map_or(spec.extras().hook_timeout, |h| h.timeout),
            ),
            Hook::Ready => match &spec.extras().readiness {
                Some(Readiness::Command { argv, .. }) => {
                    (Some(argv.clone()), spec.extras().hook_timeout)
                }
                _ => (None, spec.extras().hook_timeout),
            },
        };
        let Some(argv) = argv else { return failed };
        // A hook runs as its service does: same user, directory, output.
        let mut hook_spec = spec.clone();
        hook_spec.argv = argv;
        hook_spec.env.extend(env);
        match spawn::spawn(&hook_spec, &self.context) {
            Ok(child) => {
                self.watch_output(name, child.pid, child.stdout_pipe, child.stderr_pipe);
                self.jobs.push(Job {
                    pid: child.pid,
                    service: name.to_string(),
                    hook,
                    deadline: Instant::now() + timeout,
                    killed: false,
                    cancelled: false,
                    exec_failure: child.exec_failure,
                    spec: hook_spec,
                });
                None
            }
            Err(why) => {
                log::warn!(target: name, "cannot run {} hook: {why}", hook.name());
                failed
            }
        }
    }

    /// Registers the `"syslog"` output pipes of a child.
    fn watch_output(
        &mut self,
        name: &str,
        pid: i32,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    ) {
        for (fd, is_stderr) in [(stdout, false), (stderr, true)] {
            if let Some(fd) = fd {
                self.outputs.push(OutputPipe::new(name, pid, is_stderr, fd));
            }
        }
    }

    /// The live process a service's pid file names, if it does yet.
    fn read_pid_file(&self, name: &str) -> Option<i32> {
        let service = self.supervisor.services().find(|s| s.name() == name)?;
        let path = service.spec.extras().pid_file.as_ref()?;
        let mut text = String::new();
        let file = std::fs::File::open(path).ok()?;
        // A pid is a few digits; a huge file is not a pid file.
        std::io::Read::read_to_string(&mut std::io::Read::take(file, 64), &mut text).ok()?;
        let pid: i32 = text.trim().parse().ok().filter(|&pid| pid > 1)?;
        // SAFETY: signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || nix::errno::Errno::last() == nix::errno::Errno::EPERM;
        alive.then_some(pid)
    }

    /// A `ready-fd` pipe has data or is closed: a newline means ready.
    fn ready_pipe_readable(&mut self, index: usize) {
        let Some(pipe) = self.ready_pipes.get_mut(index) else {
            return;
        };
        let mut buffer = [0u8; 64];
        // SAFETY: read into a stack buffer of its length.
        let n = unsafe {
            libc::read(
                pipe.fd.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
            )
        };
        if n < 0 && nix::errno::Errno::last() == nix::errno::Errno::EAGAIN {
            return;
        }
        let says_ready = buffer
            .get(..n.max(0) as usize)
            .is_some_and(|b| b.contains(&b'\n'));
        if n > 0 && !says_ready {
            return; // not a newline yet: keep listening
        }
        pipe.done = true;
        let (service, pid) = (pipe.service.clone(), pipe.pid);
        if says_ready {
            self.ready(&service, pid);
        }
    }

    /// Datagrams on the NOTIFY_SOCKET: `READY=1` from a service's process
    /// or one of its process group.
    fn notified(&mut self) {
        let Some(notify) = &self.notify else { return };
        for sender in notify.ready_senders() {
            // SAFETY: getpgid has no memory effects.
            let group = unsafe { libc::getpgid(sender) };
            let service = self
                .supervisor
                .services()
                .find(|s| s.pid.is_some_and(|pid| pid == sender || pid == group))
                .map(|s| (s.name().to_string(), s.pid.unwrap_or(0)));
            if let Some((name, pid)) = service {
                self.ready(&name, pid);
            }
        }
    }

    fn ready(&mut self, name: &str, pid: i32) {
        let still_that_process = self
            .supervisor
            .services()
            .any(|s| s.name() == name && s.pid == Some(pid));
        if still_that_process {
            let work = self.supervisor.event(name, Event::Ready, Instant::now());
            self.execute(work);
        }
    }

    /// Kills hooks that have run past their timeout.
    fn job_deadlines(&mut self, now: Instant) {
        for job in self
            .jobs
            .iter_mut()
            .filter(|j| !j.killed && j.deadline <= now)
        {
            log::warn!(target: &job.service, "{} hook timed out, pid {}, killing it", job.hook.name(), job.pid);
            signal_group(job.pid, libc::SIGKILL);
            job.killed = true;
        }
    }

    /// A reaped hook: tell its service how it ended.
    fn job_ended(&mut self, index: usize, status: Exit) {
        if index >= self.jobs.len() {
            return;
        }
        let job = self.jobs.swap_remove(index);
        if let Some((step, errno)) = job.exec_failure {
            let why = spawn::describe_failure(step, errno, &job.spec);
            log::warn!(target: &job.service, "cannot run {} hook: {why}", job.hook.name());
        }
        if job.cancelled {
            return;
        }
        let work = self.supervisor.event(
            &job.service,
            Event::HookDone {
                hook: job.hook,
                status,
            },
            Instant::now(),
        );
        self.execute(work);
    }

    /// Starts `name`'s process: the event for the supervisor, and whether
    /// the program now runs (its exec succeeded).
    fn spawn(&mut self, name: &str) -> (Event, bool) {
        let Some(service) = self.supervisor.services().find(|s| s.name() == name) else {
            return (Event::SpawnFailed("no such service".into()), false);
        };
        // A pid file left from an earlier run must not name a stranger.
        if let Some(path) = &service.spec.extras().pid_file {
            let _ = std::fs::remove_file(path);
        }
        match spawn::spawn(&service.spec, &self.context) {
            Ok(child) => {
                step_aside(&mut self.stepped_aside);
                let exec_failure = child
                    .exec_failure
                    .map(|(step, errno)| spawn::describe_failure(step, errno, &service.spec));
                self.watch_output(name, child.pid, child.stdout_pipe, child.stderr_pipe);
                if let Some(fd) = child.ready_pipe {
                    let service = name.to_string();
                    self.ready_pipes.push(ReadyPipe {
                        service,
                        pid: child.pid,
                        fd,
                        done: false,
                    });
                }
                let running = exec_failure.is_none();
                if let Some(why) = exec_failure {
                    self.failed_execs.push(FailedExec {
                        pid: child.pid,
                        why,
                    });
                }
                self.fresh_spawns.push(FreshSpawn {
                    pid: child.pid,
                    start_time: child.start_time,
                });
                (Event::Spawned(child.pid), running)
            }
            Err(reason) => (Event::SpawnFailed(reason), false),
        }
    }

    fn reload(&mut self, name: &str, now: Instant) {
        let loaded = config::load(&self.dir, name);
        if matches!(loaded, config::Loaded::Broken { retry: true, .. }) {
            let reported = self.read_retry.names.iter().any(|n| n == name);
            self.read_retry.schedule(now);
            if reported {
                return; // said once; nothing changes until it reads
            }
            self.read_retry.names.push(name.to_string());
        } else {
            self.read_retry.names.retain(|n| n != name);
        }
        let work = self.supervisor.reconcile(name, loaded, now);
        self.execute(work);
    }

    /// Reads again what could not be read for want of a resource.
    fn retry_reads(&mut self, now: Instant) {
        self.read_retry.at = None;
        // What fails again waits twice as long; once all reads, 1 s again.
        self.read_retry.delay = (self.read_retry.delay * 2).min(RETRY_MAX);
        if self.read_retry.rescan {
            self.rescan(now);
        } else {
            let names = self.read_retry.names.clone();
            self.supervisor.begin_batch(false);
            for name in &names {
                self.reload(name, now);
            }
            let work = self.supervisor.end_batch(now);
            self.execute(work);
        }
        if self.read_retry.at.is_none() {
            self.read_retry.delay = RETRY_FIRST;
        }
    }

    /// Rereads every file, and forgets services whose file is gone.
    fn rescan(&mut self, now: Instant) {
        self.watch.rewatch_if_lost();
        let on_disk = match config::service_names(&self.dir) {
            Ok(names) => names,
            // The watch has said so already, once.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(err) => {
                if config::is_transient(&err) {
                    self.read_retry.schedule(now);
                    if std::mem::replace(&mut self.read_retry.rescan, true) {
                        return; // said once
                    }
                }
                let why = config::describe_io(&err);
                log::warn!(
                    "cannot read {}: {why}; services keep running",
                    self.dir.display()
                );
                return;
            }
        };
        self.read_retry.rescan = false;
        let mut names: Vec<String> = self.supervisor.names().map(str::to_string).collect();
        names.extend(on_disk);
        names.sort();
        names.dedup();
        self.supervisor.begin_batch(true);
        for name in names {
            self.reload(&name, now);
        }
        let work = self.supervisor.end_batch(now);
        self.execute(work);
    }
}

/// Taking over from an earlier going, recording for the next one, and the
/// upgrade that makes going its own next one.
impl EventLoop {
    /// Adopts what the state file says an earlier going left running: each
    /// process that is alive with its recorded start time and command line.
    fn take_over(&mut self) {
        let saved = match state::read(&self.state_path) {
            Ok(Some(saved)) => saved,
            Ok(None) => return,
            Err(why) => {
                log::warn!("{why}");
                return;
            }
        };
        let me = std::process::id() as i32;
        let mut adoptions = Vec::new();
        for record in saved.services {
            if !state::still_running(&record) {
                continue;
            }
            // After an upgrade they are still going's children; after a
            // crash they belong to init, and only a pidfd tells their end.
            if state::parent(record.pid) != Some(me) {
                let Some(fd) = state::pidfd(record.pid) else {
                    let why = nix::errno::Errno::last().desc();
                    log::warn!(target: &record.name, "cannot watch pid {}: {why}; starting anew", record.pid);
                    continue;
                };
                self.adopted.push(AdoptedWatch {
                    pid: record.pid,
                    fd,
                    done: false,
                });
            }
            adoptions.push(Adoption {
                age: state::age(record.start_time).unwrap_or_default(),
                name: record.name,
                pid: record.pid,
                restarts: record.restarts,
                fingerprint: record.fingerprint,
            });
        }
        if let (Some(main), Some((pid, start))) = (&mut self.main, saved.main)
            && state::start_time(pid) == Some(start)
            && state::parent(pid) == Some(me)
        {
            log::info!("main command adopted, pid {pid}");
            main.pid = Some(pid);
        }
        // The same pid: this going is the exec of an upgrade, and the
        // pipes the state names are still open.
        if saved.writer == me {
            for pipe in saved.pipes {
                if !adoptions.iter().any(|a| a.pid == pipe.pid) || !is_fifo(pipe.fd) {
                    continue;
                }
                // SAFETY: fcntl on a descriptor that was just checked.
                unsafe { libc::fcntl(pipe.fd, libc::F_SETFD, libc::FD_CLOEXEC) };
                self.context.inherited.retain(|&fd| fd != pipe.fd);
                // SAFETY: the old going left this pipe open for its heir,
                // and nothing else in this process owns it.
                let fd = unsafe { std::os::fd::FromRawFd::from_raw_fd(pipe.fd) };
                self.outputs
                    .push(OutputPipe::new(&pipe.name, pipe.pid, pipe.stderr, fd));
            }
        }
        self.supervisor.take_over(adoptions, saved.down);
    }

    /// Adopted processes no service took: their file is gone (stopped, as
    /// a removed file stops its service) or does not parse (left alone).
    fn stop_unclaimed(&mut self) {
        for orphan in self.supervisor.unclaimed() {
            self.adopted.retain(|watch| watch.pid != orphan.pid);
            let base = crate::service::base_name(&orphan.name);
            if matches!(config::load(&self.dir, base), config::Loaded::Broken { .. }) {
                log::warn!(target: &orphan.name, "pid {} left running unsupervised: its file does not parse", orphan.pid);
                continue;
            }
            log::info!(target: &orphan.name, "no longer defined, sending TERM to pid {}", orphan.pid);
            signal_group(orphan.pid, libc::SIGTERM);
        }
    }

    /// An adopted process that is not going's child has ended.
    fn adopted_ended(&mut self, index: usize) {
        let Some(watch) = self.adopted.get_mut(index) else {
            return;
        };
        watch.done = true;
        let pid = watch.pid;
        let Some(name) = self.supervisor.by_pid(pid).map(str::to_string) else {
            return;
        };
        let exited = Event::Exited {
            status: Exit::Unknown,
            exec_error: None,
        };
        let work = self.supervisor.event(&name, exited, Instant::now());
        self.execute(work);
        let work = self.supervisor.awaiting_group();
        self.execute(work);
    }

    /// Writes what a next going needs to take over, service by service.
    fn write_state(
        &self,
        out: &mut dyn std::io::Write,
        known: &[Recorded],
    ) -> std::io::Result<Vec<Recorded>> {
        state::write_header(out, std::process::id() as i32)?;
        if let Some(main) = self.main.as_ref().filter(|main| main.is_running())
            && let Some(pid) = main.pid
            && let Some(start) = state::start_time(pid)
        {
            state::write_main(out, pid, start)?;
        }
        let mut recorded = Vec::new();
        for s in self.supervisor.services() {
            if s.admin_down {
                state::write_down(out, s.name())?;
            }
            if !matches!(s.state, State::Starting | State::Running | State::Stopping) {
                continue;
            }
            let Some(pid) = s.pid else { continue };
            let exec_done = s.state != State::Starting;
            let cached = known
                .binary_search_by_key(&pid, |r| r.pid)
                .ok()
                .and_then(|at| known.get(at))
                .filter(|r| r.exec_done || !exec_done);
            let (start_time, cmdline) = match cached {
                Some(r) => (r.start_time, r.cmdline),
                None => {
                    let fresh = self.fresh_spawns.iter().find(|f| f.pid == pid);
                    let known = fresh.and_then(|f| f.start_time);
                    let Some(start_time) = known.or_else(|| state::start_time(pid)) else {
                        continue;
                    };
                    // What going exec'd, for a process it started: /proc
                    // may still show going's own command line, or none.
                    // An adopted one has had its exec long ago.
                    let cmdline = if exec_done && fresh.is_none() {
                        state::fnv1a(&state::cmdline(pid).unwrap_or_default())
                    } else {
                        let argv = s.spec.argv.iter();
                        argv.fold(state::Fnv::default(), |h, a| {
                            h.feed(a.as_bytes()).feed(b"\0")
                        })
                        .0
                    };
                    (start_time, cmdline)
                }
            };
            let record = state::Record {
                name: s.name().to_string(),
                pid,
                start_time,
                fingerprint: s.fingerprint,
                restarts: s.restarts,
                cmdline,
            };
            record.write_to(out)?;
            recorded.push(Recorded {
                pid,
                start_time,
                exec_done,
                cmdline: record.cmdline,
            });
        }
        recorded.sort_unstable_by_key(|r| r.pid);
        Ok(recorded)
    }

    /// Rewrites the state file when a pid or state changed.
    fn record_state(&mut self) {
        let mut signature = state::Fnv::default();
        for s in self.supervisor.services() {
            signature = signature
                .feed(s.name().as_bytes())
                .feed(&s.pid.unwrap_or(0).to_le_bytes())
                .feed(s.state.name().as_bytes())
                .feed(&[u8::from(s.admin_down)]);
        }
        let main = self
            .main
            .as_ref()
            .and_then(|m| m.pid.filter(|_| m.is_running()));
        let signature = signature.feed(&main.unwrap_or(0).to_le_bytes()).0;
        if signature == self.recorded {
            return;
        }
        self.recorded = signature;
        let known = std::mem::take(&mut self.recorded_procs);
        let mut fresh = Vec::new();
        let written = state::write(&self.state_path, |out| {
            fresh = self.write_state(out, &known)?;
            Ok(())
        });
        self.recorded_procs = fresh;
        // Recorded now, or read from /proc next time (its exec long done).
        self.fresh_spawns.clear();
        match written {
            Ok(()) => self.state_failed = false,
            Err(why) if !self.state_failed => {
                log::warn!("{why}; a going restarted after a crash may start services twice");
                self.state_failed = true;
            }
            Err(_) => {}
        }
    }

    /// SIGUSR2: execs going's binary (the new one, after a package upgrade)
    /// with the same arguments. The services stay going's children; the
    /// new going takes them over from the state file. A failed exec leaves
    /// this going as it was.
    fn upgrade(&mut self) {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        if self.supervisor.is_shutting_down() {
            log::warn!("SIGUSR2 during shutdown, not upgrading");
            return;
        }
        let exe = match std::fs::read_link("/proc/self/exe") {
            Ok(exe) => exe.into_os_string().into_vec(),
            Err(err) => {
                log::error!(
                    "cannot upgrade: /proc/self/exe: {}",
                    config::describe_io(&err)
                );
                return;
            }
        };
        // A replaced binary shows as "PATH (deleted)": the new one is at PATH.
        let exe = exe
            .strip_suffix(b" (deleted)")
            .map_or(exe.clone(), <[u8]>::to_vec);
        let shown = String::from_utf8_lossy(&exe).into_owned();
        let mut pipes = Vec::new();
        for pipe in &self.outputs {
            let (name, pid, stderr) = pipe.owner();
            // SAFETY: F_SETFD on a descriptor this loop owns.
            if unsafe { libc::fcntl(pipe.fd(), libc::F_SETFD, 0) } == 0 {
                pipes.push(state::Pipe {
                    name: name.to_string(),
                    pid,
                    stderr,
                    fd: pipe.fd(),
                });
            }
        }
        let written = state::write(&self.state_path, |out| {
            self.write_state(out, &[])?;
            pipes.iter().try_for_each(|pipe| pipe.write_to(out))
        });
        let args: Option<Vec<std::ffi::CString>> = std::iter::once(exe)
            .chain(self.argv.iter().map(|a| a.as_bytes().to_vec()))
            .map(|a| std::ffi::CString::new(a).ok())
            .collect();
        let failure = match (args, written) {
            (None, _) => "an argument holds a NUL byte".to_string(),
            (_, Err(why)) => why,
            (Some(args), Ok(())) => {
                log::info!("SIGUSR2, executing {shown}");
                let mut pointers: Vec<*const libc::c_char> =
                    args.iter().map(|a| a.as_ptr()).collect();
                pointers.push(std::ptr::null());
                // SAFETY: NUL-terminated strings and a null-terminated array
                // that outlive the call; execv returns only on failure.
                if let Some(path) = args.first() {
                    unsafe { libc::execv(path.as_ptr(), pointers.as_ptr()) };
                }
                format!(
                    "cannot execute {shown}: {}",
                    nix::errno::Errno::last().desc()
                )
            }
        };
        log::error!("upgrade failed: {failure}; going carries on");
        for pipe in &self.outputs {
            // SAFETY: F_SETFD on a descriptor this loop owns.
            unsafe { libc::fcntl(pipe.fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        self.recorded = 0; // the file names pipes that are closed again
    }
}

fn is_fifo(fd: i32) -> bool {
    // SAFETY: fstat into a zeroed struct; the result is checked.
    unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut stat) == 0 && stat.st_mode & libc::S_IFMT == libc::S_IFIFO
    }
}

/// One line on stderr about the main command, and in syslog if going logs
/// there: a container's user sees why it ended.
fn report_main_failure(why: &str) {
    use std::io::Write;
    log::error!("{why}");
    if !crate::log::to_stderr() {
        let _ = writeln!(std::io::stderr(), "going: {why}");
    }
}

/// Signals the process group led by `pid`, or `pid` alone if it has not
/// made its group yet (between fork and setsid).
fn signal_group(pid: i32, signal: i32) {
    // SAFETY: kill has no memory effects.
    let sent = unsafe { libc::kill(-pid, signal) };
    if sent != 0 && nix::errno::Errno::last() == nix::errno::Errno::ESRCH {
        // SAFETY: as above.
        unsafe { libc::kill(pid, signal) };
    }
}

/// Gives up the CPU once, right after going has started a process or
/// forwarded it a signal: that process now has the work to do, and the
/// scheduler often puts it on going's own core, where it would wait for
/// going's log lines and state file. It also keeps going, woken by the
/// next signal, from preempting the sender, so the main command is woken on
/// going's core rather than on an idle one (BENCH.md: about 0.1 ms off a
/// respawn, 40 µs off a forwarded signal). Once per turn of the loop
/// (`stepped_aside`), so that a mass restart does not wait on a thousand
/// children in turn.
fn step_aside(stepped_aside: &mut bool) {
    if !*stepped_aside {
        *stepped_aside = true;
        // SAFETY: sched_yield has no arguments and no memory effects.
        unsafe { libc::sched_yield() };
    }
}

/// The pid and status of a child that `waitpid` found ended.
fn ended(result: nix::Result<WaitStatus>) -> Option<(i32, Exit)> {
    match result {
        Ok(WaitStatus::Exited(pid, code)) => Some((pid.as_raw(), Exit::Code(code))),
        Ok(WaitStatus::Signaled(pid, signal, _)) => {
            Some((pid.as_raw(), Exit::Signal(signal as i32)))
        }
        _ => None,
    }
}

/// True while any live process of the group led by `pid` exists.
fn group_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let found = unsafe { libc::kill(-pid, 0) };
    if found != 0 {
        return nix::errno::Errno::last() != nix::errno::Errno::ESRCH;
    }
    // kill counts zombies, and those of an adopted service are another
    // parent's to reap (maybe never): only a live member keeps a stop going.
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .any(|p| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                return false;
            };
            let Some(after) = stat.rfind(')').and_then(|at| stat.get(at + 1..)) else {
                return false;
            };
            let mut fields = after.split_ascii_whitespace();
            let state = fields.next();
            // Fields 3 (state) and 5 (process group).
            state != Some("Z") && fields.nth(1).and_then(|g| g.parse().ok()) == Some(pid)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sigchld_after_a_quiet_spell_walks_at_once() {
        let mut walks = ReapWalks::default();
        let t0 = Instant::now();
        assert!(walks.requested(t0), "the first SIGCHLD walks at once");
        walks.walked(t0);
        let later = t0 + REAP_WALK_GAP;
        assert!(
            walks.requested(later),
            "one a full gap later walks at once too"
        );
        assert_eq!(walks.due, None);
    }

    #[test]
    fn sigchlds_within_the_gap_share_one_walk_at_its_end() {
        let mut walks = ReapWalks::default();
        let t0 = Instant::now();
        walks.walked(t0);
        let soon = t0 + REAP_WALK_GAP / 4;
        assert!(!walks.requested(soon));
        assert!(!walks.requested(soon + REAP_WALK_GAP / 4));
        assert_eq!(
            walks.due,
            Some(t0 + REAP_WALK_GAP),
            "one walk, at the end of the gap"
        );
        assert!(!walks.is_due(soon));
        assert!(walks.is_due(t0 + REAP_WALK_GAP));
        walks.walked(t0 + REAP_WALK_GAP);
        assert_eq!(walks.due, None, "a walk clears the one that was due");
    }
}
