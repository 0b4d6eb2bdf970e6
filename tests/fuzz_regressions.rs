//! The fuzz targets' inputs that once failed, or are built to be nasty
//! (`fuzz/regressions/TARGET/`), and their seeds (`fuzz/corpus/TARGET/seed-*`),
//! replayed through the very functions the targets run (`fuzz/harness.rs`):
//! on the stable toolchain, without libFuzzer. Each must not panic and must
//! keep the harness's invariants.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir` whose name starts with `prefix`, sorted.
fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    found.sort();
    found
}

/// Runs `target` on `input`; the panic message when it panics.
fn run(target: fn(&[u8]), input: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| target(input))).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })
}

/// Every regression input and seed of `name`, and `generated` ones; all
/// failures are reported together. Each input must also take under
/// `SLOW` (the inputs that were quadratic took seconds, here and more
/// under libFuzzer).
fn replay(name: &str, target: fn(&[u8]), generated: Vec<(String, Vec<u8>)>) {
    const SLOW: Duration = Duration::from_secs(10);
    let regressions = files(&fuzz_dir().join("regressions").join(name), "");
    assert!(
        regressions.len() >= 5,
        "fuzz/regressions/{name}/ holds {} inputs",
        regressions.len()
    );
    let seeds = files(&fuzz_dir().join("corpus").join(name), "seed-");
    assert!(!seeds.is_empty(), "no seeds in fuzz/corpus/{name}/");
    let mut inputs: Vec<(String, Vec<u8>)> = regressions
        .iter()
        .chain(&seeds)
        .map(|p| {
            let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), data)
        })
        .collect();
    inputs.extend(generated);
    let mut failures = Vec::new();
    for (what, data) in &inputs {
        let start = Instant::now();
        if let Err(why) = run(target, data) {
            failures.push(format!("{what}: {why}"));
        }
        let took = start.elapsed();
        if took > SLOW {
            failures.push(format!("{what}: took {took:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} inputs failed:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
}

/// Inputs too big to keep in git: a 1 MB line, and 1 MB of nesting.
fn big(line: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut long_line = line.to_vec();
    long_line.resize(1 << 20, b'x');
    long_line.push(b'\n');
    let mut nested = b"cmd = ".to_vec();
    nested.resize(1 << 20, b'[');
    vec![
        ("generated: a 1 MB line".into(), long_line),
        ("generated: 1 MB of [".into(), nested),
    ]
}

#[test]
fn toml_regressions() {
    replay("toml", harness::toml, big(b"cmd = \"/bin/true\" # "));
}

#[test]
fn going_format_regressions() {
    replay(
        "going_format",
        harness::going_format,
        big(b"cmd=/bin/echo "),
    );
}

#[test]
fn control_request_regressions() {
    replay("control_request", harness::control_request, big(b"status "));
}

/// The harness catches what it should: a sanity check of the test itself.
#[test]
fn the_harness_sees_a_panic() {
    fn boom(_: &[u8]) {
        panic!("boom");
    }
    assert_eq!(run(boom, b""), Err("boom".to_string()));
    assert_eq!(run(harness::toml, b"cmd = \"/bin/true\"\n"), Ok(()));
}

/// Keys are checked for clashes with a lookup, not a pass over every key
/// before them: 64 kB of distinct keys, once seconds, is quick.
#[test]
fn many_keys_are_not_quadratic() {
    let dir = fuzz_dir().join("regressions");
    for (format, file) in [
        (going::config::Format::Toml, "toml/slow-distinct-keys-64k"),
        (
            going::config::Format::Toml,
            "toml/slow-inline-table-keys-64k",
        ),
        (going::config::Format::Toml, "toml/slow-table-headers-64k"),
        (
            going::config::Format::Going,
            "going_format/slow-distinct-keys-64k",
        ),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).expect(file);
        let start = Instant::now();
        let problems = going::config::parse("web", format, &text).err();
        let took = start.elapsed();
        assert!(problems.is_some_and(|p| !p.is_empty()), "{file}");
        assert!(took < Duration::from_secs(3), "{file}: took {took:?}");
    }
}
