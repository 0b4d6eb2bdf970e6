//! The original going format: `key=value` lines, `#` comments, the value
//! raw to the end of the line. A bad line spoils only itself.

use super::{Entry, Problem, Value};

/// The good lines' entries, and a problem for each bad line.
pub fn entries(text: &str) -> (Vec<Entry>, Vec<Problem>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => entries.push(Entry {
                key: key.trim().to_string(),
                line: line_number,
                value: Value::Text(value.trim().to_string()),
            }),
            _ => problems.push(Problem::new(line_number, "expected key=value")),
        }
    }
    (entries, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_entries() {
        let text = "# salt\ncmd=/usr/bin/salt-minion -l info\n\n  env.A = b=c \nstop-timeout=2\n";
        let (got, problems) = entries(text);
        assert_eq!(problems, []);
        let keys: Vec<_> = got.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(keys, [("cmd", 2), ("env.A", 4), ("stop-timeout", 5)]);
        assert_eq!(
            got.first().map(|e| &e.value),
            Some(&Value::Text("/usr/bin/salt-minion -l info".into()))
        );
        assert_eq!(
            got.get(1).map(|e| &e.value),
            Some(&Value::Text("b=c".into()))
        );
    }

    #[test]
    fn lines_without_equals_are_errors_and_the_rest_is_read() {
        let (got, problems) = entries("cmd=/bin/true\nbogus\n=x\nnice=1\n");
        assert_eq!(
            problems,
            [
                Problem::new(2, "expected key=value"),
                Problem::new(3, "expected key=value")
            ]
        );
        let keys: Vec<_> = got.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(keys, [("cmd", 1), ("nice", 4)]);
    }
}
