//! How services say they are ready: the read end of each `ready-fd` pipe
//! (a newline means ready), the `NOTIFY_SOCKET` datagram socket
//! (`READY=1`, `notify.rs`), and the pid file of a daemon that forks
//! (`pid-file`), read when its service asks.

use crate::notify::NotifySocket;
use crate::part::{Cx, Part, Started};
use crate::service::{Action, Event};
use std::os::fd::{AsFd, OwnedFd};

pub struct Readiness {
    pipes: Vec<ReadyPipe>,
    notify: Option<NotifySocket>,
    /// Processes pid files named that did not lead their own process group
    /// yet, by service, and how many reads ago: taken once they do, or
    /// after [`LEADER_READS`] reads. A launcher that writes its child's pid
    /// before the child's setsid() (Debian's nginx does) would otherwise
    /// have the daemon's leftovers looked for in the launcher's group.
    not_leaders: Vec<(String, i32, u32)>,
}

/// The read end of a service's `ready-fd`.
struct ReadyPipe {
    service: String,
    pid: i32,
    fd: OwnedFd,
    /// Said ready, or closed: dropped before the next poll (tokens are
    /// indexes, which must not move within a turn).
    done: bool,
}

/// How many reads of a pid file (one a recheck, 50 ms apart) wait for the
/// process it names to lead a group of its own before it is taken as is.
const LEADER_READS: u32 = 10;

/// The poll token of the notify socket; a pipe's is its index.
const NOTIFY: u32 = u32::MAX;

impl Default for Readiness {
    /// Binds the notify socket; its address is what services are given.
    fn default() -> Readiness {
        let notify = NotifySocket::bind()
            .inspect_err(|why| {
                log::warn!("{why}; notify = true services cannot say they are ready")
            })
            .ok();
        Readiness {
            pipes: Vec::new(),
            notify,
            not_leaders: Vec::new(),
        }
    }
}

impl Readiness {
    /// `NOTIFY_SOCKET` for the services.
    pub fn notify_address(&self) -> Option<String> {
        self.notify.as_ref().map(|n| n.address.clone())
    }

    /// A `ready-fd` pipe has data or is closed: a newline means ready.
    /// True when the pipe is done with.
    fn pipe_readable(pipe: &ReadyPipe, cx: &mut Cx<'_>) -> bool {
        let mut buffer = [0u8; 64];
        let n = match nix::unistd::read(pipe.fd.as_fd(), &mut buffer) {
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return false,
            Err(_) => 0,
            Ok(n) => n,
        };
        let says_ready = buffer.get(..n).is_some_and(|b| b.contains(&b'\n'));
        if says_ready {
            ready(&pipe.service, pipe.pid, cx);
        }
        // Data but not a newline yet: keep listening.
        says_ready || n == 0
    }

    /// Datagrams on the notify socket: `READY=1` from a service's process
    /// or one of its process group.
    fn notified(&self, cx: &mut Cx<'_>) {
        let Some(notify) = &self.notify else { return };
        for sender in notify.ready_senders() {
            let sender_pid = nix::unistd::Pid::from_raw(sender);
            let group = nix::unistd::getpgid(Some(sender_pid)).map_or(-1, |g| g.as_raw());
            let service = cx
                .supervisor
                .services()
                .find(|s| s.pid().is_some_and(|pid| pid == sender || pid == group))
                .and_then(|s| Some((s.name().to_string(), s.pid()?)));
            if let Some((name, pid)) = service {
                ready(&name, pid, cx);
            }
        }
    }
}

/// `name` said it is ready, if `pid` is still its process.
fn ready(name: &str, pid: i32, cx: &mut Cx<'_>) {
    let service = cx.supervisor.get(name);
    if service.is_some_and(|s| s.pid() == Some(pid)) {
        cx.event(name, Event::Ready);
    }
}

/// The live process a service's pid file names, if it does yet, and its
/// process group (whose leftovers its end stops).
fn read_pid_file(name: &str, cx: &Cx<'_>) -> Option<(i32, i32)> {
    let service = cx.supervisor.get(name)?;
    let path = service.spec.extras().pid_file.as_ref()?;
    let mut text = String::new();
    let file = std::fs::File::open(path).ok()?;
    // A pid is a few digits; a huge file is not a pid file.
    std::io::Read::read_to_string(&mut std::io::Read::take(file, 64), &mut text).ok()?;
    let pid: i32 = text.trim().parse().ok().filter(|&pid| pid > 1)?;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None);
    matches!(alive, Ok(()) | Err(nix::errno::Errno::EPERM)).then_some(())?;
    let group = crate::procfs::stat(pid).map_or(pid, |s| s.group);
    Some((pid, if group > 1 { group } else { pid }))
}

impl Part for Readiness {
    fn fds<'a>(&'a self, set: &mut crate::part::PollSet<'a>) {
        for (index, pipe) in self.pipes.iter().enumerate() {
            set.read(pipe.fd.as_fd(), index as u32);
        }
        if let Some(notify) = &self.notify {
            set.read(notify.fd.as_fd(), NOTIFY);
        }
    }

    fn ready(&mut self, token: u32, _revents: nix::poll::PollFlags, cx: &mut Cx<'_>) {
        if token == NOTIFY {
            return self.notified(cx);
        }
        if let Some(pipe) = self.pipes.get_mut(token as usize) {
            pipe.done = Readiness::pipe_readable(pipe, cx);
        }
    }

    fn before_sleep(&mut self, _cx: &mut Cx<'_>) {
        self.pipes.retain(|pipe| !pipe.done);
    }

    fn spawned(&mut self, started: &mut Started, _cx: &mut Cx<'_>) {
        if started.hook {
            return;
        }
        if let Some(fd) = started.child.ready_pipe.take() {
            self.pipes.push(ReadyPipe {
                service: started.name.clone(),
                pid: started.child.pid,
                fd,
                done: false,
            });
        }
    }

    fn act(&mut self, name: &str, action: &Action, cx: &mut Cx<'_>) -> bool {
        if *action != Action::ReadPidFile {
            return false;
        }
        let mut found = read_pid_file(name, cx);
        let seen = self.not_leaders.iter().position(|(n, ..)| n == name);
        let before = seen.map(|at| self.not_leaders.swap_remove(at));
        if let Some((pid, group)) = found
            && group != pid
        {
            let reads = match before {
                Some((_, earlier, reads)) if earlier == pid => reads + 1,
                _ => 1,
            };
            if reads < LEADER_READS {
                // Read again at the next recheck: it may be about to call setsid().
                self.not_leaders.push((name.to_string(), pid, reads));
                found = None;
            }
        }
        cx.event(name, Event::PidFile(found));
        true
    }
}
