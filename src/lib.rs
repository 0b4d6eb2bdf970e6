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

pub mod activity;
pub mod adhoc;
pub mod args;
pub mod check;
pub mod config;
pub mod control;
pub mod control_server;
pub mod deps;
pub mod directory;
pub mod event_loop;
pub mod hooks;
pub mod log;
pub mod logfiles;
pub mod main_command;
pub mod notify;
pub mod output;
pub mod part;
pub mod procfs;
pub mod readiness;
pub mod schedules;
pub mod service;
pub mod signals;
pub mod spawn;
pub mod state;
pub mod status;
pub mod supervisor;
pub mod tail;
pub mod takeover;
pub mod util;
pub mod versions;
pub mod watch;

use std::io::Write;

/// Runs one mode of the command line (without the program name) and
/// returns the process exit status. Signals must already be blocked
/// (`event_loop::block_signals`); the supervisor keeps them so (it takes
/// them from a signalfd), every other mode gets back the mask it inherited,
/// `inherited`, so that Ctrl-C and `timeout` stop a client.
pub fn run(args: Vec<std::ffi::OsString>, inherited: nix::sys::signal::SigSet) -> i32 {
    use args::Mode;
    // Kept for the exec of an upgrade (SIGUSR2).
    let argv = args.clone();
    let mode = args::parse(args);
    if !matches!(mode, Ok(Mode::Supervise(_))) {
        let _ = inherited.thread_set_mask();
    }
    match mode {
        Ok(Mode::Version) => {
            println!("going {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Ok(Mode::Help) => {
            print!("{}", args::USAGE);
            0
        }
        Ok(Mode::Check { dir }) => check::run(&dir),
        Ok(Mode::Adhoc(verb)) => adhoc::run(verb),
        Ok(Mode::Control {
            dir,
            socket,
            words,
            timeout,
        }) => {
            let euid = nix::unistd::geteuid().as_raw();
            let socket = socket.unwrap_or_else(|| control::default_socket(&dir, euid));
            let (words, timeout) = control::client_request(words, timeout);
            control::run_client(&socket, &words, timeout)
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
        .map(|m| main_command::Main::new(m.argv, m.forward_to_group, m.success_codes));
    let dir = options.dir.as_path();
    let default_path = options.socket.is_none();
    let socket = options
        .socket
        .unwrap_or_else(|| control::default_socket(dir, nix::unistd::geteuid().as_raw()));
    let server = match control_server::Server::bind(&socket, dir, default_path) {
        Ok(server) => Some(server),
        Err(control_server::BindError::Busy(why)) => return fatal(&why, log_target),
        Err(control_server::BindError::Other(why)) => {
            ::log::error!("{why}; running without a control socket");
            None
        }
    };
    let started = prepare(main.is_some()).and_then(|mut context| {
        let readiness = readiness::Readiness::default();
        context.notify_socket = readiness.notify_address();
        let parts = event_loop::Parts {
            takeover: takeover::Takeover::new(dir.to_path_buf(), state::path_for(&socket), argv),
            directory: directory::Directory::new(dir, main.is_some())?,
            control: control_server::ControlServer::new(server, dir),
            hooks: hooks::Hooks::default(),
            readiness,
            logs: logfiles::LogFiles::default(),
            output: output::Outputs::default(),
            log: log::StderrBacklog,
            versions: versions::Versions::default(),
            schedules: schedules::Schedules::new(),
            activity: activity::Activity::default(),
            main: main_command::MainCommand::new(main, options.grace),
        };
        event_loop::EventLoop::new(parts, context)
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
    use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl, open};
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    use nix::sys::stat::Mode;
    if std::process::id() != 1
        && let Err(errno) = nix::sys::prctl::set_child_subreaper(true)
    {
        ::log::warn!("cannot become a child subreaper: {}", errno.desc());
    }
    // Descriptors going inherited never reach a service; a main command
    // gets them, as under tini (socket activation), so they stay open and
    // each service's child closes them.
    let mut inherited = inheritable_fds();
    if !keep_inherited {
        for fd in inherited.drain(..) {
            // SAFETY: only marked close-on-exec: a descriptor that
            // inheritable_fds found open, which nothing else owns.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        }
    }
    // Going itself may hold one pipe a starting service; the services get
    // the original limit.
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    let nofile = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    let dev_null = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|errno| format!("cannot open /dev/null: {}", errno.desc()))?;
    Ok(spawn::Context {
        dev_null,
        nofile,
        is_root: nix::unistd::geteuid().is_root(),
        inherited,
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
    // The raw call: nix's fcntl wants a descriptor known open, these are
    // numbers read from a directory (whose own descriptor, close-on-exec
    // as opendir makes it, is left out).
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        // SAFETY: F_GETFD only reads the flags of a number that may or may
        // not be an open descriptor.
        .filter(|&fd| {
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            fd > 2 && flags >= 0 && flags & libc::FD_CLOEXEC == 0
        })
        .collect()
}
