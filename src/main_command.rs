//! The container's job, tini's whole program: the main command of
//! `going -- CMD` (started, forwarded every signal it can take, reaped,
//! its status going's own), and the sweep of what is left once everything
//! else has stopped: as PID 1 every process of the namespace, as a
//! subreaper with a main command every descendant.

use crate::part::{Cx, Handover, Notice, Part};
use crate::service::Exit;
use crate::signals;
use crate::spawn;
use crate::util::format_duration;
use crate::util::signal_group;
use std::ffi::OsString;
use std::time::{Duration, Instant};

/// The main command part: the command, if there is one, and the sweep.
pub struct MainCommand {
    command: Option<Main>,
    /// `-t`: from SIGTERM to SIGKILL, for the main command and the sweep.
    grace: Duration,
    is_pid1: bool,
    sweep: Option<Sweep>,
}

/// The command itself.
#[derive(Default)]
pub struct Main {
    pub argv: Vec<OsString>,
    /// `-g`: signals go to its whole process group.
    pub forward_to_group: bool,
    /// `-e`: exit statuses that count as 0.
    pub success_codes: Vec<i32>,
    pub pid: Option<i32>,
    /// How it ended, once reaped.
    pub status: Option<Exit>,
    /// (step, errno) of a failed exec: reported when it is reaped, and
    /// going's exit status then.
    failed_exec: Option<(u32, i32)>,
    /// When a SIGTERM/SIGINT it got turns into SIGKILL.
    pub kill_at: Option<Instant>,
}

/// The last step of a shutdown: every process left gets SIGTERM, then
/// SIGKILL.
struct Sweep {
    kill_at: Option<Instant>,
    /// SIGKILL has been sent once (it is sent again while any is left).
    killed: bool,
    give_up_at: Instant,
}

/// How long going waits after the first SIGKILL before it exits anyway
/// (a process in uninterruptible sleep must not keep the container up).
const SWEEP_KILL_WAIT: Duration = Duration::from_secs(1);

/// Between two SIGKILLs of the sweep: a process forked just as the last one
/// went out is orphaned to going and caught by the next.
const SWEEP_KILL_AGAIN: Duration = Duration::from_millis(100);

impl Main {
    pub fn new(argv: Vec<OsString>, forward_to_group: bool, success_codes: Vec<i32>) -> Main {
        Main {
            argv,
            forward_to_group,
            success_codes,
            ..Main::default()
        }
    }

    pub fn is_running(&self) -> bool {
        self.pid.is_some() && self.status.is_none()
    }

    /// The status going exits with: the command's exit status, 128+N when
    /// killed by signal N, 127/126 when it could not be executed (not
    /// found, or found but not executable, as shells do), and 0 for any
    /// status given with `-e`.
    pub fn exit_code(&self) -> i32 {
        let code = match (self.status, self.failed_exec) {
            (None, _) => 1,
            (Some(_), Some((_, libc::ENOENT | libc::ENOTDIR))) => 127,
            (Some(_), Some(_)) => 126,
            (Some(status), None) => status.code(),
        };
        if self.success_codes.contains(&code) {
            0
        } else {
            code
        }
    }

    fn program(&self) -> String {
        let first = self.argv.first().map(|a| a.to_string_lossy());
        first.unwrap_or_default().into_owned()
    }
}

impl MainCommand {
    pub fn new(command: Option<Main>, grace: Duration) -> MainCommand {
        MainCommand {
            command,
            grace,
            is_pid1: std::process::id() == 1,
            sweep: None,
        }
    }

    /// The main command's pid while it runs.
    pub fn running_pid(&self) -> Option<i32> {
        self.command.as_ref().filter(|m| m.is_running())?.pid
    }

    /// Spawns the main command, if there is one and it was not taken over
    /// from the going before an upgrade; Err(exit status) when it cannot
    /// even be forked.
    pub fn start(&mut self, context: &spawn::Context) -> Result<(), i32> {
        let Some(main) = self.command.as_mut().filter(|m| m.pid.is_none()) else {
            return Ok(());
        };
        match spawn::spawn_main(&main.argv, context) {
            Ok(child) => {
                main.pid = Some(child.pid);
                main.failed_exec = child.exec_failure;
                let (program, pid) = (main.program(), child.pid);
                log::info!("main command {program:?} started, pid {pid}");
                Ok(())
            }
            Err(why) => {
                report_main_failure(&why);
                Err(1)
            }
        }
    }

    /// going's exit status when no critical service decided it.
    pub fn exit_code(&self) -> i32 {
        self.command.as_ref().map_or(0, Main::exit_code)
    }

    /// Passes a signal on to the main command; true if it was running.
    fn forward(&mut self, signal: i32, cx: &mut Cx<'_>) -> bool {
        let Some(main) = self.command.as_mut().filter(|m| m.is_running()) else {
            return false;
        };
        let Some(pid) = main.pid else { return false };
        if main.forward_to_group {
            signal_group(pid, signal);
        } else if let Ok(signal) = nix::sys::signal::Signal::try_from(signal) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
        if (signal == libc::SIGTERM || signal == libc::SIGINT) && main.kill_at.is_none() {
            main.kill_at = Some(cx.now + self.grace);
        }
        cx.out.step_aside();
        true
    }

    /// The main command was reaped: record how, then stop everything.
    fn ended(&mut self, status: Exit, cx: &mut Cx<'_>) {
        let Some(main) = &mut self.command else {
            return;
        };
        main.status = Some(status);
        let program = main.program();
        let pid = main.pid.unwrap_or(0);
        if let Some((step, errno)) = main.failed_exec {
            let why = spawn::describe_main_failure(step, errno, &program);
            report_main_failure(&why);
        } else {
            let how = match status {
                Exit::Code(code) => format!("exited with status {code}"),
                Exit::Signal(signal) => format!("killed by signal {}", signals::name(signal)),
                Exit::Unknown => "ended".to_string(),
            };
            log::info!("main command {program:?} {how}, pid {pid}");
        }
        // The terminal goes back to going's group; SIGTTOU is blocked in going.
        let stdin = std::io::stdin();
        if nix::unistd::isatty(&stdin).unwrap_or(false) {
            let _ = nix::unistd::tcsetpgrp(&stdin, nix::unistd::getpgrp());
        }
        cx.out.notices.push(Notice::Shutdown);
    }

    /// going ends only when nothing it would leave behind is left, or the
    /// sweep has given up on what SIGKILL could not end. As a subreaper
    /// every orphan of its tree is reparented to going, so "no child left"
    /// (ECHILD) means no descendant left, as it means an empty namespace
    /// for a PID 1.
    fn sweep_done(&mut self, cx: &mut Cx<'_>) -> bool {
        if !self.is_pid1 && self.command.is_none() {
            return true;
        }
        match &self.sweep {
            None => {
                let Some(left) = self.signal_leftovers(nix::sys::signal::SIGTERM) else {
                    return true;
                };
                log::info!(
                    "sending TERM to every process left{left}, KILL in {}",
                    format_duration(self.grace)
                );
                self.sweep = Some(Sweep {
                    kill_at: Some(cx.now + self.grace),
                    killed: false,
                    give_up_at: cx.now + self.grace + SWEEP_KILL_WAIT,
                });
                *cx.children_left = true;
                false
            }
            Some(sweep) => !*cx.children_left || cx.now >= sweep.give_up_at,
        }
    }

    /// Sends `signal` to what going would leave behind: as PID 1 every
    /// other process of the namespace, else every descendant. `None` when
    /// there is none; else how many, as words for the log (a PID 1 cannot
    /// count them).
    fn signal_leftovers(&self, signal: nix::sys::signal::Signal) -> Option<String> {
        use nix::sys::signal::kill;
        use nix::sys::wait::{Id, WaitPidFlag, waitid};
        use nix::unistd::Pid;
        if self.is_pid1 {
            // ESRCH: nothing else is left.
            return kill(Pid::from_raw(-1), signal).is_ok().then(String::new);
        }
        // No child at all, the usual case, costs no scan of /proc.
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        if waitid(Id::All, flags) == Err(nix::errno::Errno::ECHILD) {
            return None;
        }
        let left = crate::procfs::descendants(std::process::id() as i32);
        for &pid in &left {
            let _ = kill(Pid::from_raw(pid), signal);
        }
        let count = crate::util::counted(left.len() as u64, "descendant");
        (!left.is_empty()).then(|| format!(" ({count})"))
    }
}

impl Part for MainCommand {
    fn deadline(&self) -> Option<Instant> {
        let main = self.command.as_ref().filter(|m| m.is_running());
        let sweep = self.sweep.as_ref();
        let sweep = sweep.map(|s| s.kill_at.unwrap_or(s.give_up_at));
        main.and_then(|m| m.kill_at).into_iter().chain(sweep).min()
    }

    fn due(&mut self, cx: &mut Cx<'_>) {
        let grace = format_duration(self.grace);
        if let Some(main) = self.command.as_mut().filter(|m| m.is_running())
            && main.kill_at.is_some_and(|at| cx.now >= at)
        {
            main.kill_at = None;
            if let Some(pid) = main.pid {
                log::warn!("main command did not exit within {grace}, pid {pid}, sending KILL");
                signal_group(pid, libc::SIGKILL);
            }
        }
        let due = self.sweep.as_ref().and_then(|s| s.kill_at);
        if due.is_some_and(|at| cx.now >= at) {
            let left = self.signal_leftovers(nix::sys::signal::SIGKILL);
            if let Some(sweep) = &mut self.sweep {
                if left.is_some() && !sweep.killed {
                    log::warn!("processes left after {grace}, sending KILL to all");
                }
                sweep.killed = true;
                let again = cx.now + SWEEP_KILL_AGAIN;
                sweep.kill_at = (left.is_some() && again < sweep.give_up_at).then_some(again);
            }
        }
    }

    fn reaped(&mut self, pid: i32, status: Exit, cx: &mut Cx<'_>) -> bool {
        if self.running_pid() != Some(pid) {
            return false;
        }
        self.ended(status, cx);
        true
    }

    fn signal(&mut self, signal: i32, cx: &mut Cx<'_>) -> bool {
        forwards(signal) && self.forward(signal, cx)
    }

    fn notice(&mut self, notice: Notice, cx: &mut Cx<'_>) {
        if notice == Notice::ShuttingDown {
            // A critical service failed: the main command stops too.
            self.forward(libc::SIGTERM, cx);
        }
    }

    fn busy(&mut self, cx: &mut Cx<'_>) -> bool {
        self.running_pid().is_some() || !self.sweep_done(cx)
    }

    fn hand_over(&mut self, handover: &mut Handover) {
        let start = |pid| crate::procfs::start_time(pid).map(|start| (pid, start));
        handover.main = self.running_pid().and_then(start);
    }

    fn take_back(&mut self, handover: &mut Handover) {
        let me = std::process::id() as i32;
        if let (Some(main), Some((pid, start))) = (&mut self.command, handover.main)
            && crate::procfs::start_time(pid) == Some(start)
            && crate::procfs::parent(pid) == Some(me)
        {
            log::info!("main command adopted, pid {pid}");
            main.pid = Some(pid);
        }
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

/// Whether a signal going receives is passed on to the main command. All
/// are but SIGCHLD (going's own business) and SIGPIPE (raised by going's
/// own writes, never sent to it). SIGUSR2 is too, as under tini (nginx
/// and unicorn take it): the upgrade is then `going upgrade`.
pub fn forwards(signal: i32) -> bool {
    signal != libc::SIGCHLD && signal != libc::SIGPIPE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(status: Exit, success_codes: Vec<i32>) -> i32 {
        let mut main = Main::new(vec!["x".into()], false, success_codes);
        main.pid = Some(2);
        main.status = Some(status);
        main.exit_code()
    }

    #[test]
    fn exit_statuses_pass_through() {
        assert_eq!(ended(Exit::Code(0), vec![]), 0);
        assert_eq!(ended(Exit::Code(3), vec![]), 3);
        assert_eq!(ended(Exit::Code(255), vec![]), 255);
        assert_eq!(ended(Exit::Signal(libc::SIGKILL), vec![]), 137);
        assert_eq!(ended(Exit::Signal(libc::SIGTERM), vec![]), 143);
    }

    #[test]
    fn success_codes_map_to_zero() {
        assert_eq!(ended(Exit::Code(143), vec![143]), 0);
        assert_eq!(ended(Exit::Signal(libc::SIGTERM), vec![143]), 0);
        assert_eq!(ended(Exit::Code(3), vec![143]), 3);
    }

    #[test]
    fn exec_failures_are_127_or_126() {
        let mut main = Main::new(vec!["nope".into()], false, vec![]);
        main.status = Some(Exit::Code(127));
        main.failed_exec = Some((9, libc::ENOENT));
        assert_eq!(main.exit_code(), 127);
        main.failed_exec = Some((9, libc::EACCES));
        assert_eq!(main.exit_code(), 126);
        main.failed_exec = Some((9, libc::ENOEXEC));
        assert_eq!(main.exit_code(), 126);
    }

    #[test]
    fn every_signal_but_chld_and_pipe_is_forwarded() {
        for signal in [
            libc::SIGUSR2,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGWINCH,
            libc::SIGCONT,
            libc::SIGALRM,
        ] {
            assert!(forwards(signal));
        }
        assert!(!forwards(libc::SIGCHLD));
        assert!(!forwards(libc::SIGPIPE));
    }
}
