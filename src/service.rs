//! One service's life: its [`State`], the events that move it, and the
//! actions each transition asks for. This file never calls the kernel; the
//! event loop carries out the actions and reports what happened as the next
//! event, so every transition is testable with nothing but `Instant`s.
//! [`Service::on`] is a state x event table, one function per state; the
//! table is written out in ARCHITECTURE.md.

use crate::config::calendar::Schedule;
use crate::config::{Readiness, Restart, ServiceSpec};
use crate::signals;
use crate::util::format_duration;
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
    /// Outside the windows of its `[schedule]`.
    Scheduled,
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
            State::Scheduled => "scheduled",
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
    /// The pid file names this live process, in this process group
    /// (`None`: not yet).
    PidFile(Option<(i32, i32)>),
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
    /// going is on its way out: nothing starts again (see [`Want`]).
    Shutdown,
    /// A window of its `[schedule]` has begun (or is on, when asked by
    /// [`Action::Window`]): it may run.
    WindowOpened,
    /// Its window has ended (or none is on): it stops and waits for the next.
    WindowClosed,
    /// Nothing changed in its activity folder for `inactive-time`.
    Inactive,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fork and exec the current definition; answer `Spawned` or `SpawnFailed`.
    Spawn,
    /// Send `signal` to the process group led by `pid`, or to `pid` alone
    /// if it leads none.
    Signal { pid: i32, signal: i32 },
    /// Send `signal` to the process group `group` and never to a process
    /// alone: the group's leader is gone, and its pid may be another's.
    SignalGroup { group: i32, signal: i32 },
    /// See whether the process group `pid` is empty; answer `GroupGone` if so.
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
    /// Say whether a window of `schedule` is on now, and follow its edges:
    /// answer `WindowOpened` or `WindowClosed`, and again at each edge.
    Window { schedule: Schedule },
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

/// What one going tells the next of a service beside its process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    pub restarts: u32,
    pub short_runs: u32,
    /// What was left of a backoff.
    pub backoff_ms: Option<u64>,
    /// How long ago the last few restarts were (for flapping).
    pub flaps_ms: Vec<u64>,
}

pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What is wanted of a service, whatever it does now: s6-supervise's
/// "want up". Intent, not state: it outlives every start and stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Up,
    /// `going stop`: stays down, across reloads, until `going start`.
    Down,
    /// going is shutting down: nothing starts again; `down` is whether it
    /// was also stopped by `going stop` (as status and the state file say).
    Never {
        down: bool,
    },
}

/// What a service does: [`State`] is its public name, the data is what
/// that state must remember, its deadlines included.
#[derive(Debug)]
enum Phase {
    Stopped,
    /// A start its dependencies hold back (`blocked`); public `stopped`.
    Waiting,
    Starting(Start),
    Running(Run),
    Stopping(Box<Stop>),
    /// Waits out a restart delay after a short run.
    Backoff {
        until: Instant,
    },
    Exited,
    Disabled,
    /// Outside its windows: waits for `WindowOpened`.
    Scheduled,
    /// Stopped for good; the supervisor drops it. Public `stopped`.
    Removed,
}

#[derive(Debug)]
enum Start {
    /// The `before` hook runs; no process yet.
    Before,
    /// The loop was asked to fork (`Action::Spawn`); it answers at once.
    Spawn,
    /// Forked; the exec is not confirmed yet.
    Exec { pid: i32 },
    /// The command daemonized: its pid file is read every `recheck`
    /// until it names a live process, or `until` has passed.
    PidFile { until: Instant, recheck: Instant },
}

#[derive(Debug)]
struct Run {
    pid: i32,
    /// Found through the pid file (even its exit with 0 is a crash): the
    /// process group it was in, whose leftovers its end stops.
    daemon: Option<i32>,
    ready: Ready,
    /// The ready or health command running now.
    check: Option<Hook>,
    /// When the next ready command or health check is due.
    next_check: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
enum Ready {
    /// A service that says when it is ready must have by `until`.
    No { until: Instant },
    /// Ready (at once, for one that does not say): health checks run.
    Yes { health_failures: u32 },
}

#[derive(Debug)]
struct Stop {
    pid: i32,
    /// The process group waited for: `pid`'s, or for the leftovers of a
    /// daemon, the group the daemon was in.
    group: i32,
    /// The process ended on its own: this stops what it left in its group.
    leftovers: bool,
    /// When the process group gets SIGKILL (the stop timeout).
    kill_at: Option<Instant>,
    /// Once the leader is gone: when to look again whether its group is
    /// empty, and the interval after that (it doubles).
    leader_gone: Option<(Instant, Duration)>,
    then: AfterStop,
    /// A definition to switch to once stopped.
    spec: Option<Box<ServiceSpec>>,
}

/// What a stop leads to once the process group is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterStop {
    Rest,
    /// Wait for its dependencies, then start (a dependent stopped with them).
    Wait,
    Restart,
    /// Restart, after the backoff its short runs call for.
    RestartAfterBackoff,
    /// The supervisor drops the service.
    Remove,
    /// Leftovers stopped: start again as [`Service::begin_start`] says.
    StartAgain,
    /// Leftovers stopped: back off until then (start at once if passed).
    Backoff(Instant),
    /// Leftovers stopped: exited for good (and going ends if critical).
    Exit,
}

impl Phase {
    fn public(&self) -> State {
        match self {
            Phase::Stopped | Phase::Waiting | Phase::Removed => State::Stopped,
            Phase::Starting(_) => State::Starting,
            Phase::Running(_) => State::Running,
            Phase::Stopping(_) => State::Stopping,
            Phase::Backoff { .. } => State::Backoff,
            Phase::Exited => State::Exited,
            Phase::Disabled => State::Disabled,
            Phase::Scheduled => State::Scheduled,
        }
    }
}

/// The next phase and the actions that go with the transition.
type Next = (Phase, Vec<Action>);

#[derive(Debug)]
pub struct Service {
    pub spec: ServiceSpec,
    phase: Phase,
    want: Want,
    /// When the last process was started.
    started_at: Option<Instant>,
    /// Automatic restarts since the definition was last (re)loaded.
    restarts: u32,
    last_exit: Option<Exit>,
    /// When the last process ended.
    exited_at: Option<Instant>,
    /// Of the file it was defined by (`Origin::fingerprint`).
    fingerprint: u64,
    /// The last few automatic restarts, for flapping.
    recent_restarts: VecDeque<Instant>,
    short_runs: u32,
    /// Why its dependencies keep it from starting now, as the supervisor
    /// last found; `None` when they do not.
    blocked: Option<String>,
    /// Its file no longer parses (`FILE:LINE`): it runs its last good
    /// definition. Shown by status, never a reason to act.
    broken: Option<String>,
    /// It was restarted for not saying it was ready in time, and has not
    /// said so since. Shown by status, never a reason to act.
    not_ready_in_time: bool,
    /// With a `[schedule]`: whether one of its windows is on, as the
    /// schedules part last said (`None`: not asked yet).
    window: Option<bool>,
}

impl Service {
    pub fn new(spec: ServiceSpec) -> Service {
        Service {
            spec,
            phase: Phase::Stopped,
            want: Want::Up,
            started_at: None,
            restarts: 0,
            last_exit: None,
            exited_at: None,
            fingerprint: 0,
            recent_restarts: VecDeque::new(),
            short_runs: 0,
            blocked: None,
            broken: None,
            not_ready_in_time: false,
            window: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The file's name: `web` for `web` and for `web@3`.
    pub fn base_name(&self) -> &str {
        base_name(&self.spec.name)
    }

    pub fn state(&self) -> State {
        self.phase.public()
    }

    /// The process (and process group) while starting, running or stopping.
    pub fn pid(&self) -> Option<i32> {
        match &self.phase {
            Phase::Starting(Start::Exec { pid }) => Some(*pid),
            Phase::Running(run) => Some(run.pid),
            Phase::Stopping(stop) => Some(stop.pid),
            _ => None,
        }
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

    pub fn exited_at(&self) -> Option<Instant> {
        self.exited_at
    }

    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub fn set_fingerprint(&mut self, fingerprint: u64) {
        self.fingerprint = fingerprint;
    }

    /// Running and ready to serve.
    pub fn is_ready(&self) -> bool {
        matches!(&self.phase, Phase::Running(run) if matches!(run.ready, Ready::Yes { .. }))
    }

    /// `going stop`: stays stopped, across reloads, until `going start`.
    pub fn is_admin_down(&self) -> bool {
        matches!(self.want, Want::Down | Want::Never { down: true })
    }

    /// Why a start its dependencies hold back waits.
    pub fn waiting_for(&self) -> Option<&str> {
        self.blocked.as_deref().filter(|_| self.is_waiting())
    }

    /// Why `going status` says this service is not as it should be, when
    /// its state alone does not say.
    pub fn reason(&self, now: Instant) -> Option<String> {
        if let Some(at) = &self.broken {
            return Some(format!("file broken: {at}"));
        }
        if self.is_admin_down() {
            return Some("down".into());
        }
        if let Some(why) = self.waiting_for() {
            return Some(why.into());
        }
        if self.not_ready_in_time {
            return Some("not ready in time".into());
        }
        self.is_flapping(now).then(|| "flapping".into())
    }

    /// Its file does not parse now (`Some("web.toml:3")`), or does again.
    pub fn set_broken(&mut self, at: Option<String>) {
        self.broken = at;
    }

    /// The supervisor's finding on its dependencies; only a start reads it.
    pub fn set_blocked(&mut self, reason: Option<String>) {
        self.blocked = reason;
    }

    /// The dependencies of a new definition decide its start at once.
    pub fn set_depends_on(&mut self, depends_on: &[String]) {
        self.spec.depends_on = depends_on.to_vec();
    }

    /// A start is held back until its dependencies allow it.
    pub fn is_waiting(&self) -> bool {
        matches!(self.phase, Phase::Waiting)
    }

    /// When the next `Deadline` event is due: the nearest that its state
    /// carries.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Backoff { until } => Some(*until),
            Phase::Starting(Start::PidFile { recheck, .. }) => Some(*recheck),
            Phase::Running(run) => match run.ready {
                Ready::No { until } => Some(run.next_check.map_or(until, |at| at.min(until))),
                Ready::Yes { .. } => run.next_check,
            },
            Phase::Stopping(stop) => {
                let recheck = stop.leader_gone.map(|(at, _)| at);
                [stop.kill_at, recheck].into_iter().flatten().min()
            }
            _ => None,
        }
    }

    /// True after [`FLAP_RESTARTS`] restarts within [`FLAP_WINDOW`], or as
    /// many short runs in a row (a crash loop slowed down by backoff).
    pub fn is_flapping(&self, now: Instant) -> bool {
        let first = self.recent_restarts.front();
        let recent = first.is_some_and(|&at| now.saturating_duration_since(at) <= FLAP_WINDOW);
        self.short_runs as usize >= FLAP_RESTARTS
            || self.recent_restarts.len() >= FLAP_RESTARTS && recent
    }

    /// True while a process of this service may exist.
    pub fn is_active(&self) -> bool {
        matches!(
            self.phase,
            Phase::Starting(_) | Phase::Running(_) | Phase::Stopping(_)
        )
    }

    /// True when a stop that leads to removal has finished.
    pub fn is_removable(&self) -> bool {
        matches!(self.phase, Phase::Removed)
    }

    /// True while a stop that ends in removal is under way.
    pub fn is_being_removed(&self) -> bool {
        matches!(&self.phase, Phase::Stopping(s) if s.then == AfterStop::Remove)
    }

    /// Stopping, and the group leader has already been reaped: the
    /// process group still waited for.
    pub fn awaited_group(&self) -> Option<i32> {
        match &self.phase {
            Phase::Stopping(stop) if stop.leader_gone.is_some() => Some(stop.group),
            _ => None,
        }
    }

    /// What a next going needs to carry on where this one stops: counts,
    /// backoff and flapping (the state file's `mem` line).
    pub fn memory(&self, now: Instant) -> Memory {
        let backoff_ms = match &self.phase {
            Phase::Backoff { until } => Some(millis(until.saturating_duration_since(now))),
            _ => None,
        };
        let flaps_ms = self.recent_restarts.iter();
        Memory {
            restarts: self.restarts,
            short_runs: self.short_runs,
            backoff_ms,
            flaps_ms: flaps_ms.map(|&at| millis(now - at)).collect(),
        }
    }

    /// Takes back what an earlier going remembered; true when that leaves
    /// the service waiting out its backoff, which the start must not cut.
    pub fn remember(&mut self, memory: &Memory, now: Instant) -> bool {
        self.restarts = memory.restarts;
        self.short_runs = memory.short_runs;
        let ago = |ms: &u64| now.checked_sub(Duration::from_millis(*ms));
        self.recent_restarts = memory.flaps_ms.iter().filter_map(ago).collect();
        let (Some(ms), Phase::Stopped, Want::Up) = (memory.backoff_ms, &self.phase, self.want)
        else {
            return false;
        };
        let until = now + Duration::from_millis(ms);
        self.phase = Phase::Backoff { until };
        true
    }

    fn count_restart(&mut self, now: Instant) {
        self.restarts = self.restarts.saturating_add(1);
        if self.recent_restarts.len() >= FLAP_RESTARTS {
            self.recent_restarts.pop_front();
        }
        self.recent_restarts.push_back(now);
    }

    /// `going stop` (`down`, even before the stop is sent) or start.
    pub fn want_down(&mut self, down: bool) {
        self.want = match self.want {
            Want::Never { .. } => Want::Never { down },
            _ if down => Want::Down,
            _ => Want::Up,
        };
    }

    /// `going start`: ends an administrative down and starts now, even
    /// from backoff.
    pub fn admin_start(&mut self, now: Instant) -> Vec<Action> {
        self.want_down(false);
        if let Phase::Stopping(stop) = &mut self.phase {
            if stop.then != AfterStop::Remove {
                // Start again once the stop under way has finished.
                stop.then = AfterStop::Restart;
            }
            return vec![];
        }
        self.on(Event::Start, now)
    }

    /// `going restart`: stops (if running) and starts again.
    pub fn admin_restart(&mut self, now: Instant) -> Vec<Action> {
        self.want_down(false);
        if self.is_active() {
            self.stop_then(AfterStop::Restart, now)
        } else {
            self.on(Event::Start, now)
        }
    }

    /// Stops, and once stopped does `then`.
    fn stop_then(&mut self, then: AfterStop, now: Instant) -> Vec<Action> {
        let mut actions = self.on(Event::Stop, now);
        match &mut self.phase {
            Phase::Stopping(stop) => stop.then = then,
            Phase::Stopped => {
                let (next, more) = self.finish(then, now);
                self.phase = next;
                actions.extend(more);
            }
            _ => {}
        }
        actions
    }

    /// Stopped because a dependency stops: starts again once the
    /// dependencies are back, unless it is wanted down.
    pub fn stop_for_dependency(&mut self, now: Instant) -> Vec<Action> {
        let then = match self.want {
            Want::Up => AfterStop::Wait,
            _ => AfterStop::Rest,
        };
        self.stop_then(then, now)
    }

    /// Cancels a removal under way: the service starts again once stopped.
    pub fn keep(&mut self) {
        if let Phase::Stopping(stop) = &mut self.phase {
            stop.then = AfterStop::Restart;
        }
    }

    /// A new service found while files are loaded: it starts, if its
    /// dependencies allow, once all of them are known.
    pub fn wait(&mut self) {
        if let Phase::Stopped = self.phase {
            self.phase = Phase::Waiting;
        }
    }

    /// Starts a start that its dependencies held back, if they now allow it.
    pub fn release(&mut self, now: Instant) -> Vec<Action> {
        if !self.is_waiting() || self.blocked.is_some() {
            return vec![];
        }
        self.phase = Phase::Stopped;
        self.on(Event::Start, now)
    }

    /// Switches to a new definition: at once if nothing runs, else after
    /// an orderly stop.
    pub fn replace(&mut self, spec: ServiceSpec, now: Instant) -> Vec<Action> {
        self.restarts = 0;
        self.short_runs = 0;
        let mut actions = Vec::new();
        if self.is_active() {
            actions = self.on(Event::Stop, now);
        }
        if let Phase::Stopping(stop) = &mut self.phase {
            stop.then = AfterStop::Restart;
            stop.spec = Some(Box::new(spec));
            return actions;
        }
        self.set_spec(spec);
        actions.extend(self.on(Event::Start, now));
        actions
    }

    /// A new definition; a new schedule is asked about again.
    fn set_spec(&mut self, spec: ServiceSpec) {
        if spec.extras().schedule != self.spec.extras().schedule {
            self.window = None;
        }
        self.spec = spec;
    }

    /// Stops the service for good; the supervisor drops it once
    /// [`Service::is_removable`].
    pub fn remove(&mut self, now: Instant) -> Vec<Action> {
        let actions = self.stop_then(AfterStop::Remove, now);
        if let Phase::Stopping(stop) = &mut self.phase {
            stop.spec = None;
        }
        actions
    }

    /// The state x event table: one function per state, each returning
    /// the next state and the actions of the transition.
    pub fn on(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let down = self.is_admin_down();
        match event {
            Event::Shutdown => self.want = Want::Never { down },
            Event::WindowOpened => self.window = Some(true),
            Event::WindowClosed => self.window = Some(false),
            _ => {}
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
        let (next, actions) = match phase {
            Phase::Backoff { until } => self.on_backoff(until, event),
            Phase::Starting(start) => self.on_starting(start, event, now),
            Phase::Running(run) => self.on_running(run, event, now),
            Phase::Stopping(stop) => self.on_stopping(stop, event, now),
            Phase::Removed => (Phase::Removed, self.other(State::Stopped, event)),
            resting => self.on_stopped(resting, event, now),
        };
        self.phase = next;
        actions
    }

    /// Stopped, Waiting, Exited, Disabled: no process, no deadline.
    fn on_stopped(&mut self, phase: Phase, event: Event, now: Instant) -> Next {
        match event {
            Event::Start => self.start(phase),
            Event::Stop | Event::Shutdown if matches!(phase, Phase::Waiting | Phase::Scheduled) => {
                (Phase::Stopped, vec![])
            }
            Event::WindowOpened if matches!(phase, Phase::Scheduled) => self.start(phase),
            Event::WindowClosed
                if self.want == Want::Up
                    && matches!(phase, Phase::Stopped | Phase::Waiting | Phase::Exited) =>
            {
                (self.rest(), vec![])
            }
            Event::Stop if !matches!(phase, Phase::Stopped) => (Phase::Stopped, vec![]),
            Event::Adopted {
                pid,
                age_ms,
                restarts,
            } if matches!(phase, Phase::Stopped) => self.adopted(pid, age_ms, restarts, now),
            // Forked after all, though stopped while the fork was under way.
            Event::Spawned(pid)
                if matches!(phase, Phase::Stopped | Phase::Waiting | Phase::Scheduled) =>
            {
                self.started_at = Some(now);
                log::info!(target: &self.spec.name, "starting, pid {pid}");
                self.stop(pid, vec![], now)
            }
            event => {
                let actions = self.other(phase.public(), event);
                (phase, actions)
            }
        }
    }

    fn on_backoff(&mut self, until: Instant, event: Event) -> Next {
        match event {
            Event::Start => self.start(Phase::Backoff { until }),
            Event::Deadline => self.begin_start(false),
            Event::Stop | Event::Shutdown => (Phase::Stopped, vec![]),
            Event::WindowClosed => (self.rest(), vec![]),
            event => (Phase::Backoff { until }, self.other(State::Backoff, event)),
        }
    }

    fn on_starting(&mut self, start: Start, event: Event, now: Instant) -> Next {
        match (start, event) {
            (
                Start::Before,
                Event::HookDone {
                    hook: Hook::Before,
                    status,
                },
            ) => {
                if status == Exit::Code(0) {
                    return (Phase::Starting(Start::Spawn), vec![Action::Spawn]);
                }
                self.last_exit = Some(status);
                let why = format!("cannot start: before hook {}", status.describe());
                self.failed(&why, now)
            }
            (Start::Before, Event::Stop | Event::Shutdown) => {
                (Phase::Stopped, cancel(Some(Hook::Before)))
            }
            (Start::Before, Event::WindowClosed) => (self.rest(), cancel(Some(Hook::Before))),
            (Start::Spawn, Event::Spawned(pid)) => {
                self.started_at = Some(now);
                log::info!(target: &self.spec.name, "starting, pid {pid}");
                (Phase::Starting(Start::Exec { pid }), vec![])
            }
            (Start::Spawn, Event::SpawnFailed(reason)) => {
                self.failed(&format!("cannot start: {reason}"), now)
            }
            // The fork is under way: its process is stopped once it exists.
            (Start::Spawn, Event::Stop) => (Phase::Stopped, vec![]),
            (Start::Spawn, Event::WindowClosed) => (self.rest(), vec![]),
            (Start::Exec { pid }, Event::ExecOk) => {
                log::info!(target: &self.spec.name, "running, pid {pid}");
                (self.running(pid, None, false, now), vec![])
            }
            (Start::Exec { pid }, Event::Exited { status, exec_error }) => {
                self.exited(pid, None, status, exec_error, vec![], now)
            }
            (Start::Exec { pid }, Event::Stop | Event::WindowClosed) => self.stop(pid, vec![], now),
            (Start::PidFile { .. }, Event::PidFile(Some((pid, group)))) => {
                log::info!(target: &self.spec.name, "running, pid {pid} (from its pid file)");
                (self.running(pid, Some(group), false, now), vec![])
            }
            (Start::PidFile { until, .. }, Event::Deadline) if now >= until => {
                let file = self.pid_file_name();
                let waited = format_duration(self.spec.extras().start_timeout);
                let why = format!("cannot start: {file} named no live process within {waited}");
                self.failed(&why, now)
            }
            (Start::PidFile { until, .. }, Event::Deadline) => read_pid_file(until, now),
            (start @ Start::PidFile { .. }, Event::PidFile(None)) => {
                (Phase::Starting(start), vec![])
            }
            (Start::PidFile { .. }, Event::Stop | Event::Shutdown) => (Phase::Stopped, vec![]),
            (Start::PidFile { .. }, Event::WindowClosed) => (self.rest(), vec![]),
            (start, event) => (Phase::Starting(start), self.other(State::Starting, event)),
        }
    }

    fn on_running(&mut self, mut run: Run, event: Event, now: Instant) -> Next {
        match event {
            Event::Ready if matches!(run.ready, Ready::No { .. }) => {
                (self.become_ready(run, now), vec![])
            }
            Event::HookDone { hook, status } if matches!(hook, Hook::Ready | Hook::Health) => {
                if run.check == Some(hook) {
                    run.check = None;
                }
                match run.ready {
                    _ if hook == Hook::Health => return self.health_checked(run, status, now),
                    Ready::Yes { .. } => {}
                    _ if status == Exit::Code(0) => return (self.become_ready(run, now), vec![]),
                    _ => run.next_check = self.ready_check_at(now),
                }
                (Phase::Running(run), vec![])
            }
            Event::Deadline => self.running_deadline(run, now),
            Event::Exited { status, exec_error } => {
                let cancel = cancel(run.check);
                self.exited(run.pid, run.daemon, status, exec_error, cancel, now)
            }
            // Its stop ends in `rest()`: scheduled.
            Event::Stop | Event::WindowClosed => self.stop(run.pid, cancel(run.check), now),
            Event::Inactive => {
                if let Some(check) = &self.spec.extras().activity {
                    let (folder, quiet) = (check.folder.display(), format_duration(check.inactive));
                    log::warn!(target: &self.spec.name, "no activity in {folder} for {quiet}, pid {}, {}", run.pid, self.restarting());
                }
                self.restart_after_backoff(run, now)
            }
            event => (Phase::Running(run), self.other(State::Running, event)),
        }
    }

    fn on_stopping(&mut self, mut stop: Box<Stop>, event: Event, now: Instant) -> Next {
        let (pid, group) = (stop.pid, stop.group);
        let mut actions = Vec::new();
        match event {
            Event::Stop => stop.then = AfterStop::Rest,
            // Once the leader is reaped, its pid may be another process's.
            Event::Exited { status, .. } if stop.leader_gone.is_none() => {
                self.reaped(status, now);
                stop.leader_gone = Some((now + GROUP_RECHECK_FIRST, GROUP_RECHECK_FIRST));
                actions = self.on_exit_hook(pid, status);
                actions.push(Action::CheckGroup { pid: group });
            }
            Event::GroupGone if stop.leader_gone.is_some() => return self.stopped(*stop, now),
            Event::Deadline => {
                if stop.kill_at.is_some_and(|at| now >= at) {
                    stop.kill_at = None;
                    log::warn!(target: &self.spec.name, "stop timeout, pid {pid}, sending KILL to the process group");
                    let signal = libc::SIGKILL;
                    actions.push(match stop.leader_gone {
                        Some(_) => Action::SignalGroup { group, signal },
                        None => Action::Signal { pid, signal },
                    });
                }
                if let Some((_, every)) = stop.leader_gone {
                    actions.push(Action::CheckGroup { pid: group });
                    let every = (every * 2).min(GROUP_RECHECK_MAX);
                    stop.leader_gone = Some((now + every, every));
                }
            }
            Event::HookDone { hook, status }
                if hook == Hook::Stop && status != Exit::Code(0) && stop.leader_gone.is_none() =>
            {
                // A stop hook that failed still has to stop the service.
                actions = self.other(State::Stopping, event);
                actions.extend(self.stop_signals(pid));
            }
            event => actions = self.other(State::Stopping, event),
        }
        (Phase::Stopping(stop), actions)
    }

    /// What every state answers alike: a hook's end is logged if it
    /// failed, anything else is ignored.
    fn other(&self, state: State, event: Event) -> Vec<Action> {
        match event {
            Event::HookDone { hook, status } if hook != Hook::Health && status != Exit::Code(0) => {
                log::warn!(target: &self.spec.name, "{} hook {}", hook.name(), status.describe());
            }
            Event::HookDone { .. } | Event::Deadline | Event::Shutdown | Event::Start => {}
            Event::WindowOpened | Event::WindowClosed | Event::Inactive => {}
            Event::Adopted { .. } => {}
            event => {
                log::debug!(target: &self.spec.name, "ignored {event:?} in state {}", state.name());
            }
        }
        vec![]
    }

    /// `Start` with no process: starts, unless it is wanted down.
    fn start(&mut self, resting: Phase) -> Next {
        if self.want != Want::Up {
            return (resting, vec![]);
        }
        if !self.spec.enabled {
            return (Phase::Disabled, vec![]);
        }
        self.begin_start(matches!(resting, Phase::Waiting))
    }

    /// Spawns the service, or first its `before` hook; or, while its
    /// dependencies are not met, waits for them. Nothing starts during
    /// shutdown.
    fn begin_start(&self, waiting: bool) -> Next {
        if let Want::Never { .. } = self.want {
            return (Phase::Stopped, vec![]);
        }
        match self.window {
            _ if self.spec.extras().schedule.is_none() => {}
            Some(true) => {}
            Some(false) => return (Phase::Scheduled, vec![]),
            None => return (Phase::Scheduled, self.ask_window().into_iter().collect()),
        }
        if let Some(reason) = &self.blocked {
            if !waiting {
                log::info!(target: &self.spec.name, "waiting: {reason}");
            }
            return (Phase::Waiting, vec![]);
        }
        if self.spec.extras().before.is_none() {
            return (Phase::Starting(Start::Spawn), vec![Action::Spawn]);
        }
        (Phase::Starting(Start::Before), vec![run_hook(Hook::Before)])
    }

    /// A process an earlier going started is this service's now.
    fn adopted(&mut self, pid: i32, age_ms: u64, restarts: u32, now: Instant) -> Next {
        let age = Duration::from_millis(age_ms);
        self.started_at = Some(now.checked_sub(age).unwrap_or(now));
        self.restarts = restarts;
        log::info!(target: &self.spec.name, "adopted, pid {pid}, running for {}", format_duration(age));
        // Whether it may still run is the schedule's to say.
        let ask = self.window.is_none().then(|| self.ask_window()).flatten();
        // It was running before: ready, as far as going can tell.
        (self.running(pid, None, true, now), Vec::from_iter(ask))
    }

    /// The process runs: ready if `adopted` or it has no way to say when
    /// it is, else waiting to say so.
    fn running(&self, pid: i32, daemon: Option<i32>, adopted: bool, now: Instant) -> Phase {
        let (ready, next_check) = if adopted || self.spec.extras().readiness.is_none() {
            (Ready::Yes { health_failures: 0 }, self.health_deadline(now))
        } else {
            let until = now + self.spec.extras().start_timeout;
            (Ready::No { until }, self.ready_check_at(now))
        };
        Phase::Running(Run {
            pid,
            daemon,
            ready,
            check: None,
            next_check,
        })
    }

    /// When the first health check is due, if the service has one.
    fn health_deadline(&self, now: Instant) -> Option<Instant> {
        let check = self.spec.extras().health_check.as_ref();
        check.map(|h| now + h.interval)
    }

    /// When the next ready command is due, if readiness is a command.
    fn ready_check_at(&self, now: Instant) -> Option<Instant> {
        match &self.spec.extras().readiness {
            Some(Readiness::Command { interval, .. }) => Some(now + *interval),
            _ => None,
        }
    }

    fn become_ready(&mut self, mut run: Run, now: Instant) -> Phase {
        log::info!(target: &self.spec.name, "ready, pid {}", run.pid);
        self.not_ready_in_time = false;
        run.ready = Ready::Yes { health_failures: 0 };
        run.next_check = self.health_deadline(now);
        Phase::Running(run)
    }

    /// Running's deadline: the readiness timeout, the next ready command,
    /// or the next health check.
    fn running_deadline(&mut self, mut run: Run, now: Instant) -> Next {
        run.next_check = None;
        match run.ready {
            Ready::No { until } if now >= until => {
                let waited = format_duration(self.spec.extras().start_timeout);
                let then = self.restarting();
                log::warn!(target: &self.spec.name, "not ready within {waited}, pid {}, {then}", run.pid);
                self.not_ready_in_time = true;
                return self.restart_after_backoff(run, now);
            }
            Ready::No { .. } if self.ready_check_at(now).is_none() => {}
            Ready::No { .. } if run.check.is_none() => run.check = Some(Hook::Ready),
            Ready::Yes { .. } if run.check.is_none() => run.check = Some(Hook::Health),
            _ => return (Phase::Running(run), vec![]),
        }
        let actions = run.check.map(run_hook).into_iter().collect();
        (Phase::Running(run), actions)
    }

    /// A health check ended: count a failure, restart after `retries` of
    /// them in a row, and schedule the next check.
    fn health_checked(&mut self, mut run: Run, status: Exit, now: Instant) -> Next {
        let Some(check) = self.spec.extras().health_check.clone() else {
            return (Phase::Running(run), vec![]);
        };
        run.next_check = Some(now + check.interval);
        let failures = match &mut run.ready {
            Ready::Yes { health_failures } => health_failures,
            Ready::No { .. } => return (Phase::Running(run), vec![]),
        };
        if status == Exit::Code(0) {
            *failures = 0;
            return (Phase::Running(run), vec![]);
        }
        *failures += 1;
        let (pid, failed) = (run.pid, *failures);
        if failed < check.retries {
            log::warn!(target: &self.spec.name, "health check {}, {failed} of {}, pid {pid}", status.describe(), check.retries);
            return (Phase::Running(run), vec![]);
        }
        log::warn!(target: &self.spec.name, "health check {}, {failed} times in a row, pid {pid}, restarting", status.describe());
        *failures = 0;
        self.restart_after_backoff(run, now)
    }

    /// The leader of a starting or running service ended on its own (a
    /// `daemon`, in that process group); `actions` call off its checks.
    fn exited(
        &mut self,
        pid: i32,
        daemon: Option<i32>,
        status: Exit,
        exec_error: Option<String>,
        mut actions: Vec<Action>,
        now: Instant,
    ) -> Next {
        let pid_file = self.spec.extras().pid_file.is_some();
        if status == Exit::Code(0) && exec_error.is_none() && daemon.is_none() && pid_file {
            // The command daemonized: the service is whoever the pid file names.
            let file = self.pid_file_name();
            log::info!(target: &self.spec.name, "forked and exited, pid {pid}, waiting for {file}");
            if let Want::Never { .. } = self.want {
                return (Phase::Stopped, vec![]);
            }
            return read_pid_file(now + self.spec.extras().start_timeout, now);
        }
        self.reaped(status, now);
        let (how, ran) = (status.describe(), self.ran_for(now));
        actions.extend(self.on_exit_hook(pid, status));
        let then = match exec_error {
            Some(why) => self.after_failure(&format!("cannot start: {why}, pid {pid}"), now),
            None => {
                let what = format!("{how} after {}, pid {pid}", format_duration(ran));
                self.after_exit(&what, status != Exit::Code(0), ran < SHORT_RUN, now)
            }
        };
        if self.spec.extras().keep_leftovers {
            let (next, more) = self.finish(then, now);
            actions.extend(more);
            return (next, actions);
        }
        // What it left in its group gets the stop signal (KILL after the
        // stop timeout) before `then`. The group is checked at once: an
        // empty one ends this stop unseen.
        let group = daemon.unwrap_or(pid);
        let signals = [self.spec.stop_signal, libc::SIGCONT];
        actions.extend(signals.map(|signal| Action::SignalGroup { group, signal }));
        actions.push(Action::CheckGroup { pid: group });
        (self.stopping(pid, Some(group), then, now), actions)
    }

    /// Stopping `pid`'s process group, or the group it left `leftovers`
    /// in (its leader has ended already).
    fn stopping(&self, pid: i32, leftovers: Option<i32>, then: AfterStop, now: Instant) -> Phase {
        let gone = (now + GROUP_RECHECK_FIRST, GROUP_RECHECK_FIRST);
        Phase::Stopping(Box::new(Stop {
            pid,
            group: leftovers.unwrap_or(pid),
            leftovers: leftovers.is_some(),
            kill_at: Some(now + self.spec.stop_timeout),
            leader_gone: leftovers.map(|_| gone),
            then,
            spec: None,
        }))
    }

    /// Sends the stop signal (or runs the stop hook) to a process, after
    /// `actions` (checks of it called off).
    fn stop(&self, pid: i32, mut actions: Vec<Action>, now: Instant) -> Next {
        if self.spec.extras().stop_command.is_some() {
            log::info!(target: &self.spec.name, "stopping, pid {pid}, stop hook");
            let (hook, env) = (Hook::Stop, vec![("GOING_PID".to_string(), pid.to_string())]);
            actions.push(Action::RunHook { hook, env });
        } else {
            let signal = signals::name(self.spec.stop_signal);
            log::info!(target: &self.spec.name, "stopping, pid {pid}, signal {signal}");
            actions.extend(self.stop_signals(pid));
        }
        (self.stopping(pid, None, AfterStop::Rest, now), actions)
    }

    fn stop_signals(&self, pid: i32) -> [Action; 2] {
        [self.spec.stop_signal, libc::SIGCONT].map(|signal| Action::Signal { pid, signal })
    }

    /// Stops the service and starts it again, after the backoff its run
    /// calls for: a failed health check or readiness counts as a crash.
    fn restart_after_backoff(&mut self, run: Run, now: Instant) -> Next {
        let (mut phase, actions) = self.stop(run.pid, cancel(run.check), now);
        if self.spec.restart == Restart::Never {
            return (phase, actions);
        }
        // Restarted like a crash: after a short run, with the backoff.
        if self.ran_for(now) < SHORT_RUN {
            self.short_runs = self.short_runs.saturating_add(1);
        } else {
            self.short_runs = 0;
        }
        if let Phase::Stopping(stop) = &mut phase {
            stop.then = AfterStop::RestartAfterBackoff;
        }
        (phase, actions)
    }

    /// The process group is gone: log, switch definitions, and do `then`.
    fn stopped(&mut self, stop: Stop, now: Instant) -> Next {
        let every = stop.leader_gone.map(|(_, every)| every);
        if !stop.leftovers {
            let how = self.last_exit.map(Exit::describe).unwrap_or_default();
            let ran = format_duration(self.ran_for(now));
            log::info!(target: &self.spec.name, "stopped, pid {}, {how} after {ran}", stop.pid);
        } else if every > Some(GROUP_RECHECK_FIRST) {
            // Said only when they outlived the first look (most often
            // there are none, and nothing shows).
            let took = self.exited_at.map(|at| now.saturating_duration_since(at));
            let took = format_duration(took.unwrap_or_default());
            log::info!(target: &self.spec.name, "processes left in group {} stopped after {took}", stop.group);
        }
        // A new definition waiting for this stop applies even if the
        // restart was called off (`going stop` meanwhile).
        if let Some(spec) = stop.spec {
            self.set_spec(*spec);
        }
        self.finish(stop.then, now)
    }

    /// What a finished stop leads to.
    fn finish(&mut self, then: AfterStop, now: Instant) -> Next {
        match then {
            AfterStop::Rest => (self.rest(), vec![]),
            AfterStop::Wait => (Phase::Waiting, vec![]),
            AfterStop::Remove => (Phase::Removed, vec![]),
            AfterStop::Restart => self.start(Phase::Stopped),
            AfterStop::RestartAfterBackoff => {
                self.count_restart(now);
                if self.short_runs == 0 {
                    return self.start(Phase::Stopped);
                }
                let delay = backoff_delay(self.short_runs);
                log::warn!(target: &self.spec.name, "restart in {}", format_duration(delay));
                (self.backoff(now + delay), vec![])
            }
            AfterStop::StartAgain => self.begin_start(false),
            AfterStop::Backoff(until) if until <= now => self.begin_start(false),
            AfterStop::Backoff(until) => (self.backoff(until), vec![]),
            AfterStop::Exit => (Phase::Exited, self.critical_end()),
        }
    }

    /// Backoff until `until`, or, during shutdown, stopped.
    fn backoff(&self, until: Instant) -> Phase {
        match self.want {
            Want::Never { .. } => Phase::Stopped,
            _ if self.outside_window() => Phase::Scheduled,
            _ => Phase::Backoff { until },
        }
    }

    /// No process and none to start: scheduled while wanted up outside its
    /// windows, else stopped.
    fn rest(&self) -> Phase {
        if self.want == Want::Up && self.outside_window() {
            Phase::Scheduled
        } else {
            Phase::Stopped
        }
    }

    /// Has a schedule, none of whose windows is on (as last said).
    fn outside_window(&self) -> bool {
        self.spec.extras().schedule.is_some() && self.window == Some(false)
    }

    /// Asks the schedules part whether a window is on.
    fn ask_window(&self) -> Option<Action> {
        let schedule = self.spec.extras().schedule?;
        Some(Action::Window { schedule })
    }

    /// What a failed check leads to, as its log line says.
    fn restarting(&self) -> &'static str {
        if self.spec.restart == Restart::Never {
            "stopping"
        } else {
            "restarting"
        }
    }

    fn reaped(&mut self, status: Exit, now: Instant) {
        self.last_exit = Some(status);
        self.exited_at = Some(now);
    }

    fn ran_for(&self, now: Instant) -> Duration {
        self.started_at
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at))
    }

    /// The leader died on its own: restart now, later, or not at all
    /// (logged now, done once its leftovers are gone).
    fn after_exit(&mut self, what: &str, failed: bool, short: bool, now: Instant) -> AfterStop {
        let policy = match self.spec.restart {
            Restart::Always => None,
            Restart::OnFailure => (!failed).then_some("on-failure"),
            Restart::Never => Some("never"),
        };
        if let Some(policy) = policy {
            log::info!(target: &self.spec.name, "{what}, not restarted (restart = {policy})");
            return AfterStop::Exit;
        }
        self.count_restart(now);
        if !short {
            self.short_runs = 0;
            log::warn!(target: &self.spec.name, "{what}, restarting");
            return AfterStop::StartAgain;
        }
        self.back_off(what, log::Level::Warn, now)
    }

    /// One more short run: the backoff it calls for, or, for a critical
    /// service that keeps failing, the end.
    fn back_off(&mut self, what: &str, level: log::Level, now: Instant) -> AfterStop {
        self.short_runs = self.short_runs.saturating_add(1);
        if self.spec.critical && self.short_runs >= CRITICAL_SHORT_RUNS {
            log::error!(target: &self.spec.name, "{what}, failed {} times in a row", self.short_runs);
            return AfterStop::Exit;
        }
        let delay = backoff_delay(self.short_runs);
        log::log!(target: &self.spec.name, level, "{what}, restart in {}", format_duration(delay));
        AfterStop::Backoff(now + delay)
    }

    /// The service could not be started at all: always a short run.
    fn after_failure(&mut self, what: &str, now: Instant) -> AfterStop {
        if self.spec.restart == Restart::Never {
            log::error!(target: &self.spec.name, "{what}, not restarted (restart = never)");
            return AfterStop::Exit;
        }
        self.count_restart(now);
        self.back_off(what, log::Level::Error, now)
    }

    /// A start failed with no process left: what follows, at once.
    fn failed(&mut self, what: &str, now: Instant) -> Next {
        let then = self.after_failure(what, now);
        self.finish(then, now)
    }

    /// The pid file, as log lines name it.
    fn pid_file_name(&self) -> String {
        let file = self.spec.extras().pid_file.as_deref();
        file.map(|p| p.display().to_string()).unwrap_or_default()
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
        let hook = Hook::OnExit;
        vec![Action::RunHook { hook, env }]
    }

    /// The end of a critical service is going's end: its last status, or 1
    /// when it never ran.
    fn critical_end(&self) -> Vec<Action> {
        let code = self.last_exit.map_or(1, Exit::code);
        Vec::from_iter(self.spec.critical.then_some(Action::Critical { code }))
    }
}

/// Reads the pid file now and again in [`PID_FILE_RECHECK`], until `until`.
fn read_pid_file(until: Instant, now: Instant) -> Next {
    let recheck = now + PID_FILE_RECHECK;
    let phase = Phase::Starting(Start::PidFile { until, recheck });
    (phase, vec![Action::ReadPidFile])
}

fn run_hook(hook: Hook) -> Action {
    Action::RunHook {
        hook,
        env: Vec::new(),
    }
}

/// Kills the hook still running, if any: a check of a process that ends
/// or stops, or a `before` whose start was called off.
fn cancel(running: Option<Hook>) -> Vec<Action> {
    Vec::from_iter(running.map(|hook| Action::CancelHook { hook }))
}

/// The file's name of a service or instance name: `web@3` -> `web`.
pub fn base_name(name: &str) -> &str {
    name.split_once('@').map_or(name, |(base, _)| base)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `going stop` as the supervisor sends it: down when asked, then `Stop`.
    fn admin_stop(s: &mut Service, now: Instant) -> Vec<Action> {
        s.want_down(true);
        s.on(Event::Stop, now)
    }

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

    /// `s` hears `event` (an end of its process) as from the loop, which
    /// answers `GroupGone` at once when nothing is left in the group.
    fn exits(s: &mut Service, event: Event, now: Instant) -> Vec<Action> {
        let mut actions = s.on(event, now);
        let Some(group) = s.awaited_group() else {
            return actions;
        };
        if !actions.ends_with(&leftovers(group, libc::SIGTERM)) {
            return actions;
        }
        actions.truncate(actions.len() - 3);
        actions.extend(s.on(Event::GroupGone, now));
        actions
    }

    /// What stops the leftovers in `group`.
    fn leftovers(group: i32, signal: i32) -> Vec<Action> {
        vec![
            Action::SignalGroup { group, signal },
            Action::SignalGroup {
                group,
                signal: libc::SIGCONT,
            },
            Action::CheckGroup { pid: group },
        ]
    }

    /// The stop signal, and SIGCONT, to the group of `pid`.
    fn term_cont(pid: i32) -> Vec<Action> {
        let signal = |signal| Action::Signal { pid, signal };
        vec![signal(libc::SIGTERM), signal(libc::SIGCONT)]
    }

    /// Starts `s` at `now` with pid 100 and confirms the exec.
    fn run(s: &mut Service, now: Instant) {
        assert_eq!(s.on(Event::Start, now), vec![Action::Spawn]);
        spawned(s, now);
    }

    /// The spawn `s` asked for has happened: pid 100, exec confirmed.
    fn spawned(s: &mut Service, now: Instant) {
        assert_eq!(s.state(), State::Starting);
        s.on(Event::Spawned(100), now);
        assert_eq!(s.state(), State::Starting);
        s.on(Event::ExecOk, now);
        assert_eq!(s.state(), State::Running);
    }

    /// A service with an office-hours schedule, told its window is `open`.
    fn scheduled(restart: Restart, open: bool, now: Instant) -> Service {
        let mut s = service(&["x"]);
        s.spec.restart = restart;
        let schedule = Schedule {
            start: 8 * 3600,
            stop: 18 * 3600,
            week_days: 0x1f,
        };
        s.spec.extras_mut().schedule = Some(schedule);
        assert_eq!(s.on(Event::Start, now), vec![Action::Window { schedule }]);
        assert_eq!(s.state(), State::Scheduled);
        let told = if open {
            Event::WindowOpened
        } else {
            Event::WindowClosed
        };
        let actions = s.on(told, now);
        if open {
            assert_eq!(actions, vec![Action::Spawn]);
            spawned(&mut s, now);
        } else {
            assert_eq!(actions, vec![]);
            assert_eq!(s.state(), State::Scheduled);
        }
        s
    }

    #[test]
    fn a_schedule_starts_at_its_window_and_stops_at_its_end() {
        let t0 = Instant::now();
        let mut s = scheduled(Restart::Always, false, t0);
        // A start outside the window (`going start`, a reload) waits for it.
        assert_eq!(s.admin_start(t0), vec![]);
        assert_eq!(s.state(), State::Scheduled);
        assert_eq!(s.deadline(), None);
        assert_eq!(s.on(Event::WindowOpened, t0), vec![Action::Spawn]);
        spawned(&mut s, t0);
        // Inside it, a crash restarts as usual.
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(exits(&mut s, exit(1), t1), vec![Action::Spawn]);
        spawned(&mut s, t1);
        // Its end: the stop procedure, then scheduled.
        assert_eq!(s.on(Event::WindowClosed, t1), term_cont(100));
        assert_eq!(s.state(), State::Stopping);
        assert_eq!(s.deadline(), Some(t1 + Duration::from_secs(2)));
        exits(&mut s, exit(0), t1);
        assert_eq!(s.on(Event::GroupGone, t1), vec![]);
        assert_eq!(s.state(), State::Scheduled);
        // A window closing during a backoff ends the backoff.
        let mut s = scheduled(Restart::Always, true, t0);
        exits(&mut s, exit(1), t0);
        assert_eq!(s.state(), State::Backoff);
        s.on(Event::WindowClosed, t0);
        assert_eq!((s.state(), s.deadline()), (State::Scheduled, None));
    }

    #[test]
    fn a_one_shot_runs_once_a_window() {
        let t0 = Instant::now();
        let mut s = scheduled(Restart::Never, true, t0);
        exits(&mut s, exit(0), t0 + Duration::from_secs(1));
        assert_eq!(s.state(), State::Exited);
        // Told again that the window is on (a clock change): nothing.
        assert_eq!(s.on(Event::WindowOpened, t0), vec![]);
        assert_eq!(s.state(), State::Exited);
        assert_eq!(s.on(Event::WindowClosed, t0), vec![]);
        assert_eq!(s.state(), State::Scheduled);
        assert_eq!(s.on(Event::WindowOpened, t0), vec![Action::Spawn]);
    }

    #[test]
    fn going_stop_wins_over_a_schedule() {
        let t0 = Instant::now();
        let mut s = scheduled(Restart::Always, false, t0);
        assert_eq!(admin_stop(&mut s, t0), vec![]);
        assert_eq!(s.state(), State::Stopped);
        assert_eq!(s.on(Event::WindowOpened, t0), vec![]);
        assert_eq!(s.state(), State::Stopped);
        // Started again inside the window: it runs; at the end, scheduled.
        assert_eq!(s.admin_start(t0), vec![Action::Spawn]);
        spawned(&mut s, t0);
        s.on(Event::WindowClosed, t0);
        exits(&mut s, exit(0), t0);
        s.on(Event::GroupGone, t0);
        assert_eq!(s.state(), State::Scheduled);
        // Shutdown rests it.
        s.on(Event::Shutdown, t0);
        assert_eq!(s.state(), State::Stopped);
    }

    #[test]
    fn a_new_schedule_is_asked_about_again() {
        let t0 = Instant::now();
        let mut s = scheduled(Restart::Always, false, t0);
        let mut spec = s.spec.clone();
        let other = Schedule::default();
        spec.extras_mut().schedule = Some(other);
        assert_eq!(
            s.replace(spec, t0),
            vec![Action::Window { schedule: other }]
        );
        // An adopted process of a scheduled service asks too.
        let mut s = service(&["x"]);
        s.spec.extras_mut().schedule = Some(other);
        let adopted = Event::Adopted {
            pid: 7,
            age_ms: 0,
            restarts: 0,
        };
        assert_eq!(s.on(adopted, t0), vec![Action::Window { schedule: other }]);
        assert_eq!(s.on(Event::WindowClosed, t0), term_cont(7));
    }

    #[test]
    fn inactivity_restarts_like_a_failed_health_check() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.spec.extras_mut().activity = Some(crate::config::ActivityCheck {
            folder: "/var/spool/app".into(),
            inactive: Duration::from_secs(120),
        });
        run(&mut s, t0);
        let t1 = t0 + Duration::from_secs(120);
        assert_eq!(s.on(Event::Inactive, t1), term_cont(100));
        exits(&mut s, exit(0), t1);
        // A long run: started again at once.
        assert_eq!(s.on(Event::GroupGone, t1), vec![Action::Spawn]);
        assert_eq!(s.restarts(), 1);
        // Outside Running it means nothing.
        let mut idle = service(&["x"]);
        assert_eq!(idle.on(Event::Inactive, t0), vec![]);
        assert_eq!(idle.state(), State::Stopped);
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
        let actions = exits(&mut s, exit(0), t0 + Duration::from_secs(60));
        assert_eq!(actions, vec![Action::Spawn]);
        assert_eq!(s.restarts(), 1);
        assert_eq!(s.last_exit(), Some(Exit::Code(0)));
        assert_eq!(s.pid(), None);
    }

    #[test]
    fn short_runs_back_off_and_a_long_run_resets() {
        let t0 = Instant::now();
        let mut s = service(&["/bin/false"]);
        let mut now = t0;
        run(&mut s, now);
        for expected_ms in [50, 100, 200, 400] {
            now += Duration::from_millis(10);
            assert_eq!(exits(&mut s, exit(1), now), vec![]);
            assert_eq!(s.state(), State::Backoff);
            assert_eq!(s.deadline(), Some(now + Duration::from_millis(expected_ms)));
            now += Duration::from_millis(expected_ms);
            assert_eq!(s.on(Event::Deadline, now), vec![Action::Spawn]);
            spawned(&mut s, now);
        }
        assert_eq!(exits(&mut s, exit(1), now + SHORT_RUN), vec![Action::Spawn]);
        spawned(&mut s, now);
        exits(&mut s, exit(1), now + Duration::from_millis(1));
        assert_eq!(
            s.deadline(),
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
        assert_eq!(exits(&mut s, exit(0), later), vec![]);
        assert_eq!(s.state(), State::Exited);
        run(&mut s, t0);
        assert_eq!(exits(&mut s, exit(3), later), vec![Action::Spawn]);
        spawned(&mut s, t0);
        let killed = Event::Exited {
            status: Exit::Signal(9),
            exec_error: None,
        };
        assert_eq!(exits(&mut s, killed, later), vec![Action::Spawn]);

        s.spec.restart = Restart::Never;
        spawned(&mut s, t0);
        assert_eq!(exits(&mut s, exit(3), later), vec![]);
        assert_eq!(s.state(), State::Exited);
        assert_eq!(s.deadline(), None);
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
        assert_eq!(exits(&mut s, failed, t0 + SHORT_RUN * 2), vec![]);
        assert_eq!(s.state(), State::Backoff);
        assert_eq!(s.deadline(), Some(t0 + SHORT_RUN * 2 + FIRST_BACKOFF));
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
        assert_eq!(s.state(), State::Backoff);
        s.on(Event::Deadline, t0 + FIRST_BACKOFF);
        s.on(Event::SpawnFailed("again".into()), t0 + FIRST_BACKOFF);
        assert_eq!(s.deadline(), Some(t0 + FIRST_BACKOFF * 3));
    }

    #[test]
    fn stop_signals_then_kills_after_the_timeout() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        let actions = s.on(Event::Stop, t0);
        assert_eq!(actions, term_cont(100));
        assert_eq!(s.state(), State::Stopping);
        let kill_at = t0 + Duration::from_secs(2);
        assert_eq!(s.deadline(), Some(kill_at));
        assert_eq!(
            s.on(Event::Deadline, kill_at),
            vec![Action::Signal {
                pid: 100,
                signal: libc::SIGKILL
            }]
        );
        assert_eq!(s.deadline(), None);
        let killed = Event::Exited {
            status: Exit::Signal(9),
            exec_error: None,
        };
        assert_eq!(s.on(killed, kill_at), vec![Action::CheckGroup { pid: 100 }]);
        assert_eq!(s.state(), State::Stopping);
        assert_eq!(s.on(Event::GroupGone, kill_at), vec![]);
        assert_eq!(s.state(), State::Stopped);
        assert_eq!(s.pid(), None);
    }

    #[test]
    fn a_stop_waits_for_the_whole_group() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        s.on(Event::Stop, t0);
        exits(&mut s, exit(0), t0);
        // The group outlives its leader: recheck soon, then less often.
        assert_eq!(s.deadline(), Some(t0 + GROUP_RECHECK_FIRST));
        let t1 = t0 + GROUP_RECHECK_FIRST;
        assert_eq!(
            s.on(Event::Deadline, t1),
            vec![Action::CheckGroup { pid: 100 }]
        );
        assert_eq!(s.deadline(), Some(t1 + GROUP_RECHECK_FIRST * 2));
        // The kill still comes at the stop timeout.
        let kill_at = t0 + Duration::from_secs(2);
        assert_eq!(
            s.on(Event::Deadline, kill_at),
            vec![
                // The group only: the leader's pid may be another's now.
                Action::SignalGroup {
                    group: 100,
                    signal: libc::SIGKILL
                },
                Action::CheckGroup { pid: 100 }
            ]
        );
        assert_eq!(s.state(), State::Stopping);
        s.on(Event::GroupGone, kill_at);
        assert_eq!(s.state(), State::Stopped);
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
        exits(&mut s, exit(1), t0);
        assert_eq!(s.state(), State::Backoff);
        assert_eq!(s.on(Event::Stop, t0), vec![]);
        assert_eq!(s.state(), State::Stopped);
        assert_eq!(s.deadline(), None);
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
        exits(&mut s, exit(0), t0);
        assert_eq!(s.on(Event::GroupGone, t0), vec![Action::Spawn]);
        assert_eq!(s.spec, new);
        assert_eq!(s.restarts(), 0);
    }

    #[test]
    fn replace_starts_a_resting_service_and_resets_backoff() {
        let t0 = Instant::now();
        let mut s = service(&["old"]);
        run(&mut s, t0);
        exits(&mut s, exit(1), t0);
        assert_eq!(s.state(), State::Backoff);
        let actions = s.replace(ServiceSpec::new("web", vec!["new".into()]), t0);
        assert_eq!(actions, vec![Action::Spawn]);
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn disabled_services_never_spawn() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.spec.enabled = false;
        assert_eq!(s.on(Event::Start, t0), vec![]);
        assert_eq!(s.state(), State::Disabled);
        let mut enabled = s.spec.clone();
        enabled.enabled = true;
        assert_eq!(s.replace(enabled, t0), vec![Action::Spawn]);
        spawned(&mut s, t0);
        let mut disabled = s.spec.clone();
        disabled.enabled = false;
        s.replace(disabled, t0);
        exits(&mut s, exit(0), t0);
        assert_eq!(s.on(Event::GroupGone, t0), vec![]);
        assert_eq!(s.state(), State::Disabled);
    }

    #[test]
    fn admin_down_holds_until_start() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        admin_stop(&mut s, t0);
        exits(&mut s, exit(0), t0);
        assert_eq!(s.on(Event::GroupGone, t0), vec![]);
        assert_eq!(s.state(), State::Stopped);
        assert_eq!(s.on(Event::Start, t0), vec![]);
        let changed = ServiceSpec::new("web", vec!["y".into()]);
        assert_eq!(s.replace(changed, t0), vec![]);
        assert_eq!(s.spec.argv, ["y"]);
        assert_eq!(s.admin_start(t0), vec![Action::Spawn]);
        assert!(!s.is_admin_down());
    }

    #[test]
    fn start_during_a_stop_starts_once_stopped() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        admin_stop(&mut s, t0);
        assert_eq!(s.admin_start(t0), vec![]);
        exits(&mut s, exit(0), t0);
        assert_eq!(s.on(Event::GroupGone, t0), vec![Action::Spawn]);
    }

    #[test]
    fn a_stop_during_a_definition_change_still_takes_the_new_definition() {
        let t0 = Instant::now();
        let mut s = service(&["old"]);
        run(&mut s, t0);
        s.replace(ServiceSpec::new("web", vec!["new".into()]), t0);
        admin_stop(&mut s, t0);
        exits(&mut s, exit(0), t0);
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
        exits(&mut s, exit(0), t0);
        assert_eq!(s.on(Event::GroupGone, t0), vec![Action::Spawn]);
        let mut resting = service(&["x"]);
        assert_eq!(resting.admin_restart(t0), vec![Action::Spawn]);
    }

    #[test]
    fn five_restarts_in_a_minute_is_flapping() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        let mut now = t0;
        run(&mut s, now);
        for _ in 0..FLAP_RESTARTS {
            now += SHORT_RUN;
            assert_eq!(exits(&mut s, exit(1), now), vec![Action::Spawn]);
            spawned(&mut s, now);
        }
        assert!(s.is_flapping(now));
        assert!(!s.is_flapping(t0 + FLAP_WINDOW * 2));
        // Short runs in a row flap however slow the backoff has made them.
        let mut slow = service(&["x"]);
        let mut now = t0;
        for _ in 0..FLAP_RESTARTS {
            run(&mut slow, now);
            exits(&mut slow, exit(1), now + Duration::from_millis(1));
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
        assert_eq!(
            exits(&mut s, exit(7), t0),
            vec![Action::Critical { code: 7 }]
        );
        let mut killed = service(&["x"]);
        killed.spec.critical = true;
        killed.spec.restart = Restart::OnFailure;
        run(&mut killed, t0);
        assert_eq!(
            exits(&mut killed, exit(0), t0),
            vec![Action::Critical { code: 0 }]
        );
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
            assert_eq!(exits(&mut s, exit(2), now), vec![]);
            assert_eq!(s.state(), State::Backoff);
            now += MAX_BACKOFF;
        }
        run(&mut s, now);
        assert_eq!(
            exits(&mut s, exit(2), now),
            vec![Action::Critical { code: 2 }]
        );
        assert_eq!(s.state(), State::Exited);
        let killed = Event::Exited {
            status: Exit::Signal(9),
            exec_error: None,
        };
        let mut plain = service(&["x"]);
        run(&mut plain, t0);
        assert_eq!(exits(&mut plain, killed, t0), vec![]);
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
        assert_eq!(s.state(), State::Starting);
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
        assert_eq!(failing.state(), State::Backoff);
        assert_eq!(failing.deadline(), Some(t0 + FIRST_BACKOFF));
        let mut stopped = with_hooks();
        stopped.on(Event::Start, t0);
        assert_eq!(
            stopped.on(Event::Stop, t0),
            vec![Action::CancelHook { hook: Hook::Before }]
        );
        assert_eq!(stopped.state(), State::Stopped);
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
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(2)));
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
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(1)));
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
        assert_eq!(s.deadline(), Some(t1 + Duration::from_secs(1)));
        s.on(Event::Deadline, t1 + Duration::from_secs(1));
        let actions = s.on(failed, t1 + Duration::from_secs(1));
        assert_eq!(
            actions.first(),
            Some(&Action::Signal {
                pid: 100,
                signal: libc::SIGTERM
            })
        );
        exits(&mut s, exit(0), t1);
        assert_eq!(s.on(Event::GroupGone, t1), vec![]);
        assert_eq!(s.state(), State::Backoff);
        assert_eq!(s.restarts(), 1);
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
        assert_eq!(exits(&mut s, exit(0), t0), vec![Action::ReadPidFile]);
        assert_eq!(s.state(), State::Starting);
        assert_eq!(s.pid(), None);
        assert_eq!(s.on(Event::PidFile(None), t0), vec![]);
        let t1 = t0 + PID_FILE_RECHECK;
        assert_eq!(s.on(Event::Deadline, t1), vec![Action::ReadPidFile]);
        assert_eq!(s.on(Event::PidFile(Some((4242, 4242))), t1), vec![]);
        assert_eq!((s.state(), s.pid()), (State::Running, Some(4242)));
        // The daemon's own exit is a crash like any other, even with status 0.
        assert_eq!(exits(&mut s, exit(0), t1 + SHORT_RUN), vec![Action::Spawn]);
    }

    #[test]
    fn a_pid_file_that_never_names_a_process_times_out_into_backoff() {
        let t0 = Instant::now();
        let mut s = service(&["/usr/sbin/daemon"]);
        s.spec.extras_mut().pid_file = Some("/run/d.pid".into());
        s.spec.extras_mut().start_timeout = Duration::from_secs(1);
        run(&mut s, t0);
        exits(&mut s, exit(0), t0);
        assert_eq!(s.on(Event::Deadline, t0 + Duration::from_secs(1)), vec![]);
        assert_eq!(s.state(), State::Backoff);
        let mut failing = service(&["/usr/sbin/daemon"]);
        failing.spec.extras_mut().pid_file = Some("/run/d.pid".into());
        run(&mut failing, t0);
        exits(&mut failing, exit(1), t0);
        assert_eq!(failing.state(), State::Backoff);
    }

    #[test]
    fn removal_ends_removable() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        s.remove(t0);
        assert!(!s.is_removable());
        exits(&mut s, exit(0), t0);
        s.on(Event::GroupGone, t0);
        assert!(s.is_removable());
        let mut idle = service(&["x"]);
        idle.on(Event::Stop, t0);
        idle.remove(t0);
        assert!(idle.is_removable());
    }

    #[test]
    fn shutdown_rests_what_has_no_process_and_nothing_starts_again() {
        let t0 = Instant::now();
        // Backoff: stopped at once, no restart at its deadline.
        let mut s = service(&["x"]);
        run(&mut s, t0);
        exits(&mut s, exit(1), t0);
        assert_eq!(s.on(Event::Shutdown, t0), vec![]);
        assert_eq!((s.state(), s.deadline()), (State::Stopped, None));
        assert_eq!(s.on(Event::Start, t0), vec![]);
        assert_eq!(s.admin_start(t0), vec![]);
        assert_eq!(s.state(), State::Stopped);
        // A before hook under way is called off.
        let mut before = with_hooks();
        before.on(Event::Start, t0);
        assert_eq!(
            before.on(Event::Shutdown, t0),
            vec![Action::CancelHook { hook: Hook::Before }]
        );
        assert_eq!(before.state(), State::Stopped);
        // A running one waits for its Stop (dependency order), but its
        // crash no longer restarts it, even after a long run.
        let mut running = service(&["x"]);
        run(&mut running, t0);
        assert_eq!(running.on(Event::Shutdown, t0), vec![]);
        assert_eq!(running.state(), State::Running);
        assert_eq!(exits(&mut running, exit(0), t0 + SHORT_RUN), vec![]);
        assert_eq!(running.state(), State::Stopped);
        let mut short = service(&["x"]);
        run(&mut short, t0);
        short.on(Event::Shutdown, t0);
        assert_eq!(exits(&mut short, exit(1), t0), vec![]);
        assert_eq!((short.state(), short.deadline()), (State::Stopped, None));
    }

    #[test]
    fn shutdown_calls_off_a_restart_under_way_and_keeps_the_down_flag() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        s.admin_restart(t0);
        s.on(Event::Shutdown, t0);
        exits(&mut s, exit(0), t0);
        assert_eq!(s.on(Event::GroupGone, t0), vec![]);
        assert_eq!(s.state(), State::Stopped);
        let mut down = service(&["x"]);
        admin_stop(&mut down, t0);
        down.on(Event::Shutdown, t0);
        assert!(down.is_admin_down());
        assert_eq!(down.admin_start(t0), vec![]);
        assert!(!down.is_admin_down());
        assert_eq!(down.state(), State::Stopped);
        // A daemon that forks during shutdown is not waited for.
        let mut daemon = service(&["/usr/sbin/daemon"]);
        daemon.spec.extras_mut().pid_file = Some("/run/d.pid".into());
        run(&mut daemon, t0);
        daemon.on(Event::Shutdown, t0);
        assert_eq!(exits(&mut daemon, exit(0), t0), vec![]);
        assert_eq!(daemon.state(), State::Stopped);
    }

    #[test]
    fn on_stopped_adopts_only_when_stopped_and_a_stop_rests() {
        let t0 = Instant::now();
        let adopted = Event::Adopted {
            pid: 9,
            age_ms: 1000,
            restarts: 2,
        };
        let mut s = service(&["x"]);
        assert_eq!(s.on(adopted.clone(), t0), vec![]);
        assert_eq!(
            (s.state(), s.pid(), s.restarts()),
            (State::Running, Some(9), 2)
        );
        assert!(s.is_ready());
        assert_eq!(s.started_at(), t0.checked_sub(Duration::from_secs(1)));
        let mut ended = service(&["x"]);
        ended.spec.restart = Restart::Never;
        run(&mut ended, t0);
        exits(&mut ended, exit(0), t0);
        assert_eq!(ended.on(adopted, t0), vec![]);
        assert_eq!(ended.state(), State::Exited);
        assert_eq!(ended.on(Event::Stop, t0), vec![]);
        assert_eq!(ended.state(), State::Stopped);
        // Waiting for dependencies: released once they allow it.
        let mut waiting = service(&["x"]);
        waiting.set_blocked(Some("waiting for db".into()));
        assert_eq!(waiting.on(Event::Start, t0), vec![]);
        assert!(waiting.is_waiting());
        assert_eq!(waiting.release(t0), vec![]);
        waiting.set_blocked(None);
        assert_eq!(waiting.release(t0), vec![Action::Spawn]);
        assert_eq!(waiting.state(), State::Starting);
    }

    #[test]
    fn on_starting_a_stop_while_the_fork_is_under_way_stops_its_process() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.on(Event::Start, t0);
        assert_eq!(s.on(Event::Stop, t0), vec![]);
        assert_eq!(s.state(), State::Stopped);
        assert_eq!(
            s.on(Event::Spawned(7), t0).first(),
            Some(&Action::Signal {
                pid: 7,
                signal: libc::SIGTERM
            })
        );
        assert_eq!((s.state(), s.pid()), (State::Stopping, Some(7)));
        // A pid file not there yet: asked again at each recheck.
        let mut daemon = service(&["/usr/sbin/daemon"]);
        daemon.spec.extras_mut().pid_file = Some("/run/d.pid".into());
        run(&mut daemon, t0);
        exits(&mut daemon, exit(0), t0);
        assert_eq!(daemon.deadline(), Some(t0 + PID_FILE_RECHECK));
        assert_eq!(daemon.on(Event::Stop, t0), vec![]);
        assert_eq!((daemon.state(), daemon.deadline()), (State::Stopped, None));
    }

    #[test]
    fn on_running_readiness_by_command_times_out() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.spec.extras_mut().readiness = Some(Readiness::Command {
            argv: vec!["/bin/ready".into()],
            interval: Duration::from_millis(100),
        });
        s.spec.extras_mut().start_timeout = Duration::from_secs(1);
        run(&mut s, t0);
        assert!(!s.is_ready());
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(s.deadline(), Some(t1));
        let check = vec![Action::RunHook {
            hook: Hook::Ready,
            env: vec![],
        }];
        assert_eq!(s.on(Event::Deadline, t1), check);
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(1)));
        let failed = Event::HookDone {
            hook: Hook::Ready,
            status: Exit::Code(1),
        };
        assert_eq!(s.on(failed, t1), vec![]);
        assert_eq!(s.deadline(), Some(t1 + Duration::from_millis(100)));
        s.on(Event::Deadline, t1 + Duration::from_millis(100));
        // Timed out with its check still running: called off, then stopped.
        let actions = s.on(Event::Deadline, t0 + Duration::from_secs(1));
        assert_eq!(
            actions.first(),
            Some(&Action::CancelHook { hook: Hook::Ready })
        );
        assert_eq!(s.state(), State::Stopping);
        let mut quick = service(&["x"]);
        quick.spec.extras_mut().readiness = Some(Readiness::Notify);
        run(&mut quick, t0);
        assert_eq!(quick.on(Event::Ready, t0), vec![]);
        assert!(quick.is_ready());
        assert_eq!(quick.deadline(), None);
    }

    #[test]
    fn on_stopping_a_failed_stop_hook_falls_back_to_the_signal() {
        let t0 = Instant::now();
        let mut s = with_hooks();
        s.spec.extras_mut().before = None;
        run(&mut s, t0);
        s.on(Event::Stop, t0);
        assert_eq!(s.awaited_group(), None);
        assert_eq!(s.on(Event::GroupGone, t0), vec![]);
        let failed = Event::HookDone {
            hook: Hook::Stop,
            status: Exit::Code(1),
        };
        assert_eq!(s.on(failed, t0), term_cont(100));
        assert_eq!(s.state(), State::Stopping);
        exits(&mut s, exit(0), t0);
        assert_eq!(s.awaited_group(), Some(100));
        assert_eq!(s.on(Event::GroupGone, t0), vec![]);
        assert_eq!((s.state(), s.pid()), (State::Stopped, None));
    }

    #[test]
    fn a_dependent_stopped_with_its_dependency_waits_for_it() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        s.stop_for_dependency(t0);
        exits(&mut s, exit(0), t0);
        s.set_blocked(Some("waiting for db".into()));
        assert_eq!(s.on(Event::GroupGone, t0), vec![]);
        assert!(s.is_waiting());
        assert_eq!(s.state(), State::Stopped);
        let mut down = service(&["x"]);
        run(&mut down, t0);
        down.want_down(true);
        down.stop_for_dependency(t0);
        exits(&mut down, exit(0), t0);
        down.on(Event::GroupGone, t0);
        assert!(!down.is_waiting());
    }

    #[test]
    fn leftovers_are_stopped_before_the_restart() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        run(&mut s, t0);
        // A long run ends; its group is not empty (no GroupGone comes).
        let t1 = t0 + SHORT_RUN;
        assert_eq!(s.on(exit(0), t1), leftovers(100, libc::SIGTERM));
        assert_eq!((s.state(), s.pid()), (State::Stopping, Some(100)));
        assert_eq!(s.awaited_group(), Some(100));
        assert_eq!(s.restarts(), 1);
        // Looked at again, less and less often, then killed at the timeout.
        let t2 = t1 + GROUP_RECHECK_FIRST;
        assert_eq!(s.deadline(), Some(t2));
        assert_eq!(
            s.on(Event::Deadline, t2),
            vec![Action::CheckGroup { pid: 100 }]
        );
        // The leader's pid, reused by another child, is not this service's.
        assert_eq!(s.on(exit(0), t2), vec![]);
        let kill_at = t1 + Duration::from_secs(2);
        let kill = Action::SignalGroup {
            group: 100,
            signal: libc::SIGKILL,
        };
        let check = Action::CheckGroup { pid: 100 };
        assert_eq!(s.on(Event::Deadline, kill_at), vec![kill, check]);
        // Gone: the restart the exit called for, counted once.
        assert_eq!(s.on(Event::GroupGone, kill_at), vec![Action::Spawn]);
        assert_eq!(s.restarts(), 1);
        assert_eq!(s.awaited_group(), None);
    }

    #[test]
    fn leftovers_keep_the_backoff_of_the_exit() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.spec.stop_signal = libc::SIGINT;
        run(&mut s, t0);
        assert_eq!(s.on(exit(1), t0), leftovers(100, libc::SIGINT));
        // Gone within the backoff: the backoff runs to its end.
        assert_eq!(s.on(Event::GroupGone, t0), vec![]);
        assert_eq!(s.state(), State::Backoff);
        assert_eq!(s.deadline(), Some(t0 + FIRST_BACKOFF));
        // Gone after it: started at once.
        let t1 = t0 + FIRST_BACKOFF;
        assert_eq!(s.on(Event::Deadline, t1), vec![Action::Spawn]);
        spawned(&mut s, t1);
        s.on(exit(1), t1);
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!(s.on(Event::GroupGone, t2), vec![Action::Spawn]);
        assert_eq!(s.restarts(), 2);
    }

    #[test]
    fn an_end_for_good_comes_after_the_leftovers() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.spec.restart = Restart::Never;
        s.spec.critical = true;
        run(&mut s, t0);
        assert_eq!(s.on(exit(3), t0), leftovers(100, libc::SIGTERM));
        assert_eq!(s.state(), State::Stopping);
        let gone = s.on(Event::GroupGone, t0);
        assert_eq!(gone, vec![Action::Critical { code: 3 }]);
        assert_eq!(s.state(), State::Exited);
        // `going stop` meanwhile: stopped, not exited.
        let mut s = service(&["x"]);
        s.spec.restart = Restart::Never;
        run(&mut s, t0);
        s.on(exit(0), t0);
        assert_eq!(admin_stop(&mut s, t0), vec![]);
        assert_eq!(s.on(Event::GroupGone, t0), vec![]);
        assert_eq!(s.state(), State::Stopped);
        // `going start` meanwhile: started once they are gone.
        let mut s = service(&["x"]);
        s.spec.restart = Restart::Never;
        run(&mut s, t0);
        s.on(exit(0), t0);
        assert_eq!(s.admin_start(t0), vec![]);
        assert_eq!(s.on(Event::GroupGone, t0), vec![Action::Spawn]);
    }

    #[test]
    fn a_daemon_leaves_leftovers_in_the_group_it_was_in() {
        let t0 = Instant::now();
        let mut s = service(&["/usr/sbin/daemon"]);
        s.spec.extras_mut().pid_file = Some("/run/d.pid".into());
        run(&mut s, t0);
        // The command's exit is no end: its daemon is the service.
        assert_eq!(s.on(exit(0), t0), vec![Action::ReadPidFile]);
        s.on(Event::PidFile(Some((4242, 100))), t0);
        assert_eq!(s.pid(), Some(4242));
        let killed = Event::Exited {
            status: Exit::Signal(9),
            exec_error: None,
        };
        assert_eq!(s.on(killed, t0), leftovers(100, libc::SIGTERM));
        assert_eq!((s.pid(), s.awaited_group()), (Some(4242), Some(100)));
        // A stop of the daemon itself still goes to its pid.
        assert_eq!(s.on(Event::GroupGone, t0), vec![]);
        let t1 = t0 + FIRST_BACKOFF;
        assert_eq!(s.on(Event::Deadline, t1), vec![Action::Spawn]);
        spawned(&mut s, t1);
        s.on(exit(0), t1);
        s.on(Event::PidFile(Some((4343, 100))), t1);
        assert_eq!(s.on(Event::Stop, t1), term_cont(4343));
    }

    #[test]
    fn kept_leftovers_are_not_waited_for() {
        let t0 = Instant::now();
        let mut s = service(&["x"]);
        s.spec.extras_mut().keep_leftovers = true;
        run(&mut s, t0);
        let t1 = t0 + SHORT_RUN;
        assert_eq!(s.on(exit(0), t1), vec![Action::Spawn]);
        spawned(&mut s, t1);
        assert_eq!(s.on(exit(1), t1), vec![]);
        assert_eq!(s.state(), State::Backoff);
    }
}
