//! What each fuzz target does with one input, shared by the targets in
//! `fuzz_targets/` (libFuzzer, nightly) and by `tests/fuzz_regressions.rs`
//! (stable, replays `fuzz/regressions/` and the seeds). Each function feeds
//! the bytes through the same path going takes and panics when the parser
//! panics or an invariant below does not hold.
#![allow(dead_code)]

use going::config::{self, Format, Problem, going_format, toml_format};
use going::control::{self, MAX_REQUEST, Request};

/// The name the files are parsed as (a `depends-on` naming it is an error).
pub const NAME: &str = "web";

/// `NAME.toml`: the TOML reader on any text, and the whole of what going
/// does with a file (bytes to text, reader, keys).
pub fn toml(data: &[u8]) {
    config_file(data, Format::Toml);
    if let Ok(text) = std::str::from_utf8(data) {
        let entries = toml_format::entries(text);
        assert_eq!(entries, toml_format::entries(text), "not deterministic");
        match &entries {
            Ok(entries) => {
                assert!(
                    entries.windows(2).all(|w| w[0].line <= w[1].line),
                    "entries out of line order"
                );
                let last = last_line(text);
                for entry in entries {
                    assert_line(entry.line, last);
                }
            }
            Err(problems) => {
                assert_eq!(problems.len(), 1, "the reader stops at its first error");
                assert_problems(problems, text);
                assert!(problems[0].message.starts_with("TOML syntax: "));
            }
        }
    }
}

/// `NAME`: the going format's reader on any text, and the whole path.
pub fn going_format(data: &[u8]) {
    config_file(data, Format::Going);
    if let Ok(text) = std::str::from_utf8(data) {
        let read = going_format::entries(text);
        assert_eq!(read, going_format::entries(text), "not deterministic");
        let (entries, problems) = read;
        assert!(
            entries.windows(2).all(|w| w[0].line < w[1].line),
            "one entry a line, in line order"
        );
        let last = last_line(text);
        for entry in &entries {
            assert_line(entry.line, last);
            assert!(
                !problems.iter().any(|p| p.line == entry.line),
                "a line both an entry and a problem"
            );
            let key = entry.key.as_str();
            assert!(!key.is_empty() && key == key.trim() && !key.contains('='));
            assert!(!key.starts_with('#'));
            match &entry.value {
                config::Value::Text(value) => assert_eq!(value, value.trim()),
                other => panic!("the going format gave {other:?}"),
            }
        }
        if !problems.is_empty() {
            assert_problems(&problems, text);
            assert!(problems.iter().all(|p| p.message == "expected key=value"));
        }
    }
}

/// A file's bytes as `config::load` takes them: [`config::file_text`],
/// then [`config::parse`] (reader, then keys).
fn config_file(data: &[u8], format: Format) {
    let text = match config::file_text(data.to_vec()) {
        Ok(text) => text,
        Err(_) => {
            assert!(
                data.len() as u64 > config::MAX_FILE_SIZE || std::str::from_utf8(data).is_err()
            );
            return;
        }
    };
    let parsed = config::parse(NAME, format, &text);
    assert_eq!(
        parsed,
        config::parse(NAME, format, &text),
        "not deterministic"
    );
    match &parsed {
        Ok(spec) => {
            assert_eq!(spec.name, NAME);
            assert!(!spec.argv.is_empty(), "a service without a command");
            assert!(!spec.depends_on.iter().any(|d| d == NAME));
        }
        Err(problems) => {
            assert_problems(problems, &text);
            match format {
                // A TOML syntax error is the whole answer.
                Format::Toml => {
                    if let Err(read_problems) = toml_format::entries(&text) {
                        assert_eq!(&read_problems, problems);
                    }
                }
                // A bad line of the going format hides nothing else.
                Format::Going => {
                    for problem in going_format::entries(&text).1 {
                        assert!(problems.contains(&problem), "{problem:?} dropped");
                    }
                }
            }
        }
    }
}

/// The control socket: the bytes a client sends, read the way
/// `Server::read` reads them ([`control::request_from`] after every read):
/// all at once, and in reads of at most 512 bytes (its buffer), at least
/// four of them (each read rescans what came, and libFuzzer wants speed).
pub fn control_request(data: &[u8]) {
    let whole = served(data, usize::MAX);
    let pieces = served(data, 512.min(1 + data.len() / 4));
    // However the bytes arrive, a line that ends within the limit (or all
    // of a short request) is read the same.
    let newline = data.iter().position(|&b| b == b'\n');
    let within = match newline {
        Some(at) => at < MAX_REQUEST,
        None => data.len() <= MAX_REQUEST,
    };
    if within {
        assert_eq!(pieces, whole, "depends on how the bytes arrive");
    }
    if let Some(Ok(request)) = &pieces {
        check_request(request);
    }
    if let Some(Ok(request)) = &whole {
        check_request(request);
        // Only the words count, not the blanks between them.
        let line = &data[..newline.unwrap_or(data.len())];
        let line = std::str::from_utf8(line).expect("a request from a non-UTF-8 line");
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            control::parse_request(&words.join(" ")).as_ref(),
            Ok(request)
        );
    }
    for answer in [&whole, &pieces].into_iter().flatten() {
        if let Err(why) = answer {
            assert!(!why.is_empty());
        }
    }
    // The parser alone, on text of more than one line.
    if let (Some(_), Ok(text)) = (newline, std::str::from_utf8(data))
        && let Ok(request) = control::parse_request(text)
    {
        check_request(&request);
    }
}

/// What `Server::read` answers when a client sends `data`, `chunk` bytes
/// a read, then closes; `None` when it closes without sending anything.
fn served(data: &[u8], chunk: usize) -> Option<Result<Request, String>> {
    let mut input = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        input.extend_from_slice(piece);
        if let Some(request) = control::request_from(&input, false) {
            return Some(request);
        }
    }
    if input.is_empty() {
        return None;
    }
    let closed = control::request_from(&input, true);
    assert!(closed.is_some(), "a closed connection always has an answer");
    closed
}

fn check_request(request: &Request) {
    let names: &[String] = match request {
        Request::Status { names, .. } => {
            assert!(!names.iter().any(|n| n == "--json"));
            names
        }
        Request::Start(names)
        | Request::Stop(names)
        | Request::Restart(names)
        | Request::Pid(names)
        | Request::Signal { names, .. }
        | Request::Wait { names, .. } => {
            assert!(!names.is_empty(), "{request:?} without names");
            names
        }
        Request::Logs { name, .. } => std::slice::from_ref(name),
        Request::Reload | Request::Upgrade => return,
    };
    for name in names {
        assert!(!name.is_empty() && !name.starts_with('-'), "{request:?}");
        assert!(!name.chars().any(char::is_whitespace), "{request:?}");
    }
}

/// Lines of a text run from 1 to one past its last newline.
fn last_line(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count() + 1
}

fn assert_line(line: usize, last: usize) {
    assert!(
        (1..=last).contains(&line),
        "line {line} of a text of {last} lines"
    );
}

fn assert_problems(problems: &[Problem], text: &str) {
    assert!(!problems.is_empty(), "an error without a problem");
    assert!(
        problems.windows(2).all(|w| w[0].line <= w[1].line),
        "problems out of line order"
    );
    let last = last_line(text);
    for problem in problems {
        assert_line(problem.line, last);
        assert!(!problem.message.is_empty());
    }
}
