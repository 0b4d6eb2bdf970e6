//! Trusted configuration: going running as root refuses a service file or
//! directory that someone else could write, and `going check` says so.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn chmod(path: &std::path::Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown(path: &std::path::Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).expect("chown");
}

const WHY: &str = "going runs as root, so service files and their directory must be root's and writable only by root";

#[test]
fn files_others_could_write_are_refused_and_checked() {
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let t = TempDir::new("trusted");
    t.write_svc("good.toml", &sleep_service(7201, ""));
    let owned = t.write_svc("owned.toml", &sleep_service(7202, ""));
    chown(&owned, 65534);
    let open = t.write_svc("open", "cmd=/bin/sleep 7203\n");
    chmod(&open, 0o664);
    let g = Going::start(&t);
    g.wait_running("good");
    // the diagnostics are the contract: going(8) LOGGING
    g.wait_log(
        &format!("{}:1: refused: owned by uid 65534; {WHY}", owned.display()),
        secs(5),
    );
    g.wait_log(
        &format!(
            "{}:1: refused: writable by group or others (mode 664); {WHY}",
            open.display()
        ),
        secs(5),
    );
    let refused: Vec<Svc> = g
        .services()
        .into_iter()
        .filter(|s| s.name == "owned" || s.name == "open")
        .collect();
    g.check(
        refused
            .iter()
            .all(|s| s.pid.is_none() && s.last_exit.is_none()),
        &format!("a refused file was started: {refused:?}"),
    );
    let out = run_going(&["check", "-d", &t.s("svc")]);
    let text = String::from_utf8_lossy(&out.stdout);
    g.check(
        out.status.code() == Some(1)
            && text.contains(&format!(
                "{}:1: refused: owned by uid 65534",
                owned.display()
            ))
            && text.contains(&format!("{}:1: refused: writable by group", open.display()))
            && !text.contains("good.toml"),
        &format!("going check: {:?} {text}", out.status),
    );
}

#[test]
fn a_running_service_whose_file_turns_writable_keeps_running() {
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let t = TempDir::new("trustedrun");
    let file = t.write_svc("a.toml", &sleep_service(7211, ""));
    let g = Going::start(&t);
    let a = g.wait_running("a");
    chmod(&file, 0o666);
    fs::write(&file, sleep_service(7212, "")).expect("rewrite");
    // the line is the contract: going(8) LOGGING
    g.wait_log(
        &format!(
            "a: {}:1: refused: writable by group or others (mode 666)",
            file.display()
        ),
        secs(5),
    );
    std::thread::sleep(ms(200));
    g.check(
        alive(a) && g.running_pid("a") == Some(a),
        "a was stopped or changed",
    );
    // Made private again, the change goes through.
    chmod(&file, 0o644);
    g.signal(SIGHUP);
    g.wait_new_pid("a", a);
}

#[test]
fn a_directory_others_could_write_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let t = TempDir::new("trusteddir");
    let file = t.write_svc("a.toml", &sleep_service(7221, ""));
    chmod(&t.svc(), 0o777);
    let g = Going::start(&t);
    // the line is the contract: going(8) LOGGING
    g.wait_log(
        &format!(
            "{}:1: refused: directory {} is writable by group or others (mode 777)",
            file.display(),
            t.svc().display()
        ),
        secs(5),
    );
    let out = run_going(&["check", "-d", &t.s("svc")]);
    g.check(
        out.status.code() == Some(1)
            && String::from_utf8_lossy(&out.stdout).contains("refused: directory"),
        "going check on a world-writable directory",
    );
    // Fixed: a rescan starts it.
    chmod(&t.svc(), 0o755);
    g.signal(SIGHUP);
    g.wait_running("a");
}
