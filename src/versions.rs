//! Versions (`apply-on`, `[[version]]`) as a part of the loop: a deadline
//! at the next switch of any service, which then has the directory read
//! those files again ([`Notice::VersionsDue`]), so that a switch restarts
//! a service exactly as a changed file does.
//!
//! Switches are wall-clock times, deadlines are monotonic: each is turned
//! into an `Instant` before the loop sleeps, from the definitions the
//! services run, so a clock step ([`Notice::ClockChanged`]) moves it.

use crate::part::{Cx, Notice, Part};
use std::time::{Duration, Instant, SystemTime};

#[derive(Default)]
pub struct Versions {
    /// The nearest switch: when (monotonic) and which (UNIX time).
    next: Option<(Instant, i64)>,
    /// The last switch asked for: a file that then did not read keeps an
    /// old `next` that must not wake the loop again and again.
    done_up_to: Option<i64>,
}

/// The wall clock as a UNIX time with its fraction.
fn wall_now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// When the monotonic clock will reach the UNIX time `at`, by the wall
/// clock now.
fn instant_of(at: i64, now: Instant, wall: Duration) -> Instant {
    let at = Duration::from_secs(u64::try_from(at).unwrap_or(0));
    now.checked_add(at.saturating_sub(wall)).unwrap_or(now)
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
        self.next = nearest.map(|at| (instant_of(at, cx.now, wall_now()), at));
    }

    fn due(&mut self, cx: &mut Cx<'_>) {
        let Some((_, at)) = self.next else {
            return;
        };
        // Woken by the monotonic clock: the wall clock decides.
        if (wall_now().as_secs() as i64) < at {
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

    #[test]
    fn a_wall_time_becomes_an_instant() {
        let now = Instant::now();
        let wall = Duration::from_millis(1_000_500);
        assert_eq!(
            instant_of(1_002, now, wall),
            now + Duration::from_millis(1500)
        );
        assert_eq!(instant_of(900, now, wall), now);
        assert_eq!(instant_of(-5, now, wall), now);
    }
}
