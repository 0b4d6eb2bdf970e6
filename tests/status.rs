//! Why a service is not running, as `going status` says it (going(8)
//! STATUS): the `reason` of `--json` and the note at the end of its text
//! row, for a broken file, a `going stop`, a dependent that waits, a
//! readiness that never came, a crash loop and a schedule; and the fields
//! `--json` adds (`cmd`, `depends_on`, `file`, `version`, `next_version`).

mod common;
use common::*;
use std::time::{SystemTime, UNIX_EPOCH};

/// `going ARGS... -s SOCK`, bounded in time.
fn ctl(g: &Going, args: &[&str]) -> std::process::Output {
    let sock = g.sock.clone().expect("a socket path").display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-s", &sock]);
    run_going(&all)
}

/// The object of `name` in `going status --json`.
fn json_of(g: &Going, name: &str) -> Option<Json> {
    match g.status_json()?.get("services")? {
        Json::Arr(services) => services
            .iter()
            .find(|s| s.get("name").and_then(Json::as_str) == Some(name))
            .cloned(),
        _ => None,
    }
}

/// The `reason` of `name`: None for null (or no such service).
fn reason(g: &Going, name: &str) -> Option<String> {
    json_of(g, name)?
        .get("reason")?
        .as_str()
        .map(str::to_string)
}

/// The row of `name` in the text table of `going status`.
fn text_row(g: &Going, name: &str) -> String {
    let out = ctl(g, &["status"]);
    g.check(out.status.success(), "going status answers");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_default()
        .to_string()
}

/// Waits until `name`'s reason is `want` (None: null), then checks that
/// its text row says the same; returns the row.
fn wait_reason(g: &Going, name: &str, want: Option<&str>) -> String {
    let mut last = None;
    let held = wait_until(secs(10), || {
        last = reason(g, name);
        last.as_deref() == want
    });
    g.check(
        held,
        &format!("{name}: reason {want:?} expected, last {last:?}"),
    );
    let row = text_row(g, name);
    if let Some(want) = want {
        g.check(row.contains(want), &format!("{want:?} in the row {row:?}"));
    }
    row
}

fn strings(json: Option<&Json>) -> Vec<String> {
    match json {
        Some(Json::Arr(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => vec!["(not an array)".to_string()],
    }
}

#[test]
fn a_broken_file_is_the_reason_until_it_parses_again() {
    let t = TempDir::new("statusbroken");
    let good = sleep_service(7301, "");
    t.write_svc("web.toml", &good);
    let g = Going::start(&t);
    let pid = g.wait_running("web");
    g.check(
        reason(&g, "web").is_none(),
        "a running service has no reason",
    );
    // Line 2 has no value.
    t.replace_svc(
        "web.toml",
        "cmd = [\"/bin/sleep\", \"7301\"]\nstop-timeout =\n",
    );
    let row = wait_reason(&g, "web", Some("file broken: web.toml:2"));
    g.check(row.contains("running"), &format!("still running: {row:?}"));
    g.check(g.running_pid("web") == Some(pid), "the process is kept");
    // The same definition as before: nothing to restart, yet the reason
    // must go.
    t.replace_svc("web.toml", &good);
    let row = wait_reason(&g, "web", None);
    g.check(!row.contains("broken"), &format!("no reason left: {row:?}"));
    g.check(g.running_pid("web") == Some(pid), "the process is kept");
}

#[test]
fn a_stopped_service_is_down() {
    let t = TempDir::new("statusdown");
    t.write_svc("web.toml", &sleep_service(7302, ""));
    let g = Going::start(&t);
    g.wait_running("web");
    let out = ctl(&g, &["stop", "web"]);
    g.check(out.status.success(), "going stop web");
    let row = wait_reason(&g, "web", Some("down"));
    g.check(row.contains("stopped"), &format!("state stopped: {row:?}"));
    let out = ctl(&g, &["start", "web"]);
    g.check(out.status.success(), "going start web");
    g.wait_running("web");
    wait_reason(&g, "web", None);
}

#[test]
fn a_dependent_says_what_it_waits_for_and_the_json_names_its_file() {
    let t = TempDir::new("statuswait");
    // db never says it is ready.
    let db = "cmd = [\"/bin/sleep\", \"7303\"]\nready-fd = 3\nstart-timeout = \"60s\"\nstop-timeout = \"2s\"\n";
    t.write_svc("db.toml", db);
    let app = format!(
        "cmd = [\"/bin/sleep\", \"7304\"]\ndepends-on = \"db\"\ngroups = [\"front\"]\n{}",
        "stop-timeout = \"2s\"\n"
    );
    let file = t.write_svc("app.toml", &app);
    let g = Going::start(&t);
    g.wait_running("db");
    let row = wait_reason(&g, "app", Some("waiting for db"));
    g.check(row.contains("stopped"), &format!("state: {row:?}"));
    let app = json_of(&g, "app").expect("app in status --json");
    g.check(
        strings(app.get("cmd")) == ["/bin/sleep", "7304"],
        &format!("cmd: {:?}", app.get("cmd")),
    );
    g.check(
        strings(app.get("depends_on")) == ["db"],
        &format!("depends_on: {:?}", app.get("depends_on")),
    );
    g.check(
        app.get("file").and_then(Json::as_str) == Some(&*file.display().to_string()),
        &format!("file: {:?}", app.get("file")),
    );
    g.check(app.get("ready") == Some(&Json::Bool(false)), "not ready");
    let db = json_of(&g, "db").expect("db in status --json");
    g.check(
        db.get("ready") == Some(&Json::Bool(false)) && db.get("reason") == Some(&Json::Null),
        &format!("db runs, not ready, no reason: {db:?}"),
    );
    g.check(
        strings(db.get("depends_on")).is_empty(),
        "db depends on nothing",
    );
}

#[test]
fn a_service_not_ready_in_time_says_so() {
    let t = TempDir::new("statusnotready");
    let svc = "cmd = [\"/bin/sleep\", \"7305\"]\nready-fd = 3\nstart-timeout = \"1s\"\nrestart = \"never\"\nstop-timeout = \"2s\"\n";
    t.write_svc("slow.toml", svc);
    let g = Going::start(&t);
    g.wait_running("slow");
    let row = wait_reason(&g, "slow", Some("not ready in time"));
    let s = g.svc("slow").expect("slow in status");
    g.check(
        s.pid.is_none() && !s.ready,
        &format!("stopped for good: {s:?} {row:?}"),
    );
    // going(8) LOGGING: with restart = "never" the line says stopping.
    g.wait_log("slow: not ready within 1.0s, pid ", secs(5));
    g.check(
        g.log()
            .lines()
            .any(|l| l.contains("slow: not ready within 1.0s, pid ") && l.ends_with(", stopping")),
        "the warning says stopping",
    );
}

#[test]
fn a_crash_loop_is_flapping() {
    let t = TempDir::new("statusflap");
    t.write_svc("crash.toml", "cmd = [\"/bin/false\"]\n");
    let g = Going::start(&t);
    let s = g.wait_svc("crash", "flapping", secs(10), |s| s.flapping);
    g.check(s.restarts >= 5, &format!("5 restarts: {s:?}"));
    wait_reason(&g, "crash", Some("flapping"));
}

/// UNIX seconds now.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[test]
fn a_scheduled_service_says_when_it_starts_and_versions_show() {
    let t = TempDir::new("statussched");
    // A window opening two hours from now, to the minute (UTC).
    let start = (unix_now() + 7200) / 60 * 60;
    let hm = |at: i64| {
        let s = at.rem_euclid(86_400);
        format!("{:02}:{:02}", s / 3600, s / 60 % 60)
    };
    let sched = format!(
        "cmd = [\"/bin/sleep\", \"7306\"]\n[schedule]\nstart-time = \"{}\"\nstop-time = \"{}\"\n",
        hm(start),
        hm(start + 3600)
    );
    t.write_svc("nightly.toml", &sched);
    let versioned = "cmd = [\"/bin/sleep\", \"7307\"]\nstop-timeout = \"2s\"\n\n\
        [[version]]\napply-on = 2020-01-01T00:00:00\ncmd = [\"/bin/sleep\", \"7308\"]\n\n\
        [[version]]\napply-on = 2099-01-01T08:00:00\ncmd = [\"/bin/sleep\", \"7309\"]\n";
    t.write_svc("app.toml", versioned);
    let g = Going::start_with(
        &t,
        Opts {
            env: vec![("TZ".into(), "UTC0".into())],
            ..Opts::default()
        },
    );
    g.wait_state("nightly", "scheduled", secs(5));
    let why = reason(&g, "nightly").unwrap_or_default();
    g.check(
        why.starts_with("scheduled, next start ") && why.ends_with(&hm(start)),
        &format!("the reason says when: {why:?}"),
    );
    let row = text_row(&g, "nightly");
    g.check(row.contains(&why), &format!("{why:?} in the row {row:?}"));
    let nightly = json_of(&g, "nightly").expect("nightly in status --json");
    g.check(
        nightly.get("next_start").and_then(Json::as_i64) == Some(start),
        &format!("next_start {start}: {:?}", nightly.get("next_start")),
    );
    g.wait_running("app");
    let app = json_of(&g, "app").expect("app in status --json");
    g.check(
        strings(app.get("cmd")) == ["/bin/sleep", "7308"],
        &format!("the version in effect runs: {:?}", app.get("cmd")),
    );
    g.check(
        app.get("version").and_then(Json::as_str) == Some("2020-01-01T00:00:00")
            && app.get("next_version").and_then(Json::as_str) == Some("2099-01-01T08:00:00"),
        &format!("version and next_version: {app:?}"),
    );
    g.check(
        app.get("next_start") == Some(&Json::Null) && app.get("reason") == Some(&Json::Null),
        "a running service has neither next_start nor reason",
    );
}

/// The position of the first log line after `from` that contains `pat`.
fn line_at(log: &str, pat: &str, from: usize) -> Option<usize> {
    log.lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.contains(pat))
        .map(|(at, _)| at)
}

#[test]
fn one_is_singular_and_a_request_comes_before_what_it_does() {
    let t = TempDir::new("statuswords");
    let flag = t.join("failed-once");
    let script = format!(
        "test -e {0} || {{ touch {0}; exit 1; }}; exec sleep 1000",
        flag.display()
    );
    let svc = format!(
        "cmd = {}\nstop-timeout = \"2s\"\n",
        qa(&["/bin/sh", "-c", &script])
    );
    t.write_svc("once.toml", &svc);
    let mut g = Going::start(&t);
    g.wait_svc("once", "running after 1 restart", secs(5), |s| {
        s.state == "running" && s.restarts == 1
    });
    // The lines are the contract: going(8) SIGNALS and LOGGING.
    g.signal(SIGUSR1);
    g.wait_log(", 1 service\n", secs(5));
    g.wait_log(", 1 restart\n", secs(5));
    for verb in ["restart", "stop"] {
        let from = g.log().lines().count();
        let out = ctl(&g, &[verb, "once"]);
        g.check(out.status.success(), &format!("going {verb} once"));
        g.wait_log_count(
            "once: stopped, pid ",
            1 + usize::from(verb == "stop"),
            secs(5),
        );
        let log = g.log();
        let asked = line_at(&log, &format!("once: {verb} requested"), from);
        let stopping = line_at(&log, "once: stopping, pid ", from);
        g.check(
            asked.is_some() && stopping.is_some() && asked < stopping,
            &format!("{verb} requested ({asked:?}) before stopping ({stopping:?})"),
        );
    }
    let out = ctl(&g, &["start", "once"]);
    g.check(out.status.success(), "going start once");
    g.wait_running("once");
    g.stop_with(SIGTERM, secs(10));
    g.check(
        g.log_has("going: SIGTERM, stopping 1 service\n"),
        "stopping 1 service",
    );
}
