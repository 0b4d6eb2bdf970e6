//! `NAME.toml`: parsed by the toml crate into spanned tables, flattened
//! into entries that carry the line each key is on.

use super::{Entry, Problem, Value};
use toml::de::{DeTable, DeValue};

pub fn entries(text: &str) -> Result<Vec<Entry>, Vec<Problem>> {
    let table = DeTable::parse(text).map_err(|err| {
        let line = err.span().map_or(1, |span| line_of(text, span.start));
        let message = err.message().trim().replace('\n', " ");
        vec![Problem::new(line, format!("TOML syntax: {message}"))]
    })?;
    let mut entries = Vec::new();
    for (key, value) in table.get_ref().iter() {
        let line = line_of(text, key.span().start);
        let key = key.get_ref().to_string();
        // Tables of keys (`[env]`, `health-check = { ... }`) become one
        // `TABLE.KEY` entry a key, as the going format writes them.
        if (key == "env" || key == "health-check")
            && let Some(vars) = value.get_ref().as_table()
        {
            for (var, var_value) in vars.iter() {
                entries.push(Entry {
                    key: format!("{key}.{}", var.get_ref()),
                    line: line_of(text, var.span().start),
                    value: convert(var_value.get_ref()),
                });
            }
            continue;
        }
        entries.push(Entry {
            key,
            line,
            value: convert(value.get_ref()),
        });
    }
    entries.sort_by_key(|entry| entry.line);
    Ok(entries)
}

fn convert(value: &DeValue<'_>) -> Value {
    match value {
        DeValue::String(text) => Value::Str(text.to_string()),
        DeValue::Integer(int) => match i64::from_str_radix(int.as_str(), int.radix()) {
            Ok(n) => Value::Int(n),
            Err(_) => Value::Other("integer out of range"),
        },
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Array(items) => {
            Value::List(items.iter().map(|item| convert(item.get_ref())).collect())
        }
        other => Value::Other(other.type_str()),
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let before = text.get(..offset).unwrap_or(text);
    before.bytes().filter(|&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_lines() {
        let text = "# web\ncmd = [\"/bin/sleep\", \"1\"]\n\n[env]\nA = \"1\"\nB = 2\n";
        let got = entries(text).unwrap_or_default();
        let keys: Vec<_> = got.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(keys, [("cmd", 2), ("env.A", 5), ("env.B", 6)]);
        assert_eq!(
            got.first().map(|e| &e.value),
            Some(&Value::List(vec![
                Value::Str("/bin/sleep".into()),
                Value::Str("1".into())
            ]))
        );
    }

    #[test]
    fn dotted_env_keys_work() {
        let got = entries("cmd = \"x\"\nenv.A = \"1\"\n").unwrap_or_default();
        assert_eq!(
            got.get(1).map(|e| (e.key.as_str(), e.line)),
            Some(("env.A", 2))
        );
    }

    #[test]
    fn types_are_kept() {
        let got = entries("a = 0o22\nb = true\nc = 1.5\nd = {x = 1}\n").unwrap_or_default();
        let values: Vec<_> = got.iter().map(|e| e.value.clone()).collect();
        assert_eq!(
            values,
            [
                Value::Int(0o22),
                Value::Bool(true),
                Value::Other("float"),
                Value::Other("table")
            ]
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let got = entries("cmd = \"x\"\nstop-timeout = \n");
        let problems = got.err().unwrap_or_default();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems.first().map(|p| p.line), Some(2));
        assert!(
            problems
                .first()
                .is_some_and(|p| p.message.starts_with("TOML syntax: "))
        );
        let dup = entries("cmd = \"x\"\ncmd = \"y\"\n")
            .err()
            .unwrap_or_default();
        assert_eq!(dup.first().map(|p| p.line), Some(2));
    }
}
