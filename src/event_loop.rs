//! The loop: the one place that waits. It blocks in `poll(2)` on its
//! signalfd and on what the parts ask for, with the nearest deadline as
//! timeout; it reads signals, reaps children, passes each ready
//! descriptor, deadline and ended child to the part that owns it, and
//! carries out the actions services answer with.
//!
//! It knows no hook, pipe, socket or state file: those are parts
//! (`part.rs`), listed once in [`Parts`].

use crate::activity::Activity;
use crate::control_server::ControlServer;
use crate::directory::Directory;
use crate::hooks::Hooks;
use crate::log::StderrBacklog;
use crate::logfiles::LogFiles;
use crate::main_command::MainCommand;
use crate::output::Outputs;
use crate::part::{Cx, Handover, Notice, Outbox, Part, PollSet, Started};
use crate::readiness::Readiness;
use crate::schedules::Schedules;
use crate::service::{Action, Event, Exit};
use crate::signals;
use crate::spawn::{self, Context};
use crate::supervisor::Supervisor;
use crate::takeover::Takeover;
use crate::versions::Versions;
use nix::poll::{PollTimeout, poll};
use nix::sys::signal::SigSet;
use nix::sys::signal::Signal::{self, SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGSYS, SIGTRAP};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Declares the parts once: the struct and the list the loop walks.
macro_rules! parts {
    ($($(#[$doc:meta])* $name:ident: $part:ty,)*) => {
        pub struct Parts {
            $($(#[$doc])* pub $name: $part,)*
        }

        impl Parts {
            fn each(&mut self) -> [&mut dyn Part; [$(stringify!($name)),*].len()] {
                [$(&mut self.$name),*]
            }
        }
    };
}

// The parts, each a file of its own; a new concern is one line here (and
// its construction in lib.rs). `main` comes last: it is offered every
// signal after the others, and its sweep of what is left starts only once
// every other part is done.
parts! {
    takeover: Takeover,
    directory: Directory,
    control: ControlServer,
    hooks: Hooks,
    readiness: Readiness,
    /// Before `output`: it takes its own pipes back from an upgrade first.
    logs: LogFiles,
    output: Outputs,
    log: StderrBacklog,
    versions: Versions,
    schedules: Schedules,
    activity: Activity,
    main: MainCommand,
}

/// The poll tag of the signalfd, beside the parts' indexes.
const SIGNALS: usize = usize::MAX;

/// Every signal going reads from its signalfd.
pub fn handled_signals() -> SigSet {
    let mut set = SigSet::all();
    // Signals that stay deliverable: a fault in going itself must kill it
    // (and show up as a core) rather than loop forever.
    for signal in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS] {
        set.remove(signal);
    }
    set
}

/// Blocks the handled signals; the first thing a supervising going does,
/// so that no SIGTERM sent to a PID 1 can be lost in between.
pub fn block_signals() {
    let _ = handled_signals().thread_block();
}

pub struct EventLoop {
    supervisor: Supervisor,
    parts: Parts,
    context: Context,
    signals: SignalFd,
    reaping: Reaping,
    /// False once waitpid has said there is no child left.
    children_left: bool,
    out: Outbox,
    /// The status of a critical service that ended going.
    critical_exit: Option<i32>,
    /// [`EventLoop::settle`] is under way.
    settling: bool,
}

impl EventLoop {
    pub fn new(parts: Parts, context: Context) -> Result<EventLoop, String> {
        let signals = SignalFd::with_flags(
            &handled_signals(),
            SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
        )
        .map_err(|errno| format!("cannot create a signalfd: {}", errno.desc()))?;
        Ok(EventLoop {
            supervisor: Supervisor::default(),
            parts,
            context,
            signals,
            reaping: Reaping::default(),
            children_left: true,
            out: Outbox::default(),
            critical_exit: None,
            settling: false,
        })
    }

    /// Runs until an orderly shutdown has finished; going's exit status.
    pub fn run(&mut self) -> i32 {
        let mut handover = self.parts.takeover.take_over(&mut self.supervisor);
        for part in self.parts.each() {
            part.take_back(&mut handover);
        }
        if let Err(code) = self.parts.main.start(&self.context) {
            return code;
        }
        self.notice(Notice::Rescan);
        self.with_parts(|parts, cx| parts.takeover.stop_unclaimed(cx));
        let mut fired = Vec::new();
        loop {
            if let Some(code) = self.finished() {
                return code;
            }
            self.each_part(|part, cx| part.before_sleep(cx));
            self.out.stepped_aside = false;
            let timeout = self.timeout();
            {
                let mut set = PollSet::default();
                set.for_part(SIGNALS);
                set.read(self.signals.as_fd(), 0);
                let parts = self.parts.each();
                for (index, part) in parts.iter().enumerate() {
                    set.for_part(index);
                    part.fds(&mut set);
                }
                fired.clear();
                match poll(set.fds_mut(), timeout) {
                    Ok(_) => set.fired(&mut fired),
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(errno) => log::error!("poll: {}", errno.desc()),
                }
            }
            // Signals first: a reaped child is never mistaken for a live one.
            if fired.iter().any(|&(part, _, _)| part == SIGNALS) {
                self.read_signals();
            }
            for &(index, token, revents) in fired.iter().filter(|f| f.0 != SIGNALS) {
                self.with_part(index, |part, cx| part.ready(token, revents, cx));
            }
            self.deadlines(Instant::now());
        }
    }

    /// Milliseconds until the nearest deadline, rounded up so the loop
    /// never wakes early and spins; none (forever) when nothing is pending.
    fn timeout(&mut self) -> PollTimeout {
        let parts = self.parts.each().into_iter().filter_map(|p| p.deadline());
        let nearest = [self.supervisor.next_deadline(), self.reaping.walk_due]
            .into_iter()
            .flatten()
            .chain(parts)
            .min();
        let Some(at) = nearest else {
            return PollTimeout::NONE;
        };
        let left = at.saturating_duration_since(Instant::now());
        let ms = left.as_micros().div_ceil(1000);
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
    }

    /// Whatever deadline has come: a deferred walk of the children, a
    /// service's timer, a part's.
    fn deadlines(&mut self, now: Instant) {
        if self.reaping.walk_due.is_some_and(|at| at <= now) {
            self.reap();
        }
        for name in self.supervisor.due(now) {
            self.event(&name, Event::Deadline, now);
            self.settle();
        }
        for index in 0..self.parts.each().len() {
            let due = self.parts.each().get(index).and_then(|p| p.deadline());
            if due.is_some_and(|at| at <= now) {
                self.with_part(index, |part, cx| part.due(cx));
            }
        }
    }

    /// Going's exit status once everything has stopped, else `None`.
    fn finished(&mut self) -> Option<i32> {
        if !self.supervisor.is_shutting_down() || !self.supervisor.all_stopped() {
            return None;
        }
        let mut busy = false;
        self.each_part(|part, cx| busy = busy || part.busy(cx));
        if busy {
            return None;
        }
        self.notice(Notice::Exiting);
        log::info!("all services stopped, exiting");
        Some(self.critical_exit.unwrap_or(self.parts.main.exit_code()))
    }

    /// Feeds one event to a service; what it answers is carried out next.
    fn event(&mut self, name: &str, event: Event, now: Instant) {
        let work = self.supervisor.event(name, event, now);
        self.out.work.extend(work);
    }

    /// Calls `f` on every part, then carries out what they asked for.
    fn each_part(&mut self, mut f: impl FnMut(&mut dyn Part, &mut Cx<'_>)) {
        self.with_parts(|parts, cx| {
            for part in parts.each() {
                f(part, cx);
            }
        });
    }

    /// Calls `f` on the part `index`, then carries out what it asked for.
    fn with_part(&mut self, index: usize, f: impl FnOnce(&mut dyn Part, &mut Cx<'_>)) {
        self.with_parts(|parts, cx| {
            if let Some(part) = parts.each().into_iter().nth(index) {
                f(part, cx);
            }
        });
    }

    /// Calls `f` with the parts and what they are given, then (unless
    /// this is within a [`EventLoop::settle`] already) settles.
    fn with_parts(&mut self, f: impl FnOnce(&mut Parts, &mut Cx<'_>)) {
        let mut cx = Cx {
            now: Instant::now(),
            supervisor: &mut self.supervisor,
            spawn: &self.context,
            out: &mut self.out,
            children_left: &mut self.children_left,
            main_pid: self.parts.main.running_pid(),
        };
        f(&mut self.parts, &mut cx);
        if !self.settling {
            self.settle();
        }
    }

    /// Carries out what the parts and services asked for, and what that
    /// leads to, until nothing is left.
    fn settle(&mut self) {
        // Within a settle, what more is asked waits its turn: in order.
        self.settling = true;
        while !self.out.is_empty() {
            for mut started in std::mem::take(&mut self.out.started) {
                self.each_part(|part, cx| part.spawned(&mut started, cx));
            }
            // In order: what an action leads to comes after the actions
            // already asked for.
            for (name, action) in std::mem::take(&mut self.out.work) {
                self.execute(&name, action);
            }
            for notice in std::mem::take(&mut self.out.notices) {
                self.notice(notice);
            }
        }
        self.settling = false;
    }

    /// Passes a notice to every part; the loop answers a few itself.
    fn notice(&mut self, notice: Notice) {
        match notice {
            Notice::Shutdown => return self.shut_down(),
            Notice::Upgrade if self.supervisor.is_shutting_down() => {
                log::warn!("upgrade requested during shutdown, not upgrading");
                return;
            }
            Notice::Upgrade => {
                let mut handover = Handover::default();
                for part in self.parts.each() {
                    part.hand_over(&mut handover);
                }
                return self.parts.takeover.upgrade(&self.supervisor, handover);
            }
            _ => {}
        }
        self.each_part(|part, cx| part.notice(notice, cx));
    }

    /// Carries out one action of a service; its outcome is the next event.
    fn execute(&mut self, name: &str, action: Action) {
        let now = Instant::now();
        match action {
            Action::Spawn => self.spawn(name),
            Action::Signal { pid, signal } => crate::util::signal_group(pid, signal),
            Action::SignalGroup { group, signal } => {
                // Never 0 or 1: killpg would reach going's own group, or all.
                if let (true, Ok(signal)) = (group > 1, Signal::try_from(signal)) {
                    let _ = nix::sys::signal::killpg(Pid::from_raw(group), signal);
                }
            }
            Action::CheckGroup { pid } => {
                if !crate::procfs::group_alive(pid) {
                    self.event(name, Event::GroupGone, now);
                }
            }
            Action::Critical { code } => {
                if self.critical_exit.is_none() {
                    self.critical_exit = Some(code);
                    log::error!(
                        "critical service {name} ended with status {code}, stopping everything"
                    );
                }
                self.shut_down();
            }
            other => {
                let mut done = false;
                self.each_part(|part, cx| done = done || part.act(name, &other, cx));
                if !done {
                    log::debug!(target: name, "no part carries out {other:?}");
                }
            }
        }
    }

    /// Starts `name`'s process; the parts take their share of it, and the
    /// service learns that it runs.
    fn spawn(&mut self, name: &str) {
        let now = Instant::now();
        let Some(service) = self.supervisor.services().find(|s| s.name() == name) else {
            return;
        };
        // A pid file left from an earlier run must not name a stranger.
        if let Some(path) = &service.spec.extras().pid_file {
            let _ = std::fs::remove_file(path);
        }
        self.each_part(|part, cx| part.spawning(name, cx));
        let Some(service) = self.supervisor.services().find(|s| s.name() == name) else {
            return;
        };
        let child = match spawn::spawn(&service.spec, &self.context) {
            Ok(child) => child,
            Err(reason) => return self.event(name, Event::SpawnFailed(reason), now),
        };
        let exec_failure = child
            .exec_failure
            .map(|(step, errno)| spawn::describe_failure(step, errno, &service.spec));
        let pid = child.pid;
        let mut started = Started {
            name: name.to_string(),
            hook: false,
            child,
        };
        self.each_part(|part, cx| part.spawned(&mut started, cx));
        self.event(name, Event::Spawned(pid), now);
        match exec_failure {
            Some(why) => self.reaping.failed_execs.push((pid, why)),
            None => self.event(name, Event::ExecOk, now),
        }
        self.out.step_aside();
    }

    fn read_signals(&mut self) {
        let mut reap = false;
        self.reaping.hints.clear();
        loop {
            let info = match self.signals.read_signal() {
                Ok(Some(info)) => info,
                Ok(None) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => {
                    log::error!("reading the signalfd: {}", errno.desc());
                    break;
                }
            };
            let signal = info.ssi_signo as i32;
            if signal == libc::SIGCHLD {
                reap = true;
                if matches!(
                    info.ssi_code,
                    libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED
                ) {
                    self.reaping.hints.push(info.ssi_pid as i32);
                }
                continue;
            }
            let mut taken = false;
            self.each_part(|part, cx| taken = taken || part.signal(signal, cx));
            if !taken {
                self.signalled(signal);
            }
        }
        if reap {
            self.reap();
        }
    }

    /// A signal no part took.
    fn signalled(&mut self, signal: i32) {
        let name = signals::name(signal);
        match signal {
            libc::SIGHUP => {
                log::info!("SIGHUP, rescanning {}", self.parts.directory.dir.display());
                self.notice(Notice::Rescan);
            }
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT if self.supervisor.is_shutting_down() => {
                log::warn!("SIG{name} again, killing what is left");
                self.out.work.extend(self.supervisor.kill_all());
                self.out.notices.push(Notice::KillAll);
                self.settle();
            }
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => {
                let active = self.supervisor.services().filter(|s| s.is_active()).count();
                let active = crate::util::counted(active as u64, "service");
                log::info!("SIG{name}, stopping {active}");
                self.shut_down();
            }
            libc::SIGUSR1 => crate::status::log_summary(&self.supervisor, Instant::now()),
            libc::SIGUSR2 => self.notice(Notice::Upgrade),
            _ => {}
        }
    }

    /// Stops every service, in order; going exits once all have stopped.
    fn shut_down(&mut self) {
        if self.supervisor.is_shutting_down() {
            return;
        }
        let work = self.supervisor.shutdown(Instant::now());
        self.out.work.extend(work);
        self.notice(Notice::ShuttingDown);
    }

    /// After SIGCHLD, or when a deferred walk is due: the children the
    /// signals named at once, the rest by a walk when [`Reaping`] allows.
    fn reap(&mut self) {
        let now = Instant::now();
        for pid in std::mem::take(&mut self.reaping.hints) {
            // Not a child (anyone may send SIGCHLD), or reaped already: no status.
            if let Some((pid, status)) =
                ended(waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)))
            {
                self.child_ended(pid, status);
            }
        }
        if self.reaping.walk_requested(now) {
            loop {
                match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) => break,
                    Err(nix::errno::Errno::ECHILD) => {
                        self.children_left = false;
                        break;
                    }
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(errno) => {
                        log::error!("waitpid: {}", errno.desc());
                        break;
                    }
                    result => {
                        if let Some((pid, status)) = ended(result) {
                            self.child_ended(pid, status);
                        }
                    }
                }
            }
        }
        // Orphans of a stopping group may have been among them.
        self.out.work.extend(self.supervisor.awaiting_group());
        self.settle();
    }

    /// A reaped child: its part's, else a service's process.
    fn child_ended(&mut self, pid: i32, status: Exit) {
        let mut taken = false;
        self.each_part(|part, cx| taken = taken || part.reaped(pid, status, cx));
        // Whoever it was, why it could not exec (if so) is done with.
        let failed = &mut self.reaping.failed_execs;
        let exec_error = failed
            .iter()
            .position(|&(p, _)| p == pid)
            .map(|index| failed.swap_remove(index).1);
        if taken {
            return;
        }
        let Some(name) = self.supervisor.by_pid(pid).map(str::to_string) else {
            return;
        };
        self.event(&name, Event::Exited { status, exec_error }, Instant::now());
        self.settle();
    }
}

/// The shortest time between two walks of the children list (below).
const REAP_WALK_GAP: Duration = Duration::from_millis(1);

/// What the loop knows of its children. A SIGCHLD names the child it is
/// for, and that child is reaped at once by its pid, which the kernel finds
/// without a search. A child whose SIGCHLD merged into one already pending
/// is found only by `waitpid(-1)`, which walks the list of live children up
/// to the first zombie: in a burst of thousands of orphans' exits (a
/// container's process tree torn down) a walk after each exit took going
/// most of a core, about 0.7 s for 10,000, whenever they died out of the
/// list's order. So walks come at most one per [`REAP_WALK_GAP`]: at once
/// for a SIGCHLD after a quiet spell, else at the end of the gap.
#[derive(Default)]
struct Reaping {
    last_walk: Option<Instant>,
    walk_due: Option<Instant>,
    /// Pids named by the SIGCHLDs of one read of the signalfd.
    hints: Vec<i32>,
    /// Services' children that could not exec, and why, until reaped.
    failed_execs: Vec<(i32, String)>,
}

impl Reaping {
    /// A SIGCHLD came at `now`: true when the walk is to be made now (it
    /// counts as made); otherwise it is due at the end of the gap.
    fn walk_requested(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last_walk
            && now < last + REAP_WALK_GAP
        {
            self.walk_due = Some(last + REAP_WALK_GAP);
            return false;
        }
        self.last_walk = Some(now);
        self.walk_due = None;
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sigchld_after_a_quiet_spell_walks_at_once() {
        let mut reaping = Reaping::default();
        let t0 = Instant::now();
        assert!(
            reaping.walk_requested(t0),
            "the first SIGCHLD walks at once"
        );
        let later = t0 + REAP_WALK_GAP;
        assert!(
            reaping.walk_requested(later),
            "one a full gap later walks at once too"
        );
        assert_eq!(reaping.walk_due, None);
    }

    #[test]
    fn sigchlds_within_the_gap_share_one_walk_at_its_end() {
        let mut reaping = Reaping::default();
        let t0 = Instant::now();
        assert!(reaping.walk_requested(t0));
        let soon = t0 + REAP_WALK_GAP / 4;
        assert!(!reaping.walk_requested(soon));
        assert!(!reaping.walk_requested(soon + REAP_WALK_GAP / 4));
        assert_eq!(
            reaping.walk_due,
            Some(t0 + REAP_WALK_GAP),
            "one walk, at the end of the gap"
        );
        assert!(reaping.walk_requested(t0 + REAP_WALK_GAP), "due at the end");
        assert_eq!(reaping.walk_due, None, "a walk clears the one that was due");
    }
}
