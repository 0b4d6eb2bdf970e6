//! Health by activity (`health-check = { folder, inactive-time }`) as a
//! part of the loop: one inotify descriptor watches the folder of every
//! running service that has such a check, and each service has a deadline
//! `inactive-time` after its start or the last change in its folder. When
//! the deadline passes, the service hears `Inactive` and restarts as for a
//! failed health check. No polling: an idle folder costs one deadline.
//!
//! A folder that cannot be watched (missing, not a directory, no inotify
//! watch left) is said once, and that run of the service goes unchecked:
//! restarting it would not make the folder appear. Its next start tries
//! again. Only the folder itself is watched, not its subfolders.

use crate::config::ActivityCheck;
use crate::part::{Cx, Notice, Part, PollSet, Started};
use crate::service::{Event, State};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::os::fd::AsFd;
use std::time::Instant;

/// Created, written (each write, and its close), renamed in or out, or
/// touched: activity.
const CHANGES: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_ONLYDIR);

#[derive(Default)]
pub struct Activity {
    /// Made when the first folder is watched.
    inotify: Option<Inotify>,
    watched: Vec<Watched>,
}

struct Watched {
    name: String,
    check: ActivityCheck,
    /// Shared by the services that watch one folder.
    wd: Option<WatchDescriptor>,
    /// When the service is restarted unless its folder changes first.
    until: Option<Instant>,
    /// That the folder cannot be watched has been said.
    said: bool,
}

impl Activity {
    /// A run of `name` began: its folder is watched, its deadline set.
    fn begin(&mut self, name: &str, now: Instant, cx: &Cx<'_>) {
        let extras = cx.supervisor.get(name).map(|s| s.spec.extras());
        let Some(check) = extras.and_then(|e| e.activity.clone()) else {
            return self.forget(name);
        };
        let at = self.watched.iter().position(|w| w.name == name);
        let at = at.unwrap_or_else(|| {
            self.watched.push(Watched {
                name: name.to_string(),
                check: check.clone(),
                wd: None,
                until: None,
                said: false,
            });
            self.watched.len() - 1
        });
        if let Some(old) = self.watched.get(at)
            && old.check.folder != check.folder
        {
            self.unwatch(at);
        }
        let watch = self.watch(&check).map_err(|errno| errno.desc());
        let Some(watched) = self.watched.get_mut(at) else {
            return;
        };
        watched.check = check;
        match watch {
            Ok(wd) => {
                watched.wd = Some(wd);
                watched.until = Some(now + watched.check.inactive);
                watched.said = false;
            }
            Err(why) => {
                watched.until = None;
                if !std::mem::replace(&mut watched.said, true) {
                    let folder = watched.check.folder.display();
                    log::warn!(target: name, "cannot watch {folder}: {why}; no activity check until the next start");
                }
            }
        }
    }

    fn watch(&mut self, check: &ActivityCheck) -> nix::Result<WatchDescriptor> {
        let inotify = match self.inotify.take() {
            Some(inotify) => inotify,
            None => Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?,
        };
        self.inotify
            .insert(inotify)
            .add_watch(&check.folder, CHANGES)
    }

    fn forget(&mut self, name: &str) {
        if let Some(at) = self.watched.iter().position(|w| w.name == name) {
            self.unwatch(at);
            self.watched.swap_remove(at);
        }
    }

    /// Drops the watch of entry `at`, and the kernel's unless another
    /// service watches the same folder.
    fn unwatch(&mut self, at: usize) {
        let Some(wd) = self.watched.get_mut(at).and_then(|w| w.wd.take()) else {
            return;
        };
        let shared = self.watched.iter().any(|w| w.wd == Some(wd));
        if let (false, Some(inotify)) = (shared, &self.inotify) {
            let _ = inotify.rm_watch(wd);
        }
    }
}

impl Part for Activity {
    fn fds<'a>(&'a self, set: &mut PollSet<'a>) {
        if let Some(inotify) = &self.inotify {
            set.read(inotify.as_fd(), 0);
        }
    }

    fn ready(&mut self, _token: u32, _revents: nix::poll::PollFlags, cx: &mut Cx<'_>) {
        let Some(inotify) = &self.inotify else {
            return;
        };
        loop {
            let events = match inotify.read_events() {
                Ok(events) => events,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(errno) => {
                    log::warn!("reading the activity watch: {}", errno.desc());
                    break;
                }
            };
            for event in events {
                let overflow = event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW);
                let gone = event.mask.contains(AddWatchFlags::IN_IGNORED);
                for watched in &mut self.watched {
                    if !overflow && watched.wd != Some(event.wd) {
                        continue;
                    }
                    if gone {
                        watched.wd = None;
                        watched.until = None;
                        let folder = watched.check.folder.display();
                        log::warn!(target: &watched.name, "{folder} is gone; no activity check until the next start");
                    } else if watched.wd.is_some() {
                        watched.until = Some(cx.now + watched.check.inactive);
                    }
                }
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.watched.iter().filter_map(|w| w.until).min()
    }

    fn due(&mut self, cx: &mut Cx<'_>) {
        let mut due = Vec::new();
        for watched in &mut self.watched {
            if watched.until.is_none_or(|at| at > cx.now) {
                continue;
            }
            watched.until = None;
            let service = cx.supervisor.get(&watched.name);
            let running = service.is_some_and(|s| s.state() == State::Running);
            due.push((watched.name.clone(), running));
        }
        for (name, running) in due {
            if running {
                // Its next start watches again.
                cx.event(&name, Event::Inactive);
            } else {
                self.forget(&name);
            }
        }
    }

    fn spawned(&mut self, started: &mut Started, cx: &mut Cx<'_>) {
        if !started.hook {
            self.begin(&started.name, cx.now, cx);
        }
    }

    fn notice(&mut self, notice: Notice, cx: &mut Cx<'_>) {
        if notice != Notice::Rescan {
            return;
        }
        // What no start told: processes adopted from an earlier going,
        // and services gone or stopped.
        let names: Vec<String> = self.watched.iter().map(|w| w.name.clone()).collect();
        for name in names {
            if cx.supervisor.get(&name).is_none_or(|s| !s.is_active()) {
                self.forget(&name);
            }
        }
        let adopted: Vec<String> = cx
            .supervisor
            .services()
            .filter(|s| s.spec.extras().activity.is_some() && s.state() == State::Running)
            .filter(|s| !self.watched.iter().any(|w| w.name == s.name()))
            .map(|s| s.name().to_string())
            .collect();
        for name in adopted {
            self.begin(&name, cx.now, cx);
        }
    }
}
