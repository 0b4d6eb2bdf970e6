//! Versions (`apply-on`, `[[version]]`), templates, `going expand`,
//! `going add` / `remove` and the Procfile, through the real binary.

mod common;
use common::*;
use std::fs;

/// The local date-time `secs` from now, as apply-on takes it.
fn local_in(secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let out = std::process::Command::new("date")
        .args(["-d", &format!("@{}", now + secs), "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn svc_json(g: &Going, name: &str) -> Option<Json> {
    let json = g.status_json()?;
    match json.get("services")? {
        Json::Arr(all) => all
            .iter()
            .find(|s| s.get("name").and_then(Json::as_str) == Some(name))
            .cloned(),
        _ => None,
    }
}

fn check_lines(t: &TempDir) -> (i32, String) {
    let out = run_going(&["check", "-d", &t.s("svc")]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_version_applies_at_its_time_and_a_fake_one_never() {
    let t = TempDir::new("versions");
    let file = format!(
        "cmd = \"/bin/sleep 1001\"\n\n[[version]]\napply-on = {}\ncmd = \"/bin/sleep 1002\"\n\n[[version]]\napply-on = \"{}\"\nfake = true\ncmd = \"/bin/sleep 1003\"\n",
        local_in(4),
        local_in(1)
    );
    t.write_svc("v.toml", &file);
    let g = Going::start(&t);
    let first = g.wait_running("v");
    assert_eq!(cmdline(first), ["/bin/sleep", "1001"]);
    let json = svc_json(&g, "v").expect("v in status");
    assert_eq!(json.get("version"), Some(&Json::Null));
    assert!(json.get("next_version").and_then(Json::as_str).is_some());
    let second = g.wait_for(secs(10), "v restarted with its version", || {
        g.running_pid("v")
            .filter(|&p| cmdline(p) == ["/bin/sleep", "1002"])
    });
    assert_ne!(second, first);
    assert!(!alive(first) || stat(first).is_none_or(|s| s.ppid != g.pid));
    let json = svc_json(&g, "v").expect("v in status");
    assert!(json.get("version").and_then(Json::as_str).is_some());
    assert_eq!(json.get("next_version"), Some(&Json::Null));
    // The fake one, due before, never ran; nothing switches any more.
    std::thread::sleep(ms(500));
    assert_eq!(g.running_pid("v"), Some(second));
}

#[test]
fn a_file_whose_top_level_applies_later_starts_nothing_before() {
    let t = TempDir::new("apply-on");
    let file = format!(
        "apply-on = \"{}\"\ncmd = \"/bin/sleep 1004\"\n",
        local_in(3)
    );
    t.write_svc("later.toml", &file);
    let g = Going::start(&t);
    g.wait_up();
    let s = g.wait_state("later", "disabled", secs(2));
    assert_eq!(s.pid, None);
    let pid = g.wait_for(secs(8), "later running at its apply-on", || {
        g.running_pid("later")
    });
    assert_eq!(cmdline(pid), ["/bin/sleep", "1004"]);
}

#[test]
fn a_template_fills_its_users_and_restarts_only_them() {
    let t = TempDir::new("template");
    t.write_svc("sleeper.template", "cmd = \"/bin/sleep {{ secs }}\"\n");
    t.write_svc("a.toml", "template = \"sleeper\"\n[vars]\nsecs = 1005\n");
    t.write_svc(
        "b.toml",
        "template = \"sleeper\"\nenv.OWN = \"yes\"\n[vars]\nsecs = \"1006\"\n",
    );
    t.write_svc("c.toml", &sleep_service(1007, ""));
    let g = Going::start(&t);
    let (a, b, c) = (
        g.wait_running("a"),
        g.wait_running("b"),
        g.wait_running("c"),
    );
    assert_eq!(cmdline(a), ["/bin/sleep", "1005"]);
    assert!(environ(b).contains(&"OWN=yes".to_string()));
    assert!(g.svc("sleeper").is_none(), "a template is no service");
    // expand: the definition in effect.
    let out = run_going(&["expand", "-d", &t.s("svc"), "a"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cmd = \"/bin/sleep 1005\""), "{text}");
    assert!(
        !run_going(&["expand", "-d", &t.s("svc"), "nothere"])
            .status
            .success()
    );
    // A changed template restarts its users, and only them.
    t.replace_svc(
        "sleeper.template",
        "cmd = \"/bin/sleep {{ secs }}\"\nenv.T = \"2\"\n",
    );
    let a2 = g.wait_new_pid("a", a);
    let b2 = g.wait_new_pid("b", b);
    assert!(environ(a2).contains(&"T=2".to_string()));
    assert!(environ(b2).contains(&"OWN=yes".to_string()));
    assert_eq!(g.running_pid("c"), Some(c));
    // A missing variable: check names both files; a's process runs on.
    t.replace_svc("a.toml", "template = \"sleeper\"\n[vars]\nsec = 1\n");
    let (code, lines) = check_lines(&t);
    assert_eq!(code, 1);
    assert!(
        lines.contains("a.toml: ")
            && lines.contains("sleeper.template:1: unknown variable \"secs\""),
        "{lines}"
    );
    g.sync(&t);
    std::thread::sleep(ms(300));
    assert_eq!(g.running_pid("a"), Some(a2));
}

#[test]
fn add_writes_a_file_going_runs_and_remove_takes_it_away() {
    let t = TempDir::new("add");
    fs::create_dir_all(t.svc()).unwrap();
    let dir = t.s("svc");
    let out = run_going(&[
        "add",
        "-d",
        &dir,
        "--no-wait",
        "job",
        "--",
        "/bin/sleep",
        "1008",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(t.svc().join("job.toml").exists());
    // An existing name is refused.
    let again = run_going(&["add", "-d", &dir, "--no-wait", "job", "--", "/bin/true"]);
    assert_eq!(again.status.code(), Some(1));
    // A going started after add runs it.
    let g = Going::start(&t);
    let job = g.wait_running("job");
    assert_eq!(cmdline(job), ["/bin/sleep", "1008"]);
    // add waits until the service runs.
    let sock = t.s("going.sock");
    let out = run_going(&[
        "add",
        "-d",
        &dir,
        "-s",
        &sock,
        "-g",
        "grp",
        "more",
        "--",
        "/bin/sleep",
        "1009",
    ]);
    assert!(out.status.success(), "{out:?}");
    let more = g.running_pid("more").expect("more runs once add returns");
    assert_eq!(cmdline(more), ["/bin/sleep", "1009"]);
    // remove waits until it is stopped.
    let out = run_going(&["remove", "-d", &dir, "-s", &sock, "more"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!alive(more) || stat(more).is_none_or(|s| s.ppid != g.pid));
    assert!(!t.svc().join("more.toml").exists());
    let out = run_going(&["remove", "-d", &dir, "-s", &sock, "more"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(g.running_pid("job"), Some(job));
}

#[test]
fn a_procfile_edit_restarts_only_the_changed_line() {
    let t = TempDir::new("procfile");
    t.write_svc(
        "Procfile",
        "web: exec /bin/sleep 1010\nworker: exec /bin/sleep 1011\n",
    );
    t.write_svc(".env", "GREETING=hello\n");
    let g = Going::start(&t);
    let (web, worker) = (g.wait_running("web"), g.wait_running("worker"));
    assert!(environ(web).contains(&"GREETING=hello".to_string()));
    assert!(g.svc("Procfile").is_none());
    t.replace_svc(
        "Procfile",
        "web: exec /bin/sleep 1010\nworker: exec /bin/sleep 1012\n",
    );
    let worker2 = g.wait_new_pid("worker", worker);
    // sh execs the command: wait for that.
    g.wait(secs(2), "worker's new command", || {
        cmdline(worker2) == ["/bin/sleep", "1012"]
    });
    std::thread::sleep(ms(300));
    assert_eq!(g.running_pid("web"), Some(web));
    // A bad line: check says where; nothing changes.
    t.replace_svc("Procfile", "web: exec /bin/sleep 1010\nno colon\n");
    let (code, lines) = check_lines(&t);
    assert_eq!(code, 1);
    assert!(
        lines.contains("Procfile:2: expected \"name: command\""),
        "{lines}"
    );
    g.sync(&t);
    std::thread::sleep(ms(300));
    assert_eq!(g.running_pid("web"), Some(web));
    assert_eq!(g.running_pid("worker"), Some(worker2));
    // Fixed: the removed line's service stops.
    t.replace_svc("Procfile", "web: exec /bin/sleep 1010\n");
    g.wait_gone(worker2, secs(5));
    assert_eq!(g.running_pid("web"), Some(web));
}

#[test]
fn a_name_in_the_procfile_and_a_service_file_is_an_error() {
    let t = TempDir::new("procfile-twice");
    t.write_svc("Procfile", "web: exec /bin/sleep 1013\n");
    let g = Going::start(&t);
    let web = g.wait_running("web");
    t.write_svc("web.toml", &sleep_service(1014, ""));
    let (code, lines) = check_lines(&t);
    assert_eq!(code, 1);
    assert!(
        lines.contains("Procfile:1: web: defined here and by"),
        "{lines}"
    );
    // Neither wins: the running one runs on, as for a broken file.
    g.sync(&t);
    std::thread::sleep(ms(300));
    assert_eq!(g.running_pid("web"), Some(web));
}
