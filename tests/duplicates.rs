//! "No duplicate services": a going killed at any instant of a mass start
//! leaves its successor a record of every process it cloned, so the
//! successor adopts each one instead of starting it a second time.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const SERVICES: usize = 200;
const ROUNDS: usize = 50;
/// The sleep argument of service `s{i}` is `base() + i`: /proc tells them
/// apart, and the test's own pid in it keeps two runs at once (two
/// checkouts on one machine) from counting or killing each other's.
fn base() -> usize {
    870_000 + (std::process::id() as usize % 1000) * 1000
}

/// Live `sleep base()+i` processes, by `i`.
fn sleepers() -> BTreeMap<usize, Vec<i32>> {
    let mut found: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let args = cmdline(pid);
        if args.len() != 2 || args[0] != "/bin/sleep" {
            continue;
        }
        let Some(i) = args[1]
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(base()))
        else {
            continue;
        };
        if i < SERVICES && stat(pid).is_some_and(|s| s.state != 'Z') {
            found.entry(i).or_default().push(pid);
        }
    }
    found
}

/// Kills what a failed round leaves (the test's own services only).
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in sleepers().into_values().flatten() {
            kill(pid, SIGKILL);
        }
    }
}

/// A small xorshift generator: the instants differ from run to run, and
/// the seed printed makes a failing run repeatable.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn a_going_killed_during_a_mass_start_is_succeeded_without_duplicates() {
    let seed = std::env::var("GOING_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    eprintln!("seed {seed} (GOING_TEST_SEED to repeat)");
    let mut random = Random(seed);
    let _cleanup = Cleanup;
    let t = TempDir::new("dup");
    std::fs::create_dir_all(t.svc()).unwrap();
    for i in 0..SERVICES {
        t.write_svc(
            &format!("s{i}.toml"),
            &format!("cmd = [\"/bin/sleep\", \"{}\"]\n", base() + i),
        );
    }
    let mut killed_with = Vec::new();
    for round in 0..ROUNDS {
        let mut first = Going::start(&t);
        let delay = Duration::from_micros(random.below(150_000));
        std::thread::sleep(delay);
        kill(first.pid, SIGKILL);
        assert!(
            first.wait_exit(secs(5)).is_some(),
            "round {round}: going did not die"
        );
        killed_with.push(sleepers().len());
        let second = Going::start(&t);
        // An adopted clone may still be between its clone and its exec
        // (going says running once it is in its own session): wait for
        // every exec too, so a sleep not yet shown is not taken for none.
        second.wait(secs(60), "every service running", || {
            let services = second.services();
            services.len() == SERVICES
                && services.iter().all(|s| s.state == "running")
                && sleepers().len() == SERVICES
        });
        let running = sleepers();
        let status: BTreeMap<String, Option<i32>> = second
            .services()
            .into_iter()
            .map(|s| (s.name, s.pid))
            .collect();
        for i in 0..SERVICES {
            let pids = running.get(&i).cloned().unwrap_or_default();
            assert_eq!(
                pids.len(),
                1,
                "round {round} (killed after {delay:?}, seed {seed}): s{i} runs {} times: {pids:?}",
                pids.len()
            );
            assert_eq!(
                status.get(&format!("s{i}")).copied().flatten(),
                pids.first().copied(),
                "round {round} (seed {seed}): the s{i} that runs is not the one going supervises"
            );
        }
        // The successor stops everything, adopted or its own.
        drop(second);
        let deadline = Instant::now() + secs(10);
        while !sleepers().is_empty() && Instant::now() < deadline {
            std::thread::sleep(ms(20));
        }
        assert!(
            sleepers().is_empty(),
            "round {round}: services left after the successor stopped"
        );
        drop(first);
    }
    // The instants must have fallen inside the start, not all before or after it.
    let partial = killed_with
        .iter()
        .filter(|&&n| n > 0 && n < SERVICES)
        .count();
    eprintln!("services running when going was killed, by round: {killed_with:?}");
    assert!(
        partial >= ROUNDS / 5,
        "only {partial} of {ROUNDS} kills fell within the start: {killed_with:?}"
    );
}
