//! `NAME.toml`: a TOML 1.0 reader for service files, written for them:
//! every string form, integers, booleans, arrays, inline tables, tables and
//! dotted keys, each value with its line. Floats and dates are read but
//! no key takes them; arrays of tables are refused. The toml crate cost
//! going 90 kB of its 1 MB budget; this costs a few.

use super::{Entry, Problem, Value};
use std::collections::BTreeSet;
use std::ops::Bound;

pub fn entries(text: &str) -> Result<Vec<Entry>, Vec<Problem>> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        at: 0,
        line: 1,
        depth: 0,
    };
    let mut leaves = Leaves::default();
    let mut tables = BTreeSet::new();
    reader
        .document(&mut leaves, &mut tables)
        .map_err(|(line, why)| vec![Problem::new(line, format!("TOML syntax: {why}"))])?;
    let mut entries = leaves.entries;
    entries.sort_by_key(|e| e.line);
    Ok(entries)
}

/// The values read so far, in the order read, and their key paths, sorted
/// so that a clash costs a lookup rather than a pass over every value (a
/// 64 kB file of distinct keys took seconds).
#[derive(Default)]
struct Leaves {
    entries: Vec<Entry>,
    /// No path here is a prefix of another.
    paths: BTreeSet<Vec<String>>,
}

impl Leaves {
    /// Whether a value at `path` would be one already there, or inside one
    /// (`a.b` after `a`), or hold one (`a` after `a.b`).
    fn clash(&self, path: &[String]) -> bool {
        // The paths that start with `path` sort right from it on; a path
        // that `path` starts with is the last one up to it, as no path
        // between the two can be in the set (it would start with the
        // prefix, which the set cannot hold with it).
        let mut after = self
            .paths
            .range::<[String], _>((Bound::Included(path), Bound::Unbounded));
        let mut upto = self
            .paths
            .range::<[String], _>((Bound::Unbounded, Bound::Included(path)));
        after.next().is_some_and(|p| p.starts_with(path))
            || upto.next_back().is_some_and(|p| path.starts_with(p))
    }

    fn push(&mut self, path: Vec<String>, line: usize, value: Value) {
        self.entries.push(Entry {
            key: path.join("."),
            line,
            value,
        });
        self.paths.insert(path);
    }
}

type Failure = (usize, String);

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    line: usize,
    /// Arrays and inline tables open now: bounded, so that no file can
    /// exhaust going's stack.
    depth: usize,
}

/// Deeper nesting than any service file needs.
const MAX_DEPTH: usize = 16;

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.at + offset).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        if byte == b'\n' {
            self.line += 1;
        }
        Some(byte)
    }

    fn fail<T>(&self, why: impl Into<String>) -> Result<T, Failure> {
        Err((self.line, why.into()))
    }

    fn starts_with(&self, prefix: &[u8]) -> bool {
        self.bytes
            .get(self.at..)
            .is_some_and(|rest| rest.starts_with(prefix))
    }

    /// Blanks within a line.
    fn blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// Blanks, comments and newlines (inside arrays).
    fn blanks_and_newlines(&mut self) -> Result<(), Failure> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n') => {
                    self.bump();
                }
                Some(b'\r') if self.peek_at(1) == Some(b'\n') => {
                    self.bump();
                }
                Some(b'#') => self.comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn comment(&mut self) -> Result<(), Failure> {
        while let Some(byte) = self.peek() {
            if byte == b'\n' {
                break;
            }
            if byte < 0x20 && byte != b'\t' && !(byte == b'\r' && self.peek_at(1) == Some(b'\n')) {
                return self.fail("control character in a comment");
            }
            self.at += 1;
        }
        Ok(())
    }

    /// After a key/value or a table header: nothing but a comment.
    fn end_of_line(&mut self) -> Result<(), Failure> {
        self.blanks();
        if self.peek() == Some(b'#') {
            self.comment()?;
        }
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.bump();
                Ok(())
            }
            Some(b'\r') if self.peek_at(1) == Some(b'\n') => {
                self.bump();
                self.bump();
                Ok(())
            }
            Some(_) => self.fail("expected the end of the line"),
        }
    }

    fn document(
        &mut self,
        leaves: &mut Leaves,
        tables: &mut BTreeSet<Vec<String>>,
    ) -> Result<(), Failure> {
        let mut table: Vec<String> = Vec::new();
        loop {
            self.blanks_and_newlines()?;
            let Some(byte) = self.peek() else {
                return Ok(());
            };
            if byte == b'[' {
                if self.peek_at(1) == Some(b'[') {
                    return self.fail("arrays of tables are not supported in service files");
                }
                self.bump();
                self.blanks();
                let path = self.key()?;
                self.blanks();
                if self.peek() != Some(b']') {
                    return self.fail("expected ] after the table name");
                }
                self.bump();
                if tables.contains(&path) || leaves.paths.contains(&path) {
                    return self.fail(format!("table {} defined twice", path.join(".")));
                }
                tables.insert(path.clone());
                table = path;
                self.end_of_line()?;
                continue;
            }
            let line = self.line;
            let mut path = table.clone();
            path.extend(self.key()?);
            self.blanks();
            if self.peek() != Some(b'=') {
                return self.fail("expected = after the key");
            }
            self.bump();
            self.blanks();
            self.value_into(path, line, leaves)?;
            self.end_of_line()?;
        }
    }

    /// Stores `path = value`, an inline table as one leaf a key.
    fn value_into(
        &mut self,
        path: Vec<String>,
        line: usize,
        leaves: &mut Leaves,
    ) -> Result<(), Failure> {
        if self.peek() == Some(b'{') {
            if self.depth >= MAX_DEPTH {
                return self.fail("nested too deep");
            }
            self.depth += 1;
            let done = self.inline_table(path, leaves);
            self.depth -= 1;
            return done;
        }
        let value = self.value()?;
        if leaves.clash(&path) {
            return self.fail(format!("duplicate key {:?}", path.join(".")));
        }
        leaves.push(path, line, value);
        Ok(())
    }

    /// The body of `{ k = v, ... }`, the `{` not yet read.
    fn inline_table(&mut self, path: Vec<String>, leaves: &mut Leaves) -> Result<(), Failure> {
        self.bump();
        self.blanks_and_newlines()?;
        let mut keys = BTreeSet::new();
        if self.peek() == Some(b'}') {
            self.bump();
            return Ok(());
        }
        loop {
            let key_line = self.line;
            let key = self.key()?;
            if !keys.insert(key.clone()) {
                return self.fail(format!("duplicate key {:?}", key.join(".")));
            }
            self.blanks();
            if self.peek() != Some(b'=') {
                return self.fail("expected = after the key");
            }
            self.bump();
            self.blanks();
            let mut inner = path.clone();
            inner.extend(key);
            self.value_into(inner, key_line, leaves)?;
            self.blanks_and_newlines()?;
            match self.bump() {
                Some(b',') => {
                    self.blanks_and_newlines()?;
                    if self.peek() == Some(b'}') {
                        self.bump();
                        return Ok(());
                    }
                }
                Some(b'}') => return Ok(()),
                _ => return self.fail("expected , or } in the inline table"),
            }
        }
    }

    /// A dotted key: `a`, `"a b".c`, `'x'`.
    fn key(&mut self) -> Result<Vec<String>, Failure> {
        let mut parts = Vec::new();
        loop {
            self.blanks();
            let part = match self.peek() {
                Some(b'"') => self.basic_string()?,
                Some(b'\'') => self.literal_string()?,
                _ => {
                    let start = self.at;
                    while self
                        .peek()
                        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        self.at += 1;
                    }
                    if self.at == start {
                        return self.fail("expected a key");
                    }
                    String::from_utf8_lossy(self.bytes.get(start..self.at).unwrap_or_default())
                        .into_owned()
                }
            };
            parts.push(part);
            self.blanks();
            if self.peek() != Some(b'.') {
                return Ok(parts);
            }
            self.bump();
        }
    }

    fn value(&mut self) -> Result<Value, Failure> {
        match self.peek() {
            Some(b'"') => {
                if self.starts_with(b"\"\"\"") {
                    self.multiline_basic_string().map(Value::Str)
                } else {
                    self.basic_string().map(Value::Str)
                }
            }
            Some(b'\'') => {
                if self.starts_with(b"'''") {
                    self.multiline_literal_string().map(Value::Str)
                } else {
                    self.literal_string().map(Value::Str)
                }
            }
            Some(b'[') => self.array(),
            Some(b'{') => self.fail("an inline table is not a value here"),
            Some(b't') if self.starts_with(b"true") => {
                self.at += 4;
                Ok(Value::Bool(true))
            }
            Some(b'f') if self.starts_with(b"false") => {
                self.at += 5;
                Ok(Value::Bool(false))
            }
            Some(_) => self.number_or_date(),
            None => self.fail("expected a value"),
        }
    }

    fn array(&mut self) -> Result<Value, Failure> {
        if self.depth >= MAX_DEPTH {
            return self.fail("nested too deep");
        }
        self.depth += 1;
        let array = self.array_items();
        self.depth -= 1;
        array
    }

    fn array_items(&mut self) -> Result<Value, Failure> {
        self.bump();
        let mut items = Vec::new();
        loop {
            self.blanks_and_newlines()?;
            if self.peek() == Some(b']') {
                self.bump();
                return Ok(Value::List(items));
            }
            if self.peek() == Some(b'{') {
                return self.fail("inline tables in arrays are not supported in service files");
            }
            items.push(self.value()?);
            self.blanks_and_newlines()?;
            match self.bump() {
                Some(b',') => {}
                Some(b']') => return Ok(Value::List(items)),
                _ => return self.fail("expected , or ] in the array"),
            }
        }
    }

    /// Integers (decimal, 0x, 0o, 0b, with `_`), and floats, dates and
    /// times, which are told apart only to name their type.
    fn number_or_date(&mut self) -> Result<Value, Failure> {
        let start = self.at;
        while self.peek().is_some_and(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'_' | b'.' | b':')
        }) {
            self.at += 1;
        }
        // A date and a time may be separated by one blank.
        if self.peek() == Some(b' ')
            && self.peek_at(1).is_some_and(|b| b.is_ascii_digit())
            && self
                .bytes
                .get(start..self.at)
                .is_some_and(|t| t.len() == 10 && t.get(4) == Some(&b'-'))
        {
            self.at += 1;
            while self.peek().is_some_and(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b':')
            }) {
                self.at += 1;
            }
        }
        let token =
            std::str::from_utf8(self.bytes.get(start..self.at).unwrap_or_default()).unwrap_or("");
        if token.is_empty() {
            return self.fail("expected a value");
        }
        if token.len() >= 5 && (token.get(4..5) == Some("-") || token.get(2..3) == Some(":")) {
            return Ok(Value::Other("datetime"));
        }
        let unsigned = token.trim_start_matches(['+', '-']);
        if matches!(unsigned, "inf" | "nan") {
            return Ok(Value::Other("float"));
        }
        let (radix, digits) = match unsigned.get(..2) {
            Some("0x") if token == unsigned => (16, unsigned.get(2..).unwrap_or("")),
            Some("0o") if token == unsigned => (8, unsigned.get(2..).unwrap_or("")),
            Some("0b") if token == unsigned => (2, unsigned.get(2..).unwrap_or("")),
            _ => (10, unsigned),
        };
        if radix == 10 && digits.contains(['.', 'e', 'E']) {
            return if valid_float(digits) {
                Ok(Value::Other("float"))
            } else {
                self.fail(format!("invalid number {token:?}"))
            };
        }
        let underscores_ok =
            !digits.starts_with('_') && !digits.ends_with('_') && !digits.contains("__");
        let leading_zero = radix == 10 && digits.len() > 1 && digits.starts_with('0');
        if digits.is_empty() || !underscores_ok || leading_zero {
            return self.fail(format!("invalid number {token:?}"));
        }
        let clean: String = digits.chars().filter(|&c| c != '_').collect();
        if !clean.chars().all(|c| c.is_digit(radix)) {
            return self.fail(format!("invalid value {token:?}"));
        }
        let negative = token.starts_with('-');
        let magnitude = match i128::from_str_radix(&clean, radix) {
            Ok(n) => n,
            Err(_) => return Ok(Value::Other("integer out of range")),
        };
        let value = if negative { -magnitude } else { magnitude };
        Ok(i64::try_from(value).map_or(Value::Other("integer out of range"), Value::Int))
    }

    fn basic_string(&mut self) -> Result<String, Failure> {
        self.bump();
        let mut out = Vec::new();
        loop {
            if matches!(self.peek(), None | Some(b'\n')) {
                return self.fail("unterminated string");
            }
            match self.bump() {
                None => return self.fail("unterminated string"),
                Some(b'"') => return self.utf8(out),
                Some(b'\\') => self.escape(&mut out)?,
                Some(byte) if byte < 0x20 && byte != b'\t' => {
                    return self.fail("control character in a string");
                }
                Some(byte) => out.push(byte),
            }
        }
    }

    fn multiline_basic_string(&mut self) -> Result<String, Failure> {
        self.at += 3;
        self.skip_first_newline();
        let mut out = Vec::new();
        loop {
            if self.starts_with(b"\"\"\"") {
                self.at += 3;
                // Up to two more quotes belong to the string.
                for _ in 0..2 {
                    if self.peek() == Some(b'"') {
                        self.bump();
                        out.push(b'"');
                    }
                }
                return self.utf8(out);
            }
            match self.bump() {
                None => return self.fail("unterminated string"),
                Some(b'\\') => {
                    // A backslash at the end of a line trims the break and
                    // the blanks after it.
                    let rest = self.at;
                    self.blanks();
                    if matches!(self.peek(), Some(b'\n' | b'\r')) {
                        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                            self.bump();
                        }
                    } else {
                        self.at = rest;
                        self.escape(&mut out)?;
                    }
                }
                Some(byte) if byte < 0x20 && !matches!(byte, b'\t' | b'\n' | b'\r') => {
                    return self.fail("control character in a string");
                }
                Some(byte) => out.push(byte),
            }
        }
    }

    fn literal_string(&mut self) -> Result<String, Failure> {
        self.bump();
        let start = self.at;
        loop {
            if matches!(self.peek(), None | Some(b'\n')) {
                return self.fail("unterminated string");
            }
            match self.bump() {
                None => return self.fail("unterminated string"),
                Some(b'\'') => {
                    let bytes = self
                        .bytes
                        .get(start..self.at - 1)
                        .unwrap_or_default()
                        .to_vec();
                    return self.utf8(bytes);
                }
                Some(byte) if byte < 0x20 && byte != b'\t' => {
                    return self.fail("control character in a string");
                }
                Some(_) => {}
            }
        }
    }

    fn multiline_literal_string(&mut self) -> Result<String, Failure> {
        self.at += 3;
        self.skip_first_newline();
        let start = self.at;
        loop {
            if self.starts_with(b"'''") {
                let mut end = self.at;
                self.at += 3;
                for _ in 0..2 {
                    if self.peek() == Some(b'\'') {
                        self.bump();
                        end += 1;
                    }
                }
                let bytes = self.bytes.get(start..end).unwrap_or_default().to_vec();
                return self.utf8(bytes);
            }
            if self.bump().is_none() {
                return self.fail("unterminated string");
            }
        }
    }

    fn skip_first_newline(&mut self) {
        if self.starts_with(b"\r\n") {
            self.bump();
        }
        if self.peek() == Some(b'\n') {
            self.bump();
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), Failure> {
        let simple = match self.bump() {
            Some(b'b') => b'\x08',
            Some(b't') => b'\t',
            Some(b'n') => b'\n',
            Some(b'f') => b'\x0c',
            Some(b'r') => b'\r',
            Some(b'e') => b'\x1b',
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'u') => return self.unicode(4, out),
            Some(b'U') => return self.unicode(8, out),
            _ => return self.fail("invalid escape in a string"),
        };
        out.push(simple);
        Ok(())
    }

    fn unicode(&mut self, digits: usize, out: &mut Vec<u8>) -> Result<(), Failure> {
        let hex = self
            .bytes
            .get(self.at..self.at + digits)
            .and_then(|h| std::str::from_utf8(h).ok());
        let Some(c) = hex
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
        else {
            return self.fail("invalid unicode escape");
        };
        self.at += digits;
        let mut buffer = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
        Ok(())
    }

    fn utf8(&self, bytes: Vec<u8>) -> Result<String, Failure> {
        String::from_utf8(bytes).or_else(|_| self.fail("a string is not valid UTF-8"))
    }
}

/// `1.5`, `-0.25`, `6.02e23`, `1e-3`, with `_` between digits.
fn valid_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.trim_start_matches(['+', '-']))),
        None => (text, None),
    };
    let digits = |part: &str| {
        !part.is_empty()
            && part.chars().all(|c| c.is_ascii_digit() || c == '_')
            && !part.starts_with('_')
            && !part.ends_with('_')
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(digits)
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

    fn error_line(text: &str) -> Option<usize> {
        entries(text).err().and_then(|p| p.first().map(|p| p.line))
    }

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    #[test]
    fn keys_carry_their_lines() {
        let text = "# web\ncmd = [\"/bin/sleep\", \"1\"]\n\n[env]\nA = \"1\"\nB = 2\n";
        assert_eq!(
            values(text),
            [
                ("cmd".into(), 2, Value::List(vec![s("/bin/sleep"), s("1")])),
                ("env.A".into(), 5, s("1")),
                ("env.B".into(), 6, Value::Int(2)),
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
    fn numbers_booleans_arrays() {
        let text = "a = 0o22\nb = -1_000\nc = 0xff\nd = true\ne = false\nf = [ 1,\n  2, # two\n]\ng = 1.5\nh = 1979-05-27T07:32:00Z\ni = 9223372036854775808\nj = +3\n";
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
                Value::Other("datetime"),
                Value::Other("integer out of range"),
                Value::Int(3),
            ]
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(error_line("cmd = \"x\"\nstop-timeout = \n"), Some(2));
        assert_eq!(error_line("cmd = \"x\"\ncmd = \"y\"\n"), Some(2));
        assert_eq!(error_line("a = \"open\n"), Some(1));
        assert_eq!(error_line("a = 1 b = 2\n"), Some(1));
        assert_eq!(error_line("a = 007\n"), Some(1));
        assert_eq!(error_line("[env]\nA = 1\n[env]\n"), Some(3));
        assert_eq!(error_line("[[x]]\n"), Some(1));
        assert_eq!(error_line("a = [1 2]\n"), Some(1));
        assert_eq!(error_line("a = { b = 1, b = 2 }\n"), Some(1));
        assert_eq!(error_line("a = \"\\q\"\n"), Some(1));
        assert_eq!(error_line("x\n"), Some(1));
        assert_eq!(error_line("env.A = 1\nenv = 2\n"), Some(2));
        let problems = entries("a = \n").err().unwrap_or_default();
        assert!(
            problems
                .first()
                .is_some_and(|p| p.message.starts_with("TOML syntax: "))
        );
    }

    #[test]
    fn a_key_clashes_with_its_prefixes_and_extensions_only() {
        assert_eq!(error_line("a.b = 1\na = 2\n"), Some(2));
        assert_eq!(error_line("a = 1\na.b = 2\n"), Some(2));
        assert_eq!(error_line("a.b.c = 1\nx = 0\na.b = 2\n"), Some(3));
        assert_eq!(error_line("a = 1\naa = 1\na.b = 2\n"), Some(3));
        assert_eq!(error_line("x.a = 1\nx.b = 1\nx = 2\n"), Some(3));
        assert_eq!(error_line("a.b = 1\n[a.b]\n"), Some(2));
        assert_eq!(error_line("a = { b = {}, b = {} }\n"), Some(1));
        assert_eq!(
            values("a.b = 1\na.c = 2\nab = 3\na.bc = 4\n[x]\ny = 5\n").len(),
            5
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
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = format!("a = {}{}\n", "[".repeat(60_000), "]".repeat(60_000));
        assert_eq!(error_line(&deep), Some(1));
        let tables = format!("a = {}1{}\n", "{ b = ".repeat(10_000), " }".repeat(10_000));
        assert_eq!(error_line(&tables), Some(1));
        assert_eq!(values("a = [[[1]]]\n").len(), 1);
        assert_eq!(values("a = { b = { c = 1 } }\nd = { e = 2 }\n").len(), 2);
    }

    #[test]
    fn windows_line_ends_and_comments() {
        assert_eq!(
            values("a = 1 # one\r\nb = 'x'\r\n"),
            [("a".into(), 1, Value::Int(1)), ("b".into(), 2, s("x"))]
        );
    }
}
