//! Schedules as a part of the loop: for each service with a `[schedule]`,
//! whether one of its windows is on and when that changes next. An edge is
//! a wall-clock time (`calendar.rs`) turned into an `Instant` deadline, so
//! an idle going wakes once an edge and never between. A CLOCK_REALTIME
//! timerfd with TFD_TIMER_CANCEL_ON_SET is armed at the nearest edge (far
//! ahead without one): it wakes going at the edge to the nanosecond, where
//! poll's timeout is rounded up to the millisecond, and when the wall
//! clock is set (an NTP step, `date -s`, a resume) its read fails with
//! ECANCELED, and every edge is computed again. The services' own deadlines
//! (backoff, stop timeouts) are monotonic and never move.

use crate::config::calendar::{self, Schedule};
use crate::part::{Cx, Notice, Part, PollSet};
use crate::service::{Action, Event};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::os::fd::AsFd;
use std::time::{Duration, Instant, SystemTime};

/// Where the clock timer is armed without an edge: far enough never to
/// expire (year 2242); it is there only to be cancelled.
const FAR_FUTURE: i64 = 1 << 33;

#[derive(Default)]
pub struct Schedules {
    /// Told when the wall clock is set; `None` if it could not be made.
    clock: Option<TimerFd>,
    /// Sorted by name.
    followed: Vec<Followed>,
}

/// One scheduled service.
struct Followed {
    name: String,
    schedule: Schedule,
    /// The next edge as a UNIX time, and as a deadline.
    edge: Option<(i64, Instant)>,
}

impl Schedules {
    pub fn new() -> Schedules {
        let flags = TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK;
        let clock = TimerFd::new(ClockId::CLOCK_REALTIME, flags);
        if let Err(errno) = &clock {
            let why = errno.desc();
            log::warn!("no timerfd ({why}): schedules will not follow a clock that is set");
        }
        let schedules = Schedules {
            clock: clock.ok(),
            followed: Vec::new(),
        };
        schedules.arm();
        schedules
    }

    fn arm(&self) {
        let Some(clock) = &self.clock else {
            return;
        };
        let edges = self.followed.iter().filter_map(|f| f.edge);
        let nearest = edges.map(|(at, _)| at).min();
        let at = Expiration::OneShot(TimeSpec::new(nearest.unwrap_or(FAR_FUTURE), 0));
        let flags =
            TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET;
        if let Err(errno) = clock.set(at, flags) {
            log::warn!("cannot arm the clock timer: {}", errno.desc());
        }
    }

    /// Starts following `name`, and says at once whether a window is on.
    fn follow(&mut self, name: &str, schedule: Schedule, cx: &mut Cx<'_>) {
        let mut followed = Followed {
            name: name.to_string(),
            schedule,
            edge: None,
        };
        cx.event(name, followed.update(cx.now, SystemTime::now()));
        self.followed.retain(|f| f.name != name);
        let at = self.followed.partition_point(|f| f.name.as_str() < name);
        self.followed.insert(at, followed);
        self.arm();
    }

    /// Tells each service whose edge the wall clock has reached; with
    /// `all`, every edge again, from the wall clock now: each service
    /// hears whether its window is on (a repeat changes nothing).
    fn edges(&mut self, all: bool, cx: &mut Cx<'_>) {
        let (now, wall) = (cx.now, SystemTime::now());
        let unix = unix_seconds(wall);
        let reached = |f: &Followed| f.edge.is_some_and(|(at, when)| unix >= at || when <= now);
        if !all && !self.followed.iter().any(reached) {
            return;
        }
        // Services gone, or whose schedule changed without asking again
        // (their new definition asks when it starts).
        self.followed.retain(|f| {
            cx.supervisor
                .get(&f.name)
                .is_some_and(|s| s.spec.extras().schedule == Some(f.schedule))
        });
        for followed in &mut self.followed {
            match followed.edge {
                _ if all => {}
                Some((at, _)) if unix >= at => {}
                // Woken before the wall clock got there: wait for the rest.
                Some((at, when)) if when <= now => {
                    followed.edge = Some((at, deadline(at, now, wall)));
                    continue;
                }
                _ => continue,
            }
            let event = followed.update(now, wall);
            cx.event(&followed.name, event);
        }
        self.arm();
    }
}

impl Followed {
    /// Whether a window is on at `wall`, and when that changes next.
    fn update(&mut self, now: Instant, wall: SystemTime) -> Event {
        let unix = unix_seconds(wall);
        let inside = calendar::local_time(unix).is_none_or(|t| self.schedule.in_window(t));
        self.edge = calendar::next_edge_unix(&self.schedule, unix)
            .map(|(_, at)| (at, deadline(at, now, wall)));
        if inside {
            Event::WindowOpened
        } else {
            Event::WindowClosed
        }
    }
}

/// Whole seconds since 1970 of a wall-clock time (0 before 1970).
pub fn unix_seconds(wall: SystemTime) -> i64 {
    let since = wall.duration_since(SystemTime::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The `Instant` at which the wall clock, now `wall` at `now`, shows the
/// UNIX time `at` (at once if it does already).
pub fn deadline(at: i64, now: Instant, wall: SystemTime) -> Instant {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at).unwrap_or(0));
    let ahead = at.duration_since(wall).unwrap_or(Duration::ZERO);
    now.checked_add(ahead).unwrap_or(now)
}

impl Part for Schedules {
    fn fds<'a>(&'a self, set: &mut PollSet<'a>) {
        if let Some(clock) = &self.clock {
            set.read(clock.as_fd(), 0);
        }
    }

    /// The clock timer is readable: the clock was set (or, in 2242, the
    /// timer expired).
    fn ready(&mut self, _token: u32, _revents: nix::poll::PollFlags, cx: &mut Cx<'_>) {
        let Some(clock) = &self.clock else {
            return;
        };
        let mut buffer = [0u8; 8];
        match nix::unistd::read(clock, &mut buffer) {
            Err(nix::errno::Errno::ECANCELED) => {
                log::info!("the wall clock was set, following it");
                calendar::reload_zone();
                self.edges(true, cx);
                cx.out.notices.push(Notice::ClockChanged);
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return,
            Err(errno) => log::warn!("reading the clock timer: {}", errno.desc()),
            // An edge has come.
            Ok(_) => self.edges(false, cx),
        }
        self.arm();
    }

    fn deadline(&self) -> Option<Instant> {
        let edges = self.followed.iter().filter_map(|f| f.edge);
        edges.map(|(_, at)| at).min()
    }

    fn due(&mut self, cx: &mut Cx<'_>) {
        self.edges(false, cx);
    }

    fn act(&mut self, name: &str, action: &Action, cx: &mut Cx<'_>) -> bool {
        let Action::Window { schedule } = action else {
            return false;
        };
        self.follow(name, *schedule, cx);
        true
    }

    fn notice(&mut self, notice: Notice, cx: &mut Cx<'_>) {
        if notice == Notice::Rescan {
            // /etc/localtime may have been replaced: SIGHUP says so.
            calendar::reload_zone();
            self.edges(true, cx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_become_deadlines_on_the_monotonic_clock() {
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_500);
        // 9.5 s of wall clock ahead is 9.5 s of Instant ahead.
        assert_eq!(deadline(1010, now, wall), now + Duration::from_millis(9500));
        // An edge already passed is due at once.
        assert_eq!(deadline(999, now, wall), now);
        assert_eq!(unix_seconds(wall), 1000);
        assert_eq!(unix_seconds(SystemTime::UNIX_EPOCH), 0);
    }
}
