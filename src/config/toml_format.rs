//! `NAME.toml`: the toml crate's parse, flattened into one entry a value
//! (`env.A`, `health-check.cmd`), each at the line of its key.

use super::{Entry, Problem, Value};
use toml::de::{DeTable, DeValue};

/// Deeper nesting than any service file needs. The crate refuses more than
/// 80 levels itself; this is the bound going.d(5) documents.
const MAX_DEPTH: usize = 16;

/// Every value of the document, in file order; a syntax error voids the
/// whole file, as nothing after it can be trusted.
pub fn entries(text: &str) -> Result<Vec<Entry>, Vec<Problem>> {
    let lines = Lines::new(text);
    let document = DeTable::parse(text).map_err(|err| {
        let span = err.span().unwrap_or_default();
        let why = match err.message() {
            "duplicate key" => {
                let key = text.get(span.clone()).unwrap_or("");
                format!("duplicate key {:?}", key.trim_matches(['"', '\'']))
            }
            // The crate's own bound (80 levels), worded as ours.
            "recursion limit" | "cannot recurse further; max recursion depth met" => {
                "nested too deep".to_string()
            }
            message => message.to_string(),
        };
        let at = lines.of(span.start);
        vec![Problem::new(at, format!("TOML syntax: {why}"))]
    })?;
    let mut leaves = Vec::new();
    let mut too_deep = Vec::new();
    let mut path = String::new();
    flatten(document.get_ref(), &mut path, 0, &mut leaves, &mut too_deep);
    if let Some(&at) = too_deep.iter().min() {
        return Err(vec![Problem::new(
            lines.of(at),
            "TOML syntax: nested too deep",
        )]);
    }
    // File order: the crate's tables are sorted by key.
    crate::util::sort_by_key(&mut leaves, |&(at, _)| at);
    Ok(leaves
        .into_iter()
        .map(|(at, (key, value))| Entry {
            key,
            line: lines.of(at),
            value,
        })
        .collect())
}

type Leaf = (usize, (String, Value));

/// Each value of `table`, itself inside `depth` tables, under `path` (a
/// prefix ending in `.`, or empty), at the byte offset of its key;
/// `too_deep` gets the offsets of the keys of tables and arrays nested
/// beyond [`MAX_DEPTH`].
fn flatten(
    table: &DeTable<'_>,
    path: &mut String,
    depth: usize,
    leaves: &mut Vec<Leaf>,
    too_deep: &mut Vec<usize>,
) {
    for (key, value) in table.iter() {
        let at = key.span().start;
        let len = path.len();
        path.push_str(key.get_ref());
        match value.get_ref() {
            DeValue::Table(inner) if depth < MAX_DEPTH => {
                path.push('.');
                flatten(inner, path, depth + 1, leaves, too_deep);
            }
            // `[[version]]`: each table's keys as `version.N.KEY`.
            DeValue::Array(items)
                if depth == 0
                    && path == "version"
                    && items
                        .iter()
                        .all(|item| matches!(item.get_ref(), DeValue::Table(_))) =>
            {
                for (index, item) in items.iter().enumerate() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        *path = format!("version.{index}.");
                        flatten(inner, path, depth + 2, leaves, too_deep);
                    }
                }
            }
            other => match leaf(other, depth) {
                Some(value) => leaves.push((at, (path.clone(), value))),
                None => too_deep.push(at),
            },
        }
        path.truncate(len);
    }
}

/// A value inside `depth` arrays and tables, as the keys read it; `None`
/// when it is one more than [`MAX_DEPTH`] allows.
fn leaf(value: &DeValue<'_>, depth: usize) -> Option<Value> {
    let container = matches!(value, DeValue::Array(_) | DeValue::Table(_));
    if container && depth >= MAX_DEPTH {
        return None;
    }
    Some(match value {
        DeValue::String(text) => Value::Str(text.to_string()),
        DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix())
            .map_or(Value::Other("integer out of range"), Value::Int),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Float(_) => Value::Other("float"),
        DeValue::Datetime(datetime) => Value::Datetime(datetime.to_string()),
        DeValue::Table(_) => Value::Other("table"),
        DeValue::Array(items) => Value::List(
            items
                .iter()
                .map(|item| leaf(item.get_ref(), depth + 1))
                .collect::<Option<_>>()?,
        ),
    })
}

/// Byte offsets to line numbers, by binary search over the line starts.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(text.match_indices('\n').map(|(at, _)| at).collect())
    }

    /// The 1-based line of the byte at `at`.
    fn of(&self, at: usize) -> usize {
        self.0.partition_point(|&newline| newline < at) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(String, usize, Value)> {
        entries(text)
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.key, e.line, e.value))
            .collect()
    }

    fn error(text: &str) -> Option<(usize, String)> {
        let problems = entries(text).err()?;
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems.into_iter().next().map(|p| (p.line, p.message))
    }

    fn error_line(text: &str) -> Option<usize> {
        error(text).map(|(line, _)| line)
    }

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    #[test]
    fn keys_carry_their_lines_in_file_order() {
        let text = "# web\ncmd = [\"/bin/sleep\",\n  \"1\"]\n\n[env]\nB = \"1\"\nA = 2\n";
        assert_eq!(
            values(text),
            [
                ("cmd".into(), 2, Value::List(vec![s("/bin/sleep"), s("1")])),
                ("env.B".into(), 6, s("1")),
                ("env.A".into(), 7, Value::Int(2)),
            ]
        );
        assert_eq!(
            values("a = { z = 1, b = 2 }\n"),
            [
                ("a.z".into(), 1, Value::Int(1)),
                ("a.b".into(), 1, Value::Int(2)),
            ]
        );
    }

    #[test]
    fn dotted_and_quoted_keys_and_inline_tables() {
        let text =
            "env.A = \"1\"\n\"env\".'B' = 'x'\nhealth-check = { cmd = \"c\", interval = 2 }\n";
        assert_eq!(
            values(text),
            [
                ("env.A".into(), 1, s("1")),
                ("env.B".into(), 2, s("x")),
                ("health-check.cmd".into(), 3, s("c")),
                ("health-check.interval".into(), 3, Value::Int(2)),
            ]
        );
    }

    #[test]
    fn every_string_form() {
        let text = "a = \"tab\\tq\\\"\\u00e9\"\nb = 'C:\\path'\nc = \"\"\"\nline one\nline two\"\"\"\nd = '''\nraw \\n'''\ne = \"\"\"a \\\n    b\"\"\"\n";
        let got: Vec<Value> = values(text).into_iter().map(|(_, _, v)| v).collect();
        assert_eq!(
            got,
            [
                s("tab\tq\"é"),
                s("C:\\path"),
                s("line one\nline two"),
                s("raw \\n"),
                s("a b")
            ]
        );
    }

    #[test]
    fn every_type_is_named() {
        let text = "a = 0o22\nb = -1_000\nc = 0xff\nd = true\ne = false\nf = [ 1,\n  2, # two\n]\ng = 1.5\nh = 1979-05-27T07:32:00Z\ni = 9223372036854775808\nj = +3\nk = [{ x = 1 }]\n[[l]]\n";
        let got: Vec<Value> = values(text).into_iter().map(|(_, _, v)| v).collect();
        assert_eq!(
            got,
            [
                Value::Int(0o22),
                Value::Int(-1000),
                Value::Int(255),
                Value::Bool(true),
                Value::Bool(false),
                Value::List(vec![Value::Int(1), Value::Int(2)]),
                Value::Other("float"),
                Value::Datetime("1979-05-27T07:32:00Z".into()),
                Value::Other("integer out of range"),
                Value::Int(3),
                Value::List(vec![Value::Other("table")]),
                Value::List(vec![Value::Other("table")]),
            ]
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(error_line("cmd = \"x\"\nstop-timeout = \n"), Some(2));
        assert_eq!(error_line("a = \"open\n"), Some(1));
        assert_eq!(error_line("a = 1 b = 2\n"), Some(1));
        assert_eq!(error_line("a = 007\n"), Some(1));
        assert_eq!(error_line("a = [1 2]\n"), Some(1));
        assert_eq!(error_line("a = \"\\q\"\n"), Some(1));
        assert_eq!(error_line("x\n"), Some(1));
        assert_eq!(error_line("a = 1\na.b = 2\n"), Some(2));
        assert_eq!(error_line("\n\ncmd = [\n"), Some(3));
        assert_eq!(
            error("a = 1\r\nb = 'x'\r"),
            Some((
                2,
                "TOML syntax: carriage return must be followed by newline, expected newline".into()
            ))
        );
    }

    #[test]
    fn a_duplicate_key_is_named() {
        let dup = |key: &str| format!("TOML syntax: duplicate key {key:?}");
        assert_eq!(error("cmd = \"x\"\ncmd = \"y\"\n"), Some((2, dup("cmd"))));
        assert_eq!(error("[env]\nA = \"1\"\n[env]\n"), Some((3, dup("env"))));
        assert_eq!(error("env.A = \"1\"\nenv = 2\n"), Some((2, dup("env"))));
        assert_eq!(error("a = { b = 1, b = 2 }\n"), Some((1, dup("b"))));
        assert_eq!(error("x.a = 1\nx.b = 1\n\"x\" = 2\n"), Some((3, dup("x"))));
        assert_eq!(error("a.b = 1\n[a.b]\n"), Some((2, dup("b"))));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let too_deep = Some((1, "TOML syntax: nested too deep".to_string()));
        let arrays = |n: usize| format!("a = {}1{}\n", "[".repeat(n), "]".repeat(n));
        let tables = |n: usize| format!("a = {}1{}\n", "{ b = ".repeat(n), " }".repeat(n));
        assert_eq!(values(&arrays(16)).len(), 1);
        assert_eq!(error(&arrays(17)), too_deep);
        assert_eq!(values(&tables(16)).len(), 1);
        assert_eq!(error(&format!("\n{}", tables(17))).map(|(l, _)| l), Some(2));
        // Beyond the crate's own bound, its refusal reads the same.
        assert_eq!(error(&arrays(60_000)), too_deep);
        assert_eq!(error(&tables(10_000)), too_deep);
        assert_eq!(error(&format!("{} = 1\n", ["k"; 100].join("."))), too_deep);
        let header = format!("[{}]\n", ["k"; 17].join("."));
        assert_eq!(error(&header), too_deep);
    }

    #[test]
    fn lines_of_offsets() {
        let lines = Lines::new("ab\ncd\n\ne");
        let got: Vec<usize> = (0..8).map(|at| lines.of(at)).collect();
        assert_eq!(got, [1, 1, 1, 2, 2, 2, 3, 4]);
    }
}
