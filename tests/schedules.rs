//! Schedules (`[schedule]`) and health by activity (`health-check = {
//! folder, inactive-time }`): windows a few seconds from the test's own
//! clock, the wall clock stepped under going, a folder that goes quiet.
//! going runs with TZ=UTC0, so that local time is UTC here too.

mod common;
use common::*;
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The clock step takes it for writing: no other test of this file runs
/// while the wall clock is off.
static CLOCK: RwLock<()> = RwLock::new(());

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `HH:MM:SS` (UTC) of the whole second `at`.
fn hms(at: i64) -> String {
    let secs = at.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The three-letter name of the UTC week day of `at`.
fn day_name(at: i64) -> &'static str {
    // 1970-01-01 was a Thursday.
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [(at.div_euclid(86_400) + 3).rem_euclid(7) as usize]
}

/// A `[schedule]` table from `start` to `stop` (UNIX seconds), `extra` lines after.
fn window(start: i64, stop: i64, extra: &str) -> String {
    format!(
        "[schedule]\nstart-time = \"{}\"\nstop-time = \"{}\"\n{extra}",
        hms(start),
        hms(stop)
    )
}

fn going_utc(t: &TempDir) -> Going {
    Going::start_with(
        t,
        Opts {
            env: vec![("TZ".into(), "UTC0".into())],
            ..Opts::default()
        },
    )
}

/// `next_start` of `name` in `going status --json`.
fn next_start(g: &Going, name: &str) -> Option<i64> {
    let json = g.status_json()?;
    let services = match json.get("services")? {
        Json::Arr(services) => services.clone(),
        _ => return None,
    };
    let service = services
        .iter()
        .find(|s| s.get("name").and_then(Json::as_str) == Some(name))?;
    service.get("next_start")?.as_i64()
}

/// The first whole second at least `ahead` seconds from now.
fn second_from_now(ahead: f64) -> i64 {
    (unix_now() + ahead).ceil() as i64
}

#[test]
fn a_window_starts_and_stops_its_service() {
    let _clock = CLOCK.read();
    let t = TempDir::new("window");
    let (start, stop) = (second_from_now(2.0), second_from_now(5.0));
    t.write_svc("win.toml", &sleep_service(1001, &window(start, stop, "")));
    let g = going_utc(&t);
    let before = g.wait_state("win", "scheduled", secs(2));
    g.check(before.pid.is_none(), "a scheduled service has no process");
    g.check(
        next_start(&g, "win") == Some(start),
        &format!("next_start is the window's start {start}"),
    );
    let pid = g.wait_running("win");
    let started = unix_now();
    g.check(
        started >= start as f64 - 0.05,
        &format!("started at {started:.3}, before its window at {start}"),
    );
    g.wait_gone(pid, secs(5));
    let stopped = unix_now();
    g.check(
        stopped >= stop as f64 - 0.05,
        &format!("stopped at {stopped:.3}, before its window ended at {stop}"),
    );
    let after = g.wait_state("win", "scheduled", secs(2));
    g.check(after.restarts == 0, "the end of a window is no restart");
    // The next start is the same time tomorrow.
    g.check(
        next_start(&g, "win") == Some(start + 86_400),
        "next_start is tomorrow's window",
    );
}

#[test]
fn a_week_day_that_is_not_today_stays_scheduled() {
    let _clock = CLOCK.read();
    let t = TempDir::new("weekday");
    let start = second_from_now(1.0);
    let tomorrow = day_name(start + 86_400);
    let days = format!("week-days = \"{tomorrow}\"\n");
    t.write_svc(
        "tomorrow.toml",
        &sleep_service(1002, &window(start, start + 60, &days)),
    );
    let g = going_utc(&t);
    g.wait_state("tomorrow", "scheduled", secs(2));
    std::thread::sleep(ms(2500));
    let s = g.svc("tomorrow").unwrap();
    g.check(
        s.state == "scheduled" && s.pid.is_none(),
        &format!("started on the wrong day: {s:?}"),
    );
    g.check(
        next_start(&g, "tomorrow") == Some(start + 86_400),
        "next_start is tomorrow",
    );
}

#[test]
fn a_one_shot_runs_once_a_window() {
    let _clock = CLOCK.read();
    let t = TempDir::new("oneshot");
    let runs = t.join("runs");
    let (start, stop) = (second_from_now(1.5), second_from_now(4.5));
    let script = format!("echo run >> {}", runs.display());
    let service = format!(
        "cmd = {}\nrestart = \"never\"\n{}",
        qa(&["/bin/sh", "-c", &script]),
        window(start, stop, "")
    );
    t.write_svc("once.toml", &service);
    let g = going_utc(&t);
    let count = || std::fs::read_to_string(&runs).map_or(0, |r| r.lines().count());
    g.wait_svc("once", "ran and exited", secs(5), |s| {
        s.state == "exited" && s.last_exit.as_deref() == Some("exit 0")
    });
    g.check(count() == 1, "ran once");
    // Exited until the window ends, then scheduled; never run again.
    g.wait_state("once", "scheduled", secs(5));
    g.check(
        unix_now() >= stop as f64 - 0.05,
        "scheduled again before the window's end",
    );
    g.check(
        count() == 1,
        &format!("ran {} times in one window", count()),
    );
}

/// Sets the wall clock `offset` away from the right time, and puts it back
/// (from the monotonic clock) when dropped.
struct ClockStep {
    wall: SystemTime,
    at: Instant,
}

impl ClockStep {
    fn forward(offset: Duration) -> ClockStep {
        let step = ClockStep {
            wall: SystemTime::now(),
            at: Instant::now(),
        };
        set_clock(step.wall + offset);
        step
    }
}

impl Drop for ClockStep {
    fn drop(&mut self) {
        set_clock(self.wall + self.at.elapsed());
    }
}

fn set_clock(to: SystemTime) {
    let since = to.duration_since(UNIX_EPOCH).unwrap();
    let spec = libc::timespec {
        tv_sec: since.as_secs() as libc::time_t,
        tv_nsec: since.subsec_nanos() as libc::c_long,
    };
    // SAFETY: a valid timespec; the test runs as root.
    let done = unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &spec) };
    assert_eq!(
        done,
        0,
        "clock_settime: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn a_clock_step_moves_windows_not_backoffs() {
    if !is_root() {
        eprintln!("skipped: setting the wall clock needs root");
        return;
    }
    let _clock = CLOCK.write();
    let t = TempDir::new("clockstep");
    // In its window now, for two minutes more.
    let now = unix_now() as i64;
    t.write_svc(
        "office.toml",
        &sleep_service(1003, &window(now - 60, now + 120, "")),
    );
    // A crash loop with a backoff of 1.6 s (after 6 short runs).
    t.write_svc("crash.toml", "cmd = \"/bin/false\"\n");
    let g = going_utc(&t);
    let office = g.wait_running("office");
    let looping = g.wait_backoff("crash", 6);
    let restarts = looping.restarts;
    {
        // An hour on: past the window's end.
        let _step = ClockStep::forward(Duration::from_secs(3600));
        g.wait_gone(office, secs(2));
        g.wait_state("office", "scheduled", secs(2));
        // The backoff is on the monotonic clock: the next restart comes
        // in its 3.2 s or less, not an hour early nor late.
        g.wait_svc("crash", "restarted after its backoff", secs(4), |s| {
            s.restarts > restarts
        });
    }
    // The clock back: inside the window again, started again.
    let again = g.wait_running("office");
    g.check(again != office, "a new process for the window");
}

#[test]
fn a_folder_that_goes_quiet_restarts_its_service() {
    let _clock = CLOCK.read();
    let t = TempDir::new("quiet");
    let spool = t.join("spool");
    std::fs::create_dir(&spool).unwrap();
    let check = format!(
        "health-check = {{ folder = \"{}\", inactive-time = \"1s\" }}",
        spool.display()
    );
    t.write_svc("worker.toml", &sleep_service(1004, &check));
    let missing = format!(
        "health-check = {{ folder = \"{}\", inactive-time = \"500ms\" }}",
        t.join("nowhere").display()
    );
    t.write_svc("lost.toml", &sleep_service(1005, &missing));
    let g = going_utc(&t);
    let worker = g.wait_running("worker");
    let lost = g.wait_running("lost");
    // Busy for 2.5 s: a file written, created, renamed every 0.3 s.
    let busy_until = Instant::now() + ms(2500);
    let mut n = 0;
    while Instant::now() < busy_until {
        let file = spool.join(format!("job{n}"));
        std::fs::write(&file, "x").unwrap();
        std::fs::rename(&file, spool.join(format!("done{n}"))).unwrap();
        n += 1;
        std::thread::sleep(ms(300));
    }
    g.check(
        g.running_pid("worker") == Some(worker),
        "restarted while its folder was busy",
    );
    // Quiet: restarted about a second later.
    let quiet = Instant::now();
    let restarted = g.wait_new_pid("worker", worker);
    let waited = quiet.elapsed();
    g.check(
        waited >= ms(500) && waited <= ms(3000),
        &format!("restarted {waited:?} after the folder went quiet"),
    );
    g.check(!alive(worker), "the quiet process was stopped");
    g.check(restarted != worker, "a new process");
    // A folder that does not exist restarts nothing.
    g.check(
        g.running_pid("lost") == Some(lost),
        "a missing folder restarted its service",
    );
    // the line is the contract: going.d(5) HEALTH
    g.check(
        g.log_has("worker: no activity in ") && g.log_count("lost: cannot watch") == 1,
        "the restart and the missing folder are each said",
    );
}
