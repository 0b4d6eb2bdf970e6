//! The main command of `going -- CMD`, tini-style: which signals reach it,
//! and the exit status going ends with. Pure; the loop spawns, forwards
//! and reaps.

use crate::service::Exit;
use std::ffi::OsString;
use std::time::Instant;

pub struct MainCommand {
    pub argv: Vec<OsString>,
    /// `-g`: signals go to its whole process group.
    pub forward_to_group: bool,
    /// `-e`: exit statuses that count as 0.
    pub success_codes: Vec<i32>,
    pub pid: Option<i32>,
    /// How it ended, once reaped.
    pub status: Option<Exit>,
    /// Why it could not be executed, if so.
    pub exec_error: Option<(i32, String)>,
    /// When a SIGTERM/SIGINT it got turns into SIGKILL.
    pub kill_at: Option<Instant>,
}

impl MainCommand {
    pub fn new(
        argv: Vec<OsString>,
        forward_to_group: bool,
        success_codes: Vec<i32>,
    ) -> MainCommand {
        MainCommand {
            argv,
            forward_to_group,
            success_codes,
            pid: None,
            status: None,
            exec_error: None,
            kill_at: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.pid.is_some() && self.status.is_none()
    }

    /// The status going exits with: the command's exit status, 128+N when
    /// killed by signal N, 127/126 when it could not be executed, and 0 for
    /// any status given with `-e`.
    pub fn exit_code(&self) -> i32 {
        let code = match (&self.exec_error, self.status) {
            (Some((errno, _)), _) => exec_failure_code(*errno),
            (None, Some(Exit::Code(code))) => code,
            (None, Some(Exit::Signal(signal))) => 128 + signal,
            (None, Some(Exit::Unknown)) => 1,
            (None, None) => 1,
        };
        if self.success_codes.contains(&code) {
            0
        } else {
            code
        }
    }
}

/// 127 when the program was not found, 126 when it was but could not be
/// executed, as shells do.
pub fn exec_failure_code(errno: i32) -> i32 {
    match errno {
        libc::ENOENT | libc::ENOTDIR => 127,
        _ => 126,
    }
}

/// Whether a signal going receives is passed on to the main command. All
/// are but SIGCHLD (going's own business) and SIGPIPE (raised by going's
/// own writes, never sent to it).
pub fn forwards(signal: i32) -> bool {
    // SIGUSR2 is going's own: the upgrade.
    signal != libc::SIGCHLD && signal != libc::SIGPIPE && signal != libc::SIGUSR2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(status: Exit, success_codes: Vec<i32>) -> i32 {
        let mut main = MainCommand::new(vec!["x".into()], false, success_codes);
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
        let mut main = MainCommand::new(vec!["nope".into()], false, vec![]);
        main.status = Some(Exit::Code(127));
        main.exec_error = Some((libc::ENOENT, "x".into()));
        assert_eq!(main.exit_code(), 127);
        main.exec_error = Some((libc::EACCES, "x".into()));
        assert_eq!(main.exit_code(), 126);
        main.exec_error = Some((libc::ENOEXEC, "x".into()));
        assert_eq!(main.exit_code(), 126);
    }

    #[test]
    fn every_signal_but_chld_pipe_and_usr2_is_forwarded() {
        for signal in [
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
        assert!(!forwards(libc::SIGUSR2));
    }
}
