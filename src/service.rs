//! One service's life: its [`State`], the events that move it, and the
//! actions each transition asks for. This file never calls the kernel; the
//! event loop carries out the actions and reports what happened as the next
//! event, so every transition is testable with nothing but `Instant`s.

use crate::config::values::format_duration;
use crate::config::{Readiness, Restart, ServiceSpec};
use crate::signals;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A run shorter than this counts toward backoff; a longer one resets it.
pub const SHORT_RUN: Duration = Duration::from_secs(5);
/// The delay after the first short run; it doubles after each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest a crash-looping service waits between starts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a stop rechecks a process group whose leader is gone.
const GROUP_RECHECK_FIRST: Duration = Duration::from_millis(10);
const GROUP_RECHECK_MAX: Duration = Duration::from_secs(1);
/// A service restarted this many times within [`FLAP_WINDOW`] is flapping.
pub const FLAP_RESTARTS: usize = 5;
pub const FLAP_WINDOW: Duration = Duration::from_secs(60);

/// The delay before the next start after `short_runs` short runs in a row.
pub fn backoff_delay(short_runs: u32) -> Duration {
    let doublings = short_runs.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not running and not meant to until told.
    Stopped,
    /// Forked; its exec has not been confirmed yet.
    Starting,
    Running,
    /// Told to stop; waiting for its process group to empty.
    Stopping,
    /// Waiting out a restart delay after dying quickly.
    Backoff,
    /// Ended and, by its restart policy, not restarted.
    Exited,
    /// `enabled = false`.
    Disabled,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Backoff => "backoff",
            State::Exited => "exited",
            State::Disabled => "disabled",
        }
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// An adopted process (not going's child) ended: only its parent
    /// could learn how.
    Unknown,
}

impl Exit {
    /// As a shell reports it: the exit status, or 128+N for signal N.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(signal) => 128 + signal,
            Exit::Unknown => 1,
        }
    }

    fn describe(self) -> String {
        match self {
            Exit::Code(code) => format!("exited with status {code}"),
            Exit::Signal(signal) => format!("killed by signal {}", signals::name(signal)),
            Exit::Unknown => "ended (status unknown: adopted, not going's child)".to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Start unless running; a disabled definition goes to `disabled`.
    Start,
    /// Stop and stay stopped.
    Stop,
    /// The loop forked the process.
    Spawned(i32),
    /// The loop could not even fork (user unknown, output unopenable, ...).
    SpawnFailed(String),
    /// The process's exec succeeded.
    ExecOk,
    /// The process was reaped; `exec_error` says why its exec failed, if it did.
    Exited {
        status: Exit,
        exec_error: Option<String>,
    },
    /// No process of the stopped service's group is left.
    GroupGone,
    /// A hook ended.
    HookDone { hook: Hook, status: Exit },
    /// The pid file names this live process (`None`: not yet).
    PidFile(Option<i32>),
    /// The service said it is ready (ready-fd or NOTIFY_SOCKET).
    Ready,
    /// The service's deadline has come.
    Deadline,
    /// A process an earlier going started for this service is still
    /// running: it is the service's process now.
    Adopted {
        pid: i32,
        /// How long it has run, in milliseconds (no `Duration` here: the
        /// debug log of ignored events would pull in its formatting).
        age_ms: u64,
        restarts: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fork and exec the current definition; answer `Spawned` or `SpawnFailed`.
    Spawn,
    /// Send `signal` to the process group led by `pid`.
    Signal { pid: i32, signal: i32 },
    /// See whether the group led by `pid` is empty; answer `GroupGone` if so.
    CheckGroup { pid: i32 },
    /// A critical service has ended for good: going stops everything and
    /// exits with `code`.
    Critical { code: i32 },
    /// Run one of the service's hooks with these variables added to its
    /// environment; answer `HookDone` when it ends.
    RunHook {
        hook: Hook,
        env: Vec<(String, String)>,
    },
    /// Kill a hook still running (a `before` whose start was called off).
    CancelHook { hook: Hook },
    /// Read the service's pid file; answer `PidFile`.
    ReadPidFile,
}

/// How often a service waiting for its pid file looks again.
const PID_FILE_RECHECK: Duration = Duration::from_millis(50);

/// The commands a service runs besides itself, each a child of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Must exit 0 before each start.
    Before,
    /// Run instead of sending the stop signal.
    Stop,
    /// Run after every exit.
    OnExit,
    /// Run every `interval` while the service runs.
    Health,
    /// Run every `ready-interval` until the service is ready.
    Ready,
}

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::Before => "before",
            Hook::Stop => "stop",
            Hook::OnExit => "on-exit",
            Hook::Health => "health-check",
            Hook::Ready => "ready",
        }
    }
}

/// A critical service that has had this many short runs in a row (about
/// 50 s of backoff in all) has failed for good.
pub const CRITICAL_SHORT_RUNS: u32 = 10;

/// What a stop leads to once the process group is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterStop {
    Rest,
    Restart,
    /// Restart, after the backoff its short runs call for.
    RestartAfterBackoff,
    /// The supervisor drops the service.
    Remove,
}

#[derive(Debug)]
pub struct Service {
    pub spec: ServiceSpec,
    pub state: State,
    /// The process (and process group) while starting, running or stopping.
    pub pid: Option<i32>,
    pub started_at: Option<Instant>,
    /// Automatic restarts since the definition was last (re)loaded.
    pub restarts: u32,
    pub last_exit: Option<Exit>,
    /// When the next `Deadline` event is due.
    pub deadline: Option<Instant>,
    /// When the last process ended.
    pub exited_at: Option<Instant>,
    /// `going stop`: stays stopped, across reloads, until `going start`.
    pub admin_down: bool,
    /// Of the file it was defined by (`Origin::fingerprint`).
    pub fingerprint: u64,
    /// The last few automatic restarts, for flapping.
    recent_restarts: VecDeque<Instant>,
    /// A `before` hook is running: the service is starting but has no pid.
    before_running: bool,
    health_running: bool,
    /// Failed health checks in a row.
    health_failures: u32,
    /// Waiting for the pid file of a daemonized command, until then.
    pid_file_until: Option<Instant>,
    /// The process is a daemon found through the pid file.
    following_daemon: bool,
    /// Running and ready to serve (at once, for a service that does not
    /// say when it is).
    pub ready: bool,
    /// A service that says when it is ready must have by then.
    ready_until: Option<Instant>,
    /// Why it may not start now (its dependencies), kept current by the
    /// supervisor; `None` when it may.
    pub blocked: Option<String>,
    /// A start was held back by `blocked`; it happens once that clears.
    pub waiting: bool,
    ready_check_running: bool,
    short_runs: u32,
    after_stop: AfterStop,
    /// A definition to switch to once the current process has stopped.
    pending_spec: Option<Box<ServiceSpec>>,
    kill_at: Option<Instant>,
    leader_gone: bool,
    group_recheck: Duration,
}

impl Service {
    pub fn new(spec: ServiceSpec) -> Service {
        Service {
            spec,
            state: State::Stopped,
            pid: None,
            started_at: None,
            restarts: 0,
            last_exit: None,
            deadline: None,
            exited_at: None,
            admin_down: false,
            fingerprint: 0,
            recent_restarts: VecDeque::new(),
            before_running: false,
            health_running: false,
            health_failures: 0,
            pid_file_until: None,
            following_daemon: false,
            ready: false,
            ready_until: None,
            blocked: None,
            waiting: false,
            ready_check_running: false,
            short_runs: 0,
            after_stop: AfterStop::Rest,
            pending_spec: None,
            kill_at: None,
            leader_gone: false,
            group_recheck: GROUP_RECHECK_FIRST,
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The file's name: `web` for `web` and for `web@3`.
    pub fn base_name(&self) -> &str {
        base_name(&self.spec.name)
    }

    /// True after [`FLAP_RESTARTS`] restarts within [`FLAP_WINDOW`], or as
    /// many short runs in a row (a crash loop slowed down by backoff).
    pub fn is_flapping(&self, now: Instant) -> bool {
        self.short_runs as usize >= FLAP_RESTARTS
            || self.recent_restarts.len() >= FLAP_RESTARTS
                && self
                    .recent_restarts
                    .front()
                    .is_some_and(|&at| now.saturating_duration_since(at) <= FLAP_WINDOW)
    }

    fn count_restart(&mut self, now: Instant) {
        self.restarts = self.restarts.saturating_add(1);
        if self.recent_restarts.len() >= FLAP_RESTARTS {
            self.recent_restarts.pop_front();
        }
        self.recent_restarts.push_back(now);
    }

    /// `going stop`: an administrative down.
    pub fn admin_stop(&mut self, now: Instant) -> Vec<Action> {
        self.admin_down = true;
        self.waiting = false;
        let actions = self.on(Event::Stop, now);
        if self.after_stop == AfterStop::Restart {
            self.after_stop = AfterStop::Rest;
        }
        actions
    }

    /// `going start`: ends an administrative down and starts now, even
    /// from backoff.
    pub fn admin_start(&mut self, now: Instant) -> Vec<Action> {
        self.admin_down = false;
        if self.state == State::Stopping && self.after_stop != AfterStop::Remove {
            // Start again once the stop under way has finished.
            self.after_stop = AfterStop::Restart;
            return vec![];
        }
        self.on(Event::Start, now)
    }

    /// `going restart`: stops (if running) and starts again.
    pub fn admin_restart(&mut self, now: Instant) -> Vec<Action> {
        self.admin_down = false;
        if self.is_active() {
            self.stop_then_start(now)
        } else {
            self.on(Event::Start, now)
        }
    }

    /// Stops the running process and starts again once it is gone.
    fn stop_then_start(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = self.on(Event::Stop, now);
        self.after_stop = AfterStop::Restart;
        if !self.is_active() {
            actions.extend(self.finish_stop(now));
        }
        actions
    }

    /// True when a stop that leads to removal has finished.
    pub fn is_removable(&self) -> bool {
        self.after_stop == AfterStop::Remove && !self.is_active()
    }

    /// True while a process of this service may exist.
    pub fn is_active(&self) -> bool {
        matches!(
            self.state,
            State::Starting | State::Running | State::Stopping
        )
    }

    /// True while a stop that ends in removal is under way.
    pub fn is_being_removed(&self) -> bool {
        self.after_stop == AfterStop::Remove
    }

    /// Cancels a removal under way: the service starts again once stopped.
    pub fn keep(&mut self) {
        self.after_stop = AfterStop::Restart;
    }

    pub fn leader_gone(&self) -> bool {
        self.leader_gone
    }

    /// Switches to a new definition: at once if nothing runs, else after
    /// an orderly stop.
    pub fn replace(&mut self, spec: ServiceSpec, now: Instant) -> Vec<Action> {
        self.restarts = 0;
        self.short_runs = 0;
        if self.is_active() {
            self.pending_spec = Some(Box::new(spec));
            self.stop_then_start(now)
        } else {
            self.spec = spec;
            self.after_stop = AfterStop::Rest;
            self.on(Event::Start, now)
        }
    }

    /// Stops the service for good; the supervisor drops it once
    /// [`Service::is_removable`].
    pub fn remove(&mut self, now: Instant) -> Vec<Action> {
        let actions = self.on(Event::Stop, now);
        self.after_stop = AfterStop::Remove;
        self.pending_spec = None;
        actions
    }

    pub fn on(&mut self, event: Event, now: Instant) -> Vec<Action> {
        match (self.state, event) {
            (State::Stopped | State::Backoff | State::Exited | State::Disabled, Event::Start) => {
                if self.admin_down {
                    return vec![];
                }
                self.deadline = None;
                if self.spec.enabled {
                    self.begin_start()
                } else {
                    self.enter(State::Disabled);
                    vec![]
                }
            }
            (_, Event::Start) => vec![],
            (
                State::Stopped,
                Event::Adopted {
                    pid,
                    age_ms,
                    restarts,
                },
            ) => {
                let age = Duration::from_millis(age_ms);
                self.pid = Some(pid);
                self.started_at = Some(now.checked_sub(age).unwrap_or(now));
                self.restarts = restarts;
                self.leader_gone = false;
                self.enter(State::Running);
                log::info!(target: &self.spec.name, "adopted, pid {pid}, running for {}", format_duration(age));
                // It was running before: ready, as far as going can tell.
                self.health_failures = 0;
                self.ready = true;
                self.deadline = self.health_deadline(now);
                vec![]
            }
            (_, Event::Adopted { .. }) => vec![],
            (_, Event::Spawned(pid)) => {
                self.following_daemon = false;
                self.pid = Some(pid);
                self.started_at = Some(now);
                self.leader_gone = false;
                self.enter(State::Starting);
                log::info!(target: &self.spec.name, "starting, pid {pid}");
                vec![]
            }
            (_, Event::SpawnFailed(reason)) => {
                self.pid = None;
                self.after_failure(&format!("cannot start: {reason}"), now)
            }
            (State::Starting, Event::ExecOk) => {
                self.enter(State::Running);
                log::info!(target: &self.spec.name, "running, pid {}", self.pid.unwrap_or(0));
                self.entered_running(now);
                vec![]
            }
            (State::Running, Event::Ready) if !self.ready => {
                self.become_ready(now);
                vec![]
            }
            (
                State::Running,
                Event::HookDone {
                    hook: Hook::Ready,
                    status,
                },
            ) => {
                self.ready_check_running = false;
                if self.ready {
                    return vec![];
                }
                if status == Exit::Code(0) {
                    self.become_ready(now);
                    return vec![];
                }
                self.deadline = self.next_ready_check(now);
                vec![]
            }
            (State::Running, Event::Deadline) if !self.ready => {
                if self.ready_until.is_some_and(|until| now >= until) {
                    let waited = format_duration(self.spec.extras().start_timeout);
                    let pid = self.pid.unwrap_or(0);
                    let then = if self.spec.restart == Restart::Never {
                        "stopping"
                    } else {
                        "restarting"
                    };
                    log::warn!(target: &self.spec.name, "not ready within {waited}, pid {pid}, {then}");
                    return self.restart_after_backoff(now);
                }
                self.deadline = self.ready_until;
                if matches!(
                    self.spec.extras().readiness,
                    Some(Readiness::Command { .. })
                ) && !self.ready_check_running
                {
                    self.ready_check_running = true;
                    return vec![Action::RunHook {
                        hook: Hook::Ready,
                        env: Vec::new(),
                    }];
                }
                vec![]
            }
            (
                State::Starting,
                Event::HookDone {
                    hook: Hook::Before,
                    status,
                },
            ) if self.before_running => {
                self.before_running = false;
                if status == Exit::Code(0) {
                    return vec![Action::Spawn];
                }
                self.last_exit = Some(status);
                self.after_failure(
                    &format!("cannot start: before hook {}", status.describe()),
                    now,
                )
            }
            (State::Starting, Event::Stop) if self.before_running => {
                self.before_running = false;
                self.enter(State::Stopped);
                vec![Action::CancelHook { hook: Hook::Before }]
            }
            (State::Starting | State::Running, Event::Exited { status, exec_error })
                if status == Exit::Code(0)
                    && exec_error.is_none()
                    && !self.following_daemon
                    && self.spec.extras().pid_file.is_some() =>
            {
                // The command daemonized: the service is whoever the pid file names.
                let pid = self.pid.take().unwrap_or(0);
                let file = self.pid_file_name();
                log::info!(target: &self.spec.name, "forked and exited, pid {pid}, waiting for {file}");
                self.enter(State::Starting);
                self.pid_file_until = Some(now + self.spec.extras().start_timeout);
                self.deadline = Some(now + PID_FILE_RECHECK);
                vec![Action::ReadPidFile]
            }
            (State::Starting, Event::PidFile(found)) if self.pid_file_until.is_some() => {
                let Some(pid) = found else { return vec![] };
                self.pid_file_until = None;
                self.following_daemon = true;
                self.pid = Some(pid);
                self.enter(State::Running);
                log::info!(target: &self.spec.name, "running, pid {pid} (from its pid file)");
                self.entered_running(now);
                vec![]
            }
            (State::Starting, Event::Deadline) if self.pid_file_until.is_some() => {
                if self.pid_file_until.is_some_and(|until| now >= until) {
                    self.pid_file_until = None;
                    self.deadline = None;
                    let file = self.pid_file_name();
                    let waited = format_duration(self.spec.extras().start_timeout);
                    return self.after_failure(
                        &format!("cannot start: {file} named no live process within {waited}"),
                        now,
                    );
                }
                self.deadline = Some(now + PID_FILE_RECHECK);
                vec![Action::ReadPidFile]
            }
            (State::Starting, Event::Stop)
                if self.pid_file_until.is_some() && self.pid.is_none() =>
            {
                self.pid_file_until = None;
                self.deadline = None;
                self.enter(State::Stopped);
                vec![]
            }
            (State::Starting | State::Running, Event::Exited { status, exec_error }) => {
                let mut actions = self.cancel_checks();
                self.reaped(status, now);
                self.deadline = None;
                let pid = self.pid.take().unwrap_or(0);
                let ran = self.ran_for(now);
                actions.extend(self.on_exit_hook(pid, status));
                if let Some(why) = exec_error {
                    actions.extend(
                        self.after_failure(&format!("cannot start: {why}, pid {pid}"), now),
                    );
                    return actions;
                }
                let what = format!(
                    "{} after {}, pid {pid}",
                    status.describe(),
                    format_duration(ran)
                );
                actions.extend(self.after_exit(
                    &what,
                    status != Exit::Code(0),
                    ran < SHORT_RUN,
                    now,
                ));
                actions
            }
            (State::Running, Event::Deadline) if !self.health_running => {
                self.deadline = None;
                self.health_running = true;
                vec![Action::RunHook {
                    hook: Hook::Health,
                    env: Vec::new(),
                }]
            }
            (
                _,
                Event::HookDone {
                    hook: Hook::Health,
                    status,
                },
            ) => {
                self.health_running = false;
                self.health_checked(status, now)
            }
            (_, Event::HookDone { hook, status }) => {
                if status == Exit::Code(0) {
                    return vec![];
                }
                log::warn!(target: &self.spec.name, "{} hook {}", hook.name(), status.describe());
                // A stop hook that failed still has to stop the service.
                match (hook, self.state, self.pid) {
                    (Hook::Stop, State::Stopping, Some(pid)) if !self.leader_gone => {
                        let signal = self.spec.stop_signal;
                        vec![
                            Action::Signal { pid, signal },
                            Action::Signal {
                                pid,
                                signal: libc::SIGCONT,
                            },
                        ]
                    }
                    _ => vec![],
                }
            }
            (State::Starting | State::Running, Event::Stop)
                if !self.health_running && !self.ready_check_running =>
            {
                let pid = self.pid.unwrap_or(0);
                let signal = self.spec.stop_signal;
                let by_hook = self.spec.extras().stop_command.is_some();
                let how = if by_hook {
                    "stop hook".to_string()
                } else {
                    format!("signal {}", signals::name(signal))
                };
                log::info!(target: &self.spec.name, "stopping, pid {pid}, {how}");
                self.kill_at = Some(now + self.spec.stop_timeout);
                self.deadline = self.kill_at;
                self.leader_gone = false;
                self.group_recheck = GROUP_RECHECK_FIRST;
                self.after_stop = AfterStop::Rest;
                self.enter(State::Stopping);
                if by_hook {
                    let env = vec![("GOING_PID".to_string(), pid.to_string())];
                    return vec![Action::RunHook {
                        hook: Hook::Stop,
                        env,
                    }];
                }
                vec![
                    Action::Signal { pid, signal },
                    Action::Signal {
                        pid,
                        signal: libc::SIGCONT,
                    },
                ]
            }
            (State::Starting | State::Running, Event::Stop) => {
                // Checks of a process being stopped are over.
                let mut actions = self.cancel_checks();
                actions.extend(self.on(Event::Stop, now));
                actions
            }
            (State::Backoff | State::Exited | State::Disabled, Event::Stop) => {
                self.deadline = None;
                self.enter(State::Stopped);
                vec![]
            }
            (State::Stopping, Event::Stop) => {
                self.after_stop = AfterStop::Rest;
                vec![]
            }
            (State::Stopping, Event::Exited { status, .. }) => {
                self.reaped(status, now);
                self.leader_gone = true;
                let pid = self.pid.unwrap_or(0);
                self.deadline = Some(self.next_group_check(now));
                let mut actions = self.on_exit_hook(pid, status);
                actions.push(Action::CheckGroup { pid });
                actions
            }
            (State::Stopping, Event::GroupGone) if self.leader_gone => self.finish_stop(now),
            (State::Stopping, Event::Deadline) => {
                let mut actions = Vec::new();
                let pid = self.pid.unwrap_or(0);
                if self.kill_at.is_some_and(|at| now >= at) {
                    self.kill_at = None;
                    log::warn!(target: &self.spec.name, "stop timeout, pid {pid}, sending KILL to the process group");
                    actions.push(Action::Signal {
                        pid,
                        signal: libc::SIGKILL,
                    });
                }
                if self.leader_gone {
                    actions.push(Action::CheckGroup { pid });
                    self.group_recheck = (self.group_recheck * 2).min(GROUP_RECHECK_MAX);
                }
                self.deadline = if self.leader_gone {
                    Some(self.next_group_check(now))
                } else {
                    self.kill_at
                };
                actions
            }
            (State::Backoff, Event::Deadline) => {
                self.deadline = None;
                self.begin_start()
            }
            (_, Event::Deadline) => {
                // A deadline nothing here wants any more: never wake for it again.
                self.deadline = None;
                vec![]
            }
            (state, event) => {
                log::debug!(target: &self.spec.name, "ignored {event:?} in state {}", state.name());
                vec![]
            }
        }
    }

    fn enter(&mut self, state: State) {
        self.state = state;
    }

    fn reaped(&mut self, status: Exit, now: Instant) {
        self.last_exit = Some(status);
        self.exited_at = Some(now);
        self.ready = false;
        self.ready_until = None;
    }

    /// When the first health check is due, if the service has one.
    fn health_deadline(&self, now: Instant) -> Option<Instant> {
        self.spec
            .extras()
            .health_check
            .as_ref()
            .map(|h| now + h.interval)
    }

    /// The process runs: ready at once, or waiting to say so.
    fn entered_running(&mut self, now: Instant) {
        self.health_failures = 0;
        if self.spec.extras().readiness.is_none() {
            self.ready = true;
            self.deadline = self.health_deadline(now);
            return;
        }
        self.ready = false;
        self.ready_until = Some(now + self.spec.extras().start_timeout);
        self.deadline = self.next_ready_check(now);
    }

    /// The next ready command, or else the readiness deadline.
    fn next_ready_check(&self, now: Instant) -> Option<Instant> {
        let check = match &self.spec.extras().readiness {
            Some(Readiness::Command { interval, .. }) => Some(now + *interval),
            _ => None,
        };
        [check, self.ready_until].into_iter().flatten().min()
    }

    fn become_ready(&mut self, now: Instant) {
        self.ready = true;
        self.ready_until = None;
        log::info!(target: &self.spec.name, "ready, pid {}", self.pid.unwrap_or(0));
        self.deadline = self.health_deadline(now);
    }

    fn ran_for(&self, now: Instant) -> Duration {
        self.started_at
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at))
    }

    fn next_group_check(&self, now: Instant) -> Instant {
        let recheck = now + self.group_recheck;
        self.kill_at.map_or(recheck, |kill_at| kill_at.min(recheck))
    }

    /// The leader died on its own: restart now, later, or not at all.
    fn after_exit(&mut self, what: &str, failed: bool, short: bool, now: Instant) -> Vec<Action> {
        let restart = match self.spec.restart {
            Restart::Always => true,
            Restart::OnFailure => failed,
            Restart::Never => false,
        };
        if !restart {
            let policy = match self.spec.restart {
                Restart::OnFailure => "on-failure",
                _ => "never",
            };
            log::info!(target: &self.spec.name, "{what}, not restarted (restart = {policy})");
            self.enter(State::Exited);
            return self.critical_end();
        }
        self.count_restart(now);
        if !short {
            self.short_runs = 0;
            log::warn!(target: &self.spec.name, "{what}, restarting");
            self.enter(State::Stopped);
            return self.begin_start();
        }
        self.back_off(what, log::Level::Warn, now)
    }

    /// One more short run: the backoff it calls for, or, for a critical
    /// service that keeps failing, the end.
    fn back_off(&mut self, what: &str, level: log::Level, now: Instant) -> Vec<Action> {
        self.short_runs = self.short_runs.saturating_add(1);
        if self.spec.critical && self.short_runs >= CRITICAL_SHORT_RUNS {
            log::error!(target: &self.spec.name, "{what}, failed {} times in a row", self.short_runs);
            self.enter(State::Exited);
            return self.critical_end();
        }
        let delay = backoff_delay(self.short_runs);
        log::log!(target: &self.spec.name, level, "{what}, restart in {}", format_duration(delay));
        self.deadline = Some(now + delay);
        self.enter(State::Backoff);
        vec![]
    }

    /// The service could not be started at all: always a short run.
    fn after_failure(&mut self, what: &str, now: Instant) -> Vec<Action> {
        if self.spec.restart == Restart::Never {
            log::error!(target: &self.spec.name, "{what}, not restarted (restart = never)");
            self.enter(State::Exited);
            return self.critical_end();
        }
        self.count_restart(now);
        self.back_off(what, log::Level::Error, now)
    }

    /// Starts a start that its dependencies held back, if they now allow it.
    pub fn release(&mut self, now: Instant) -> Vec<Action> {
        if !self.waiting || self.blocked.is_some() || self.is_active() {
            return vec![];
        }
        self.waiting = false;
        self.on(Event::Start, now)
    }

    /// The pid file, as log lines name it.
    fn pid_file_name(&self) -> String {
        let file = self.spec.extras().pid_file.as_deref();
        file.map(|p| p.display().to_string()).unwrap_or_default()
    }

    /// Spawns the service, or first its `before` hook; or, while its
    /// dependencies are not met, waits for them.
    fn begin_start(&mut self) -> Vec<Action> {
        if let Some(reason) = &self.blocked {
            if !self.waiting {
                log::info!(target: &self.spec.name, "waiting: {reason}");
            }
            self.waiting = true;
            self.deadline = None;
            self.enter(State::Stopped);
            return vec![];
        }
        if self.spec.extras().before.is_none() {
            return vec![Action::Spawn];
        }
        self.before_running = true;
        self.pid = None;
        self.enter(State::Starting);
        vec![Action::RunHook {
            hook: Hook::Before,
            env: Vec::new(),
        }]
    }

    /// The `on-exit` hook, told how the process ended.
    fn on_exit_hook(&self, pid: i32, status: Exit) -> Vec<Action> {
        if self.spec.extras().on_exit.is_none() {
            return vec![];
        }
        let how = match status {
            Exit::Code(code) => ("GOING_EXIT_CODE", code.to_string()),
            Exit::Signal(signal) => ("GOING_EXIT_SIGNAL", signals::name(signal)),
            Exit::Unknown => ("GOING_EXIT_UNKNOWN", "1".to_string()),
        };
        let env = vec![
            ("GOING_PID".to_string(), pid.to_string()),
            (how.0.to_string(), how.1),
            ("GOING_RESTARTS".to_string(), self.restarts.to_string()),
        ];
        vec![Action::RunHook {
            hook: Hook::OnExit,
            env,
        }]
    }

    /// A health check ended: count a failure, restart after `retries` of
    /// them in a row, and schedule the next check.
    fn health_checked(&mut self, status: Exit, now: Instant) -> Vec<Action> {
        let Some(check) = self.spec.extras().health_check.clone() else {
            return vec![];
        };
        if self.state != State::Running {
            return vec![];
        }
        self.deadline = Some(now + check.interval);
        if status == Exit::Code(0) {
            self.health_failures = 0;
            return vec![];
        }
        self.health_failures += 1;
        let pid = self.pid.unwrap_or(0);
        if self.health_failures < check.retries {
            log::warn!(target: &self.spec.name, "health check {}, {} of {}, pid {pid}", status.describe(), self.health_failures, check.retries);
            return vec![];
        }
        log::warn!(target: &self.spec.name, "health check {}, {} times in a row, pid {pid}, restarting", status.describe(), self.health_failures);
        self.health_failures = 0;
        self.restart_after_backoff(now)
    }

    /// Health and readiness checks still running for this process.
    fn cancel_checks(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if std::mem::take(&mut self.health_running) {
            actions.push(Action::CancelHook { hook: Hook::Health });
        }
        if std::mem::take(&mut self.ready_check_running) {
            actions.push(Action::CancelHook { hook: Hook::Ready });
        }
        actions
    }

    /// Stops the service and starts it again, after the backoff its run
    /// calls for: a failed health check or readiness counts as a crash.
    fn restart_after_backoff(&mut self, now: Instant) -> Vec<Action> {
        if self.spec.restart == Restart::Never {
            return self.on(Event::Stop, now);
        }
        // Restarted like a crash: after a short run, with the backoff.
        if self.ran_for(now) < SHORT_RUN {
            self.short_runs = self.short_runs.saturating_add(1);
        } else {
            self.short_runs = 0;
        }
        let actions = self.on(Event::Stop, now);
        self.after_stop = AfterStop::RestartAfterBackoff;
        actions
    }

    /// The end of a critical service is going's end: its last status, or 1
    /// when it never ran.
    fn critical_end(&self) -> Vec<Action> {
        if !self.spec.critical {
            return vec![];
        }
        vec![Action::Critical {
            code: self.last_exit.map_or(1, Exit::code),
        }]
    }

    fn finish_stop(&mut self, now: Instant) -> Vec<Action> {
        let pid = self.pid.take();
        self.deadline = None;
        self.kill_at = None;
        if let Some(pid) = pid {
            let how = self.last_exit.map(Exit::describe).unwrap_or_default();
            let ran = format_duration(self.ran_for(now));
            log::info!(target: &self.spec.name, "stopped, pid {pid}, {how} after {ran}");
        }
        self.enter(State::Stopped);
        // A new definition waiting for this stop applies even if the
        // restart was called off (`going stop` meanwhile).
        if let Some(spec) = self.pending_spec.take() {
            self.spec = *spec;
        }
        match self.after_stop {
            AfterStop::Restart => {
                self.after_stop = AfterStop::Rest;
                self.on(Event::Start, now)
            }
            AfterStop::RestartAfterBackoff if self.short_runs == 0 => {
                self.after_stop = AfterStop::Rest;
                self.count_restart(now);
                self.on(Event::Start, now)
            }
            AfterStop::RestartAfterBackoff => {
                self.after_stop = AfterStop::Rest;
                self.count_restart(now);
                let delay = backoff_delay(self.short_runs);
                log::warn!(target: &self.spec.name, "restart in {}", format_duration(delay));
                self.deadline = Some(now + delay);
                self.enter(State::Backoff);
                vec![]
            }
            AfterStop::Rest | AfterStop::Remove => vec![],
        }
    }
}

/// Read access for the loop, its parts and the status output.
impl Service {
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }
    pub fn state(&self) -> State {
        self.state
    }
    pub fn restarts(&self) -> u32 {
        self.restarts
    }
    pub fn started_at(&self) -> Option<Instant> {
        self.started_at
    }
    pub fn last_exit(&self) -> Option<Exit> {
        self.last_exit
    }
    pub fn is_ready(&self) -> bool {
        self.ready
    }
    pub fn is_admin_down(&self) -> bool {
        self.admin_down
    }
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

/// The file's name of a service or instance name: `web@3` -> `web`.
pub fn base_name(name: &str) -> &str {
    name.split_once('@').map_or(name, |(base, _)| base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(argv: &[&str]) -> Service {
        let mut spec = ServiceSpec::new("web", argv.iter().map(|s| s.to_string()).collect());
        spec.stop_timeout = Duration::from_secs(2);
        Service::new(spec)
    }

    fn exit(code: i32) -> Event {
        Event::Exited {
            status: Exit::Code(code),
            exec_error: None,
        }
    }

    /// Starts `s` at `now` with pid 100 and confirms the exec.
    fn run(s: &mut Service, now: Instant) {
        assert_eq!(s.on(Event::Start, now), vec![Action::Spawn]);
        s.on(Event::Spawned(100), now);
        assert_eq!(s.state, State::Starting);
        s.on(Event::ExecOk, now);
        assert_eq!(s.state, State::Running);
    }

    #[test]
    fn backoff_doubles_from_50ms_to_30s() {
        let secs: Vec<f64> = (1..=12).map(|n| backoff_delay(n).as_secs_f64()).collect();
        assert_eq!(
            secs,
            [
                0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0
            ]
        );
        assert_eq!(backoff_delay(0), FIRST_BACKOFF);
        assert_eq!(backoff_delay(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn a_long_run_restarts_at_once() {
        let t0 = Instant::now();
        let mut s = service(&["/bin/sleep", "100"]);
        run(&mut s, t0);
        let actions = s.on(exit(0), t0 + Duration::from_secs(60));
        assert_eq!(actions, vec![Action::Spawn]);
        assert_eq!(s.restarts, 1);
        assert_eq!(s.last_exit, Some(Exit::Code(0)));
        assert_eq!(s.pid, None);
    }

    #[test]
    fn short_runs_back_off_and_a_long_run_resets() {
        let t0 = Instant::now();
        let mut s = service(&["/bin/false"]);
        let mut now = t0;
        for expected_ms in [50, 100, 200, 400] {
            run(&mut s, now);
            now += Duration::from_millis(10);
            assert_eq!(s.on(exit(1), now), vec![]);
            assert_eq!(s.state, State::Backoff);
            assert_eq!(s.deadline, Some(now + Duration::from_millis(expected_ms)));
            now += Duration::from_millis(expected_ms);
            assert_eq!(s.on(Event::Deadline, now), vec![Action::Spawn]);
            s.state = State::Stopped; // as if the spawn were about to happen
        }
        run(&mut s, now);
        assert_eq!(s.on(exit(1), now + SHORT_RUN), vec![Action::Spawn]);
        run(&mut s, now);
        s.on(exit(1), now + Duration::from_millis(1));
        assert_eq!(
            s.deadline,
            Some(now + Duration::from_millis(1) + FIRST_BACKOFF)
        );
    }

    #[test]
    fn restart_policies() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(60);
        let mut s = service(&["x"]);
        s.spec.restart = Restart::OnFailure;
        run(&mut s, t0);
        assert_eq!(s.on(exit(0), later), vec![]);
        assert_eq!(s.state, State::Exited);
        run(&mut s, t0);
        assert_eq!(s.on(exit(3), later), vec![Action::Spawn]);
        s.state = State::Stopped;
        run(&mut s, t0);
        let killed = Event::Exited {
            status: Exit::Signal(9),
            exec_error: None,
        };
        assert_eq!(s.on(killed, later), vec![Action::Spawn]);

        s.spec.restart = Restart::Never;
        s.state = State::Stopped;
        run(&mut s, t0);
        assert_eq!(s.on(exit(3), later), vec![]);
        assert_eq!(s.state, State::Exited);
        assert_eq!(s.deadline, None);
    }

    #[test]
    fn exec_failure_backs_off_even_under_on_failure() {
        let t0 = Instant::now();
        let mut s = service(&["/nonexistent"]);
        s.spec.restart = Restart::OnFailure;
        s.on(Event::Start, t0);
        s.on(Event::Spawned(7), t0);
        let failed = Event::Exited {
            status: Exit::Code(127),
            exec_error: Some("exec".into()),
        };
        assert_eq!(s.on(failed, t0 + SHORT_RUN * 2), vec![]);
        assert_eq!(s.state, State::Backoff);
        assert_eq!(s.deadline, Some(t0 + SHORT_RUN * 2 + FIRST_BACKOFF));
    }

    #[test]
    fn spawn_failure_backs_off() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.on(Event::Start, t0);
        assert_eq!(
            s.on(Event::SpawnFailed("unknown user \"bob\"".into()), t0),
            vec![]
        );
        assert_eq!(s.state, State::Backoff);
        s.on(Event::Deadline, t0 + FIRST_BACKOFF);
        s.on(Event::SpawnFailed("again".into()), t0 + FIRST_BACKOFF);
        assert_eq!(s.deadline, Some(t0 + FIRST_BACKOFF * 3));
    }

    #[test]
    fn stop_signals_then_kills_after_the_timeout() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        let actions = s.on(Event::Stop, t0);
        assert_eq!(
            actions,
            vec![
                Action::Signal {
                    pid: 100,
                    signal: libc::SIGTERM
                },
                Action::Signal {
                    pid: 100,
                    signal: libc::SIGCONT
                }
            ]
        );
        assert_eq!(s.state, State::Stopping);
        let kill_at = t0 + Duration::from_secs(2);
        assert_eq!(s.deadline, Some(kill_at));
        assert_eq!(
            s.on(Event::Deadline, kill_at),
            vec![Action::Signal {
                pid: 100,
                signal: libc::SIGKILL
            }]
        );
        assert_eq!(s.deadline, None);
        let killed = Event::Exited {
            status: Exit::Signal(9),
            exec_error: None,
        };
        assert_eq!(s.on(killed, kill_at), vec![Action::CheckGroup { pid: 100 }]);
        assert_eq!(s.state, State::Stopping);
        assert_eq!(s.on(Event::GroupGone, kill_at), vec![]);
        assert_eq!(s.state, State::Stopped);
        assert_eq!(s.pid, None);
    }

    #[test]
    fn a_stop_waits_for_the_whole_group() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        s.on(Event::Stop, t0);
        s.on(exit(0), t0);
        // The group outlives its leader: recheck soon, then less often.
        assert_eq!(s.deadline, Some(t0 + GROUP_RECHECK_FIRST));
        let t1 = t0 + GROUP_RECHECK_FIRST;
        assert_eq!(
            s.on(Event::Deadline, t1),
            vec![Action::CheckGroup { pid: 100 }]
        );
        assert_eq!(s.deadline, Some(t1 + GROUP_RECHECK_FIRST * 2));
        // The kill still comes at the stop timeout.
        let kill_at = t0 + Duration::from_secs(2);
        assert_eq!(
            s.on(Event::Deadline, kill_at),
            vec![
                Action::Signal {
                    pid: 100,
                    signal: libc::SIGKILL
                },
                Action::CheckGroup { pid: 100 }
            ]
        );
        assert_eq!(s.state, State::Stopping);
        s.on(Event::GroupGone, kill_at);
        assert_eq!(s.state, State::Stopped);
    }

    #[test]
    fn stopping_before_exec_is_confirmed_still_signals() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.on(Event::Start, t0);
        s.on(Event::Spawned(5), t0);
        assert_eq!(
            s.on(Event::Stop, t0).first(),
            Some(&Action::Signal {
                pid: 5,
                signal: libc::SIGTERM
            })
        );
    }

    #[test]
    fn stop_in_backoff_cancels_the_restart() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        s.on(exit(1), t0);
        assert_eq!(s.state, State::Backoff);
        assert_eq!(s.on(Event::Stop, t0), vec![]);
        assert_eq!(s.state, State::Stopped);
        assert_eq!(s.deadline, None);
        assert_eq!(s.on(Event::Deadline, t0 + MAX_BACKOFF), vec![]);
    }

    #[test]
    fn replace_restarts_a_running_service_with_the_new_definition() {
        let t0 = Instant::now();
        let mut s = service(&["old"]);
        run(&mut s, t0);
        let new = ServiceSpec::new("web", vec!["new".into()]);
        let actions = s.replace(new.clone(), t0);
        assert_eq!(
            actions.first(),
            Some(&Action::Signal {
                pid: 100,
                signal: libc::SIGTERM
            })
        );
        assert_eq!(s.spec.argv, ["old"]);
        s.on(exit(0), t0);
        assert_eq!(s.on(Event::GroupGone, t0), vec![Action::Spawn]);
        assert_eq!(s.spec, new);
        assert_eq!(s.restarts, 0);
    }

    #[test]
    fn replace_starts_a_resting_service_and_resets_backoff() {
        let t0 = Instant::now();
        let mut s = service(&["old"]);
        run(&mut s, t0);
        s.on(exit(1), t0);
        assert_eq!(s.state, State::Backoff);
        let actions = s.replace(ServiceSpec::new("web", vec!["new".into()]), t0);
        assert_eq!(actions, vec![Action::Spawn]);
        assert_eq!(s.deadline, None);
    }

    #[test]
    fn disabled_services_never_spawn() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.spec.enabled = false;
        assert_eq!(s.on(Event::Start, t0), vec![]);
        assert_eq!(s.state, State::Disabled);
        let mut enabled = s.spec.clone();
        enabled.enabled = true;
        assert_eq!(s.replace(enabled, t0), vec![Action::Spawn]);
        run(&mut s, t0);
        let mut disabled = s.spec.clone();
        disabled.enabled = false;
        s.replace(disabled, t0);
        s.on(exit(0), t0);
        assert_eq!(s.on(Event::GroupGone, t0), vec![]);
        assert_eq!(s.state, State::Disabled);
    }

    #[test]
    fn admin_down_holds_until_start() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        s.admin_stop(t0);
        s.on(exit(0), t0);
        assert_eq!(s.on(Event::GroupGone, t0), vec![]);
        assert_eq!(s.state, State::Stopped);
        assert_eq!(s.on(Event::Start, t0), vec![]);
        let changed = ServiceSpec::new("web", vec!["y".into()]);
        assert_eq!(s.replace(changed, t0), vec![]);
        assert_eq!(s.spec.argv, ["y"]);
        assert_eq!(s.admin_start(t0), vec![Action::Spawn]);
        assert!(!s.admin_down);
    }

    #[test]
    fn start_during_a_stop_starts_once_stopped() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        s.admin_stop(t0);
        assert_eq!(s.admin_start(t0), vec![]);
        s.on(exit(0), t0);
        assert_eq!(s.on(Event::GroupGone, t0), vec![Action::Spawn]);
    }

    #[test]
    fn a_stop_during_a_definition_change_still_takes_the_new_definition() {
        let t0 = Instant::now();
        let mut s = service(&["old"]);
        run(&mut s, t0);
        s.replace(ServiceSpec::new("web", vec!["new".into()]), t0);
        s.admin_stop(t0);
        s.on(exit(0), t0);
        assert_eq!(s.on(Event::GroupGone, t0), vec![]);
        assert_eq!(s.spec.argv, ["new"]);
        assert_eq!(s.admin_start(t0), vec![Action::Spawn]);
    }

    #[test]
    fn admin_restart_stops_then_starts() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        assert_eq!(
            s.admin_restart(t0).first(),
            Some(&Action::Signal {
                pid: 100,
                signal: libc::SIGTERM
            })
        );
        s.on(exit(0), t0);
        assert_eq!(s.on(Event::GroupGone, t0), vec![Action::Spawn]);
        let mut resting = service(&["x"]);
        assert_eq!(resting.admin_restart(t0), vec![Action::Spawn]);
    }

    #[test]
    fn five_restarts_in_a_minute_is_flapping() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        let mut now = t0;
        for _ in 0..FLAP_RESTARTS {
            run(&mut s, now);
            now += SHORT_RUN;
            s.on(exit(1), now);
            s.state = State::Stopped;
        }
        assert!(s.is_flapping(now));
        assert!(!s.is_flapping(t0 + FLAP_WINDOW * 2));
        // Short runs in a row flap however slow the backoff has made them.
        let mut slow = service(&["x"]);
        let mut now = t0;
        for _ in 0..FLAP_RESTARTS {
            run(&mut slow, now);
            slow.on(exit(1), now + Duration::from_millis(1));
            slow.state = State::Stopped;
            now += MAX_BACKOFF;
        }
        assert!(slow.is_flapping(now));
        assert_eq!(base_name("web@3"), "web");
        assert_eq!(s.base_name(), "web");
    }

    #[test]
    fn a_critical_service_that_ends_for_good_ends_going() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.spec.critical = true;
        s.spec.restart = Restart::Never;
        run(&mut s, t0);
        assert_eq!(s.on(exit(7), t0), vec![Action::Critical { code: 7 }]);
        let mut killed = service(&["x"]);
        killed.spec.critical = true;
        killed.spec.restart = Restart::OnFailure;
        run(&mut killed, t0);
        assert_eq!(killed.on(exit(0), t0), vec![Action::Critical { code: 0 }]);
        let mut never_ran = service(&["x"]);
        never_ran.spec.critical = true;
        never_ran.spec.restart = Restart::Never;
        never_ran.on(Event::Start, t0);
        assert_eq!(
            never_ran.on(Event::SpawnFailed("x".into()), t0),
            vec![Action::Critical { code: 1 }]
        );
    }

    #[test]
    fn a_critical_crash_loop_ends_going_at_the_backoff_limit() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.spec.critical = true;
        let mut now = t0;
        for _ in 1..CRITICAL_SHORT_RUNS {
            run(&mut s, now);
            assert_eq!(s.on(exit(2), now), vec![]);
            assert_eq!(s.state, State::Backoff);
            s.state = State::Stopped;
            now += MAX_BACKOFF;
        }
        run(&mut s, now);
        assert_eq!(s.on(exit(2), now), vec![Action::Critical { code: 2 }]);
        assert_eq!(s.state, State::Exited);
        let killed = Event::Exited {
            status: Exit::Signal(9),
            exec_error: None,
        };
        let mut plain = service(&["x"]);
        run(&mut plain, t0);
        assert_eq!(plain.on(killed, t0), vec![]);
        assert_eq!(Exit::Signal(9).code(), 137);
    }

    fn with_hooks() -> Service {
        let mut s = service(&["x"]);
        s.spec.extras_mut().before = Some(vec!["/bin/prepare".into()]);
        s.spec.extras_mut().on_exit = Some(vec!["/bin/notify".into()]);
        s.spec.extras_mut().stop_command = Some(vec!["/bin/ask-to-stop".into()]);
        s
    }

    #[test]
    fn before_runs_first_and_must_succeed() {
        let t0 = Instant::now();
        let mut s = with_hooks();
        assert_eq!(
            s.on(Event::Start, t0),
            vec![Action::RunHook {
                hook: Hook::Before,
                env: vec![]
            }]
        );
        assert_eq!(s.state, State::Starting);
        let ok = Event::HookDone {
            hook: Hook::Before,
            status: Exit::Code(0),
        };
        assert_eq!(s.on(ok, t0), vec![Action::Spawn]);
        let mut failing = with_hooks();
        failing.on(Event::Start, t0);
        let failed = Event::HookDone {
            hook: Hook::Before,
            status: Exit::Code(3),
        };
        assert_eq!(failing.on(failed, t0), vec![]);
        assert_eq!(failing.state, State::Backoff);
        assert_eq!(failing.deadline, Some(t0 + FIRST_BACKOFF));
        let mut stopped = with_hooks();
        stopped.on(Event::Start, t0);
        assert_eq!(
            stopped.on(Event::Stop, t0),
            vec![Action::CancelHook { hook: Hook::Before }]
        );
        assert_eq!(stopped.state, State::Stopped);
    }

    #[test]
    fn the_stop_hook_replaces_the_signal_and_on_exit_hears_every_exit() {
        let t0 = Instant::now();
        let mut s = with_hooks();
        s.on(Event::Start, t0);
        s.on(
            Event::HookDone {
                hook: Hook::Before,
                status: Exit::Code(0),
            },
            t0,
        );
        s.on(Event::Spawned(100), t0);
        s.on(Event::ExecOk, t0);
        let env = vec![("GOING_PID".to_string(), "100".to_string())];
        assert_eq!(
            s.on(Event::Stop, t0),
            vec![Action::RunHook {
                hook: Hook::Stop,
                env
            }]
        );
        assert_eq!(s.deadline, Some(t0 + Duration::from_secs(2)));
        let killed = Event::Exited {
            status: Exit::Signal(15),
            exec_error: None,
        };
        let actions = s.on(killed, t0);
        let expected_env = vec![
            ("GOING_PID".to_string(), "100".to_string()),
            ("GOING_EXIT_SIGNAL".to_string(), "TERM".to_string()),
            ("GOING_RESTARTS".to_string(), "0".to_string()),
        ];
        assert_eq!(
            actions.first(),
            Some(&Action::RunHook {
                hook: Hook::OnExit,
                env: expected_env
            })
        );
    }

    #[test]
    fn failing_health_checks_restart_with_backoff() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.spec.extras_mut().health_check = Some(crate::config::HealthCheck {
            argv: vec!["/bin/check".into()],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            retries: 2,
        });
        run(&mut s, t0);
        assert_eq!(s.deadline, Some(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            s.on(Event::Deadline, t1),
            vec![Action::RunHook {
                hook: Hook::Health,
                env: vec![]
            }]
        );
        let failed = Event::HookDone {
            hook: Hook::Health,
            status: Exit::Code(1),
        };
        assert_eq!(s.on(failed.clone(), t1), vec![]);
        assert_eq!(s.deadline, Some(t1 + Duration::from_secs(1)));
        s.on(Event::Deadline, t1 + Duration::from_secs(1));
        let actions = s.on(failed, t1 + Duration::from_secs(1));
        assert_eq!(
            actions.first(),
            Some(&Action::Signal {
                pid: 100,
                signal: libc::SIGTERM
            })
        );
        s.on(exit(0), t1);
        assert_eq!(s.on(Event::GroupGone, t1), vec![]);
        assert_eq!(s.state, State::Backoff);
        assert_eq!(s.restarts, 1);
        let passed = Event::HookDone {
            hook: Hook::Health,
            status: Exit::Code(0),
        };
        assert_eq!(s.on(passed, t1), vec![]);
    }

    #[test]
    fn a_daemon_is_followed_through_its_pid_file() {
        let t0 = Instant::now();
        let mut s = service(&["/usr/sbin/daemon"]);
        s.spec.extras_mut().pid_file = Some("/run/d.pid".into());
        s.spec.extras_mut().start_timeout = Duration::from_secs(1);
        run(&mut s, t0);
        assert_eq!(s.on(exit(0), t0), vec![Action::ReadPidFile]);
        assert_eq!(s.state, State::Starting);
        assert_eq!(s.pid, None);
        assert_eq!(s.on(Event::PidFile(None), t0), vec![]);
        let t1 = t0 + PID_FILE_RECHECK;
        assert_eq!(s.on(Event::Deadline, t1), vec![Action::ReadPidFile]);
        assert_eq!(s.on(Event::PidFile(Some(4242)), t1), vec![]);
        assert_eq!((s.state, s.pid), (State::Running, Some(4242)));
        // The daemon's own exit is a crash like any other, even with status 0.
        assert_eq!(s.on(exit(0), t1 + SHORT_RUN), vec![Action::Spawn]);
    }

    #[test]
    fn a_pid_file_that_never_names_a_process_times_out_into_backoff() {
        let t0 = Instant::now();
        let mut s = service(&["/usr/sbin/daemon"]);
        s.spec.extras_mut().pid_file = Some("/run/d.pid".into());
        s.spec.extras_mut().start_timeout = Duration::from_secs(1);
        run(&mut s, t0);
        s.on(exit(0), t0);
        assert_eq!(s.on(Event::Deadline, t0 + Duration::from_secs(1)), vec![]);
        assert_eq!(s.state, State::Backoff);
        let mut failing = service(&["/usr/sbin/daemon"]);
        failing.spec.extras_mut().pid_file = Some("/run/d.pid".into());
        run(&mut failing, t0);
        failing.on(exit(1), t0);
        assert_eq!(failing.state, State::Backoff);
    }

    #[test]
    fn removal_ends_removable() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        s.remove(t0);
        assert!(!s.is_removable());
        s.on(exit(0), t0);
        s.on(Event::GroupGone, t0);
        assert!(s.is_removable());
        let mut idle = service(&["x"]);
        idle.on(Event::Stop, t0);
        idle.remove(t0);
        assert!(idle.is_removable());
    }
}
