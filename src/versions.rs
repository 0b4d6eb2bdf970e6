//! Versions (`apply-on`, `[[version]]`) as a part of the loop: a deadline
//! at the next switch of any service, which then has the directory read
//! those files again ([`Notice::VersionsDue`]), so that a switch restarts
//! a service exactly as a changed file does.
//!
//! Switches are wall-clock times, deadlines are monotonic: each is turned
//! into an `Instant` before the loop sleeps, from the definitions the
//! services run, so a clock step ([`Notice::ClockChanged`]) moves it.

use crate::part::{Cx, Notice, Part};
use crate::schedules::{deadline, unix_seconds};
use std::time::{Instant, SystemTime};

#[derive(Default)]
pub struct Versions {
    /// The nearest switch: when (monotonic) and which (UNIX time).
    next: Option<(Instant, i64)>,
    /// The last switch asked for: a file that then did not read keeps an
    /// old `next` that must not wake the loop again and again.
    done_up_to: Option<i64>,
}

impl Part for Versions {
    fn deadline(&self) -> Option<Instant> {
        self.next.map(|(at, _)| at)
    }

    fn before_sleep(&mut self, cx: &mut Cx<'_>) {
        let done = self.done_up_to;
        let nearest = cx
            .supervisor
            .services()
            .filter_map(|s| s.spec.extras().versions?.next)
            .filter(|&at| done.is_none_or(|done| at > done))
            .min();
        self.next = nearest.map(|at| (deadline(at, cx.now, SystemTime::now()), at));
    }

    fn due(&mut self, cx: &mut Cx<'_>) {
        let Some((_, at)) = self.next else {
            return;
        };
        // Woken by the monotonic clock: the wall clock decides.
        if unix_seconds(SystemTime::now()) < at {
            return;
        }
        self.done_up_to = Some(at);
        self.next = None;
        cx.out.notices.push(Notice::VersionsDue);
    }

    fn notice(&mut self, notice: Notice, _cx: &mut Cx<'_>) {
        if notice == Notice::ClockChanged {
            // The clock may have gone back before a switch already made.
            self.done_up_to = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_wall_time_becomes_an_instant() {
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_500);
        assert_eq!(
            deadline(1_002, now, wall),
            now + Duration::from_millis(1500)
        );
        assert_eq!(deadline(900, now, wall), now);
        assert_eq!(deadline(-5, now, wall), now);
    }
}
