//! going: a process supervisor that can run as PID 1.
//!
//! The library holds everything; `main.rs` is only the C entry point. The
//! supervisor itself is one thread and one loop (`event_loop.rs`) around a
//! pure state machine (`service.rs`, `supervisor.rs`). Being a library also
//! lets the fuzz targets (`fuzz/`) call the parsers directly.
#![cfg_attr(test, allow(dead_code))]
// As PID 1 a panic takes the machine down: nothing outside tests may.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::todo,
        clippy::unimplemented,
        clippy::unreachable
    )
)]

pub mod args;
pub mod calendar;
pub mod check;
pub mod config;
pub mod control;
pub mod deps;
pub mod event_loop;
pub mod log;
pub mod main_command;
pub mod notify;
pub mod output;
pub mod service;
pub mod signals;
pub mod spawn;
pub mod state;
pub mod status;
pub mod supervisor;
pub mod watch;

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};

/// Runs one mode of the command line (without the program name) and
/// returns the process exit status. Signals must already be blocked
/// (`event_loop::block_signals`).
pub fn run(args: Vec<std::ffi::OsString>) -> i32 {
    use args::Mode;
    // Kept for the exec of an upgrade (SIGUSR2).
    let argv = args.clone();
    match args::parse(args) {
        Ok(Mode::Version) => {
            println!("going {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Ok(Mode::Help) => {
            print!("{}", args::USAGE);
            0
        }
        Ok(Mode::Check { dir }) => check::run(&dir),
        Ok(Mode::Control { dir, socket, words }) => {
            // SAFETY: geteuid cannot fail.
            let euid = unsafe { libc::geteuid() };
            let socket = socket.unwrap_or_else(|| control::default_socket(&dir, euid));
            control::run_client(&socket, &words)
        }
        Ok(Mode::Supervise(options)) => supervise(options, argv),
        Err(why) => {
            let _ = write!(std::io::stderr(), "going: {why}\n{}", args::USAGE);
            2
        }
    }
}

fn supervise(options: args::Supervise, argv: Vec<std::ffi::OsString>) -> i32 {
    let log_target = log::init(options.log, options.syslog_socket.clone());
    let main = options
        .main
        .map(|m| main_command::MainCommand::new(m.argv, m.forward_to_group, m.success_codes));
    let dir = options.dir.as_path();
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let default_path = options.socket.is_none();
    let socket = options
        .socket
        .unwrap_or_else(|| control::default_socket(dir, euid));
    let server = match control::Server::bind(&socket, dir, default_path) {
        Ok(server) => Some(server),
        Err(control::BindError::Busy(why)) => return fatal(&why, log_target),
        Err(control::BindError::Other(why)) => {
            ::log::error!("{why}; running without a control socket");
            None
        }
    };
    let started = prepare(main.is_some()).and_then(|context| {
        let state_path = state::path_for(&socket);
        event_loop::EventLoop::new(dir, context, main, options.grace, server, state_path, argv)
    });
    let mut event_loop = match started {
        Ok(event_loop) => event_loop,
        Err(why) => return fatal(&why, log_target),
    };
    ::log::info!(
        "going {} started, pid {}, directory {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        dir.display()
    );
    event_loop.run()
}

/// One line on stderr (and in syslog when that is where going logs).
fn fatal(why: &str, log_target: log::Target) -> i32 {
    ::log::error!("{why}");
    if log_target == log::Target::Syslog {
        let _ = writeln!(std::io::stderr(), "going: {why}");
    }
    1
}

/// Process-wide set-up: subreaper, descriptors, limits, /dev/null.
fn prepare(keep_inherited: bool) -> Result<spawn::Context, String> {
    // SAFETY: plain system calls with valid arguments.
    unsafe {
        if libc::getpid() != 1 && libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
            ::log::warn!(
                "cannot become a child subreaper: {}",
                nix::errno::Errno::last().desc()
            );
        }
    }
    // Descriptors going inherited never reach a service; a main command
    // gets them, as under tini (socket activation), so they stay open and
    // each service's child closes them.
    let inherited = inheritable_fds();
    if !keep_inherited {
        for &fd in &inherited {
            // SAFETY: F_SETFD on a descriptor that exists.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    let mut nofile = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a local struct. Going itself may hold
    // one pipe a starting service; the services get the original limit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut nofile);
        let raised = libc::rlimit {
            rlim_cur: nofile.rlim_max,
            rlim_max: nofile.rlim_max,
        };
        libc::setrlimit(libc::RLIMIT_NOFILE, &raised);
    }
    // SAFETY: open of a constant C string; the descriptor is owned below.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "cannot open /dev/null: {}",
            nix::errno::Errno::last().desc()
        ));
    }
    // SAFETY: fd was just opened.
    let dev_null = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: geteuid cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    Ok(spawn::Context {
        dev_null,
        nofile,
        is_root,
        inherited: if keep_inherited {
            inherited
        } else {
            Vec::new()
        },
        notify_socket: None,
        own_user: spawn::own_user(),
        ignored_signals: spawn::ignored_signals(),
    })
}

/// Descriptors above 2 that an exec would pass on: open and without
/// close-on-exec.
fn inheritable_fds() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let listed: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    // The directory's own descriptor is closed by now and fails F_GETFD.
    listed
        .into_iter()
        // SAFETY: F_GETFD only reads the descriptor's flags.
        .filter(|&fd| {
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            flags >= 0 && flags & libc::FD_CLOEXEC == 0
        })
        .collect()
}
