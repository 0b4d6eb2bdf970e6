//! The one interface every part of the loop shares.
//!
//! A part is a concern that owns descriptors, deadlines or child processes
//! of its own (listed in `event_loop.rs`). The loop polls what the parts
//! ask for, wakes them at their deadlines, hands them the children they
//! started, and carries out what they put in the [`Outbox`]. A part never
//! calls another part: it says what happened (an event for a service, a
//! [`Notice`] for everyone) and the loop passes it on.

use crate::service::{Action, Event, Exit};
use crate::spawn::{self, Child};
use crate::supervisor::{Supervisor, Work};
use nix::poll::{PollFd, PollFlags};
use std::os::fd::BorrowedFd;
use std::time::Instant;

/// Every method has a default that does nothing, so that a part spells out
/// only what it owns.
pub trait Part {
    /// Adds the descriptors to poll, each with a token of the part's own.
    fn fds<'a>(&'a self, _set: &mut PollSet<'a>) {}
    /// The nearest moment the part must be woken at.
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// One of its descriptors is ready (`revents` as poll gave them).
    fn ready(&mut self, _token: u32, _revents: PollFlags, _cx: &mut Cx<'_>) {}
    /// Its deadline has come (it may have been woken early: check).
    fn due(&mut self, _cx: &mut Cx<'_>) {}
    /// A child ended: true when it was this part's.
    fn reaped(&mut self, _pid: i32, _status: Exit, _cx: &mut Cx<'_>) -> bool {
        false
    }
    /// A service's action this part carries out: true when it did.
    fn act(&mut self, _name: &str, _action: &Action, _cx: &mut Cx<'_>) -> bool {
        false
    }
    /// A service's process is about to be started (its clone is next).
    fn spawning(&mut self, _name: &str, _cx: &mut Cx<'_>) {}
    /// A process was started for `name`; the part takes what is its own
    /// (output pipes, the ready pipe, its start time).
    fn spawned(&mut self, _started: &mut Started, _cx: &mut Cx<'_>) {}
    /// A signal going received: true when the part took it (a main command
    /// is forwarded every signal it can take).
    fn signal(&mut self, _signal: i32, _cx: &mut Cx<'_>) -> bool {
        false
    }
    /// Something every part may act on.
    fn notice(&mut self, _notice: Notice, _cx: &mut Cx<'_>) {}
    /// True while the part keeps going from exiting after a shutdown.
    fn busy(&mut self, _cx: &mut Cx<'_>) -> bool {
        false
    }
    /// Called once a turn before the loop sleeps.
    fn before_sleep(&mut self, _cx: &mut Cx<'_>) {}
    /// What the part passes to the next going of an upgrade.
    fn hand_over(&mut self, _handover: &mut Handover) {}
    /// What the part takes from the going before it.
    fn take_back(&mut self, _handover: &mut Handover) {}
}

/// What the loop passes to every part: the clock, the services, the
/// spawning context and where the part's answers go.
pub struct Cx<'a> {
    pub now: Instant,
    pub supervisor: &'a mut Supervisor,
    pub spawn: &'a spawn::Context,
    pub out: &'a mut Outbox,
    /// False once `waitpid` has said there is no child left; a part that
    /// makes new ones (the sweep) sets it again.
    pub children_left: &'a mut bool,
    /// The main command's pid while it runs.
    pub main_pid: Option<i32>,
}

impl Cx<'_> {
    /// Feeds one event to a service; what it answers is carried out next.
    pub fn event(&mut self, name: &str, event: Event) {
        let work = self.supervisor.event(name, event, self.now);
        self.out.work.extend(work);
    }
}

/// What the parts ask of the loop; it empties the outbox after each call.
#[derive(Default)]
pub struct Outbox {
    /// Actions of services, for the loop and the parts to carry out.
    pub work: Work,
    pub notices: Vec<Notice>,
    /// Processes started by parts (hooks), for the other parts to see.
    pub started: Vec<Started>,
    /// Whether going has yielded the CPU this turn ([`Outbox::step_aside`]).
    pub stepped_aside: bool,
}

impl Outbox {
    /// Gives up the CPU once a turn, right after starting a process or
    /// forwarding it a signal: that process now has the work to do, and
    /// the scheduler often puts it on going's own core, where it would wait
    /// for going's bookkeeping (BENCH.md: about 0.1 ms off a respawn, 40 µs
    /// off a forwarded signal). Once a turn, so that a mass restart does
    /// not wait on a thousand children in turn.
    pub fn step_aside(&mut self) {
        if !self.stepped_aside {
            self.stepped_aside = true;
            nix::sched::sched_yield().ok();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.work.is_empty() && self.notices.is_empty() && self.started.is_empty()
    }
}

/// Said to every part at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Read the service directory again (SIGHUP, `going reload`).
    Rescan,
    /// Exec going again in place (SIGUSR2, `going upgrade`).
    Upgrade,
    /// Stop everything and exit (the main command ended, a critical
    /// service failed for good).
    Shutdown,
    /// The shutdown has begun: nothing starts any more.
    ShuttingDown,
    /// A second request to stop: kill what is left.
    KillAll,
    /// going exits after this turn.
    Exiting,
    /// The wall clock was set (a step, a resume): what waits for a wall
    /// time computes its deadline again.
    ClockChanged,
    /// A service's next version (`apply-on`) is due: read its file again.
    VersionsDue,
}

/// A process just started, for the parts to take their share of.
pub struct Started {
    pub name: String,
    /// A hook's process, not the service's own.
    pub hook: bool,
    pub child: Child,
}

/// What one going hands the next across an upgrade's exec.
#[derive(Default)]
pub struct Handover {
    /// The main command, and its start time.
    pub main: Option<(i32, u64)>,
    /// Output pipes left open across the exec.
    pub pipes: Vec<crate::state::Pipe>,
}

/// The descriptors of one poll, each tagged with its part and token.
#[derive(Default)]
pub struct PollSet<'a> {
    fds: Vec<PollFd<'a>>,
    tags: Vec<(usize, u32)>,
    part: usize,
}

impl<'a> PollSet<'a> {
    /// Polls `fd` for `events`; `token` comes back to the part.
    pub fn add(&mut self, fd: BorrowedFd<'a>, events: PollFlags, token: u32) {
        self.fds.push(PollFd::new(fd, events));
        self.tags.push((self.part, token));
    }

    /// Polls `fd` for input.
    pub fn read(&mut self, fd: BorrowedFd<'a>, token: u32) {
        self.add(fd, PollFlags::POLLIN, token);
    }

    /// What follows is added for the part `index`.
    pub fn for_part(&mut self, index: usize) {
        self.part = index;
    }

    pub fn fds_mut(&mut self) -> &mut [PollFd<'a>] {
        &mut self.fds
    }

    /// Adds (part, token, revents) of each ready descriptor to `out`.
    pub fn fired(&self, out: &mut Vec<(usize, u32, PollFlags)>) {
        for (fd, &(part, token)) in self.fds.iter().zip(&self.tags) {
            if let Some(revents) = fd.revents().filter(|r| !r.is_empty()) {
                out.push((part, token, revents));
            }
        }
    }
}
