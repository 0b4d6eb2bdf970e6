//! `NAME.template`: a service file's text with `{{ name }}` placeholders,
//! filled from the `[vars]` of the service that uses it.
//!
//! Values go in raw, as procman's do: the result is then read as TOML, so
//! a value inside a TOML string must not hold a `"`, and one outside a
//! string can be a number or an array (`restart-delay = {{ delay }}`). A
//! value may not hold a line break, so line N of the result is line N of
//! the template and an error in the result is reported at the template's
//! line as it is. Text such as Go's `{{.Names}}`, whose inside is not a
//! name, is kept as written; there is no other escape.

use super::{MAX_FILE_SIZE, Problem};

/// `template` with each `{{ name }}` replaced by `var(name)`, or every
/// placeholder that cannot be (at its template line).
pub fn expand<'v>(
    template: &str,
    var: impl Fn(&str) -> Option<&'v str>,
) -> Result<String, Vec<Problem>> {
    let mut out = String::with_capacity(template.len());
    let mut problems = Vec::new();
    for (line, number) in template.split_inclusive('\n').zip(1..) {
        let mut rest = line;
        while let Some((before, after_open)) = rest.split_once("{{") {
            out.push_str(before);
            let Some((inside, after)) = after_open.split_once("}}") else {
                problems.push(Problem::new(number, "\"{{\" with no \"}}\" on its line"));
                rest = "";
                break;
            };
            rest = after;
            let name = inside.trim_matches([' ', '\t']);
            if !super::is_service_name(name) {
                if inside
                    .chars()
                    .all(|c| c == ' ' || c == '\t' || is_var_char(c))
                {
                    problems.push(Problem::new(
                        number,
                        format!("bad placeholder \"{{{{{inside}}}}}\": write {{{{ name }}}}"),
                    ));
                } else {
                    out.extend(["{{", inside, "}}"]);
                }
                continue;
            }
            match var(name) {
                Some(value) if value.contains(['\n', '\r']) => problems.push(Problem::new(
                    number,
                    format!("variable {name:?}: a value cannot hold a line break"),
                )),
                Some(value) => out.push_str(value),
                None => problems.push(Problem::new(number, format!("unknown variable {name:?}"))),
            }
        }
        out.push_str(rest);
        if out.len() as u64 > MAX_FILE_SIZE {
            problems.push(Problem::new(
                number,
                format!("the expanded text passes {} kB", MAX_FILE_SIZE / 1024),
            ));
            break;
        }
    }
    problems.is_empty().then_some(out).ok_or(problems)
}

fn is_var_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'v>(pairs: &'v [(&'v str, &'v str)]) -> impl Fn(&str) -> Option<&'v str> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
    }

    fn problems(result: Result<String, Vec<Problem>>) -> Vec<String> {
        let found = result.unwrap_err().into_iter();
        found
            .map(|p| format!("{}: {}", p.line, p.message))
            .collect()
    }

    #[test]
    fn placeholders_filled_with_or_without_spaces() {
        let template = "cmd = \"podman run --name {{name}} {{ image }}:{{\ttag }}\"\nrestart-delay = {{ delay }}\n# {{ image }} again\n";
        let pairs = [
            ("name", "web"),
            ("image", "nginx"),
            ("tag", "1.27"),
            ("delay", "5"),
            ("unused", "x"),
        ];
        assert_eq!(
            expand(template, vars(&pairs)).unwrap(),
            "cmd = \"podman run --name web nginx:1.27\"\nrestart-delay = 5\n# nginx again\n"
        );
        assert_eq!(expand("", vars(&[])).unwrap(), "");
        assert_eq!(
            expand("no newline at end", vars(&[])).unwrap(),
            "no newline at end"
        );
        let crlf = "a = \"{{x}}\"\r\nb = 1\r\n";
        assert_eq!(
            expand(crlf, vars(&[("x", "1")])).unwrap(),
            "a = \"1\"\r\nb = 1\r\n"
        );
    }

    #[test]
    fn values_go_in_raw_and_lines_stay_where_they_were() {
        let template = "a = \"{{ v }}\"\nb = {{ list }}\nc = 3\n";
        let pairs = [("v", "say \"hi\""), ("list", "[1, 2]")];
        let expanded = expand(template, vars(&pairs)).unwrap();
        assert_eq!(expanded, "a = \"say \"hi\"\"\nb = [1, 2]\nc = 3\n");
        assert_eq!(expanded.lines().count(), template.lines().count());
        assert_eq!(expanded.lines().nth(2), Some("c = 3"));
        // So the TOML reader's line is the template's.
        let broken = expand("a = 1\n\nb = {{ v }}\n", vars(&pairs)).unwrap();
        let toml_problems = super::super::toml_format::entries(&broken).unwrap_err();
        assert_eq!(toml_problems[0].line, 3);
        let good = expand("cmd = \"{{ v2 }}\"\n", vars(&[("v2", "run it")])).unwrap();
        assert_eq!(super::super::toml_format::entries(&good).unwrap().len(), 1);
    }

    #[test]
    fn text_that_is_not_a_placeholder_is_kept() {
        let template = "cmd = \"podman ps --format {{.Names}} {{ json . }}\"\nx = \"}} {\"\n";
        assert_eq!(expand(template, vars(&[])).unwrap(), template);
        // A value is not expanded again.
        let nested = expand("{{a}}", vars(&[("a", "{{b}}"), ("b", "no")])).unwrap();
        assert_eq!(nested, "{{b}}");
    }

    #[test]
    fn every_bad_placeholder_at_its_line() {
        let template = "a = \"{{ x }}\"\nb = \"{{ y\"\nc = \"{{ }}\"\nd = \"{{ na me }}\"\ne = \"{{ nl }}{{ missing }}\"\nf = \"{{ ok }}\"\n";
        let pairs = [("nl", "two\nlines"), ("ok", "1")];
        assert_eq!(
            problems(expand(template, vars(&pairs))),
            [
                "1: unknown variable \"x\"",
                "2: \"{{\" with no \"}}\" on its line",
                "3: bad placeholder \"{{ }}\": write {{ name }}",
                "4: bad placeholder \"{{ na me }}\": write {{ name }}",
                "5: variable \"nl\": a value cannot hold a line break",
                "5: unknown variable \"missing\"",
            ]
        );
        // A closing brace on the next line does not close.
        assert_eq!(
            problems(expand("a = {{ x\n}}\n", vars(&[("x", "1")]))),
            ["1: \"{{\" with no \"}}\" on its line"]
        );
        let cr = [("v", "a\rb")];
        assert_eq!(problems(expand("{{v}}", vars(&cr))).len(), 1);
    }

    #[test]
    fn the_result_is_bounded() {
        let big = "x".repeat(40 * 1024);
        let pairs = [("big", big.as_str())];
        let template = "a = \"{{ big }}\"\nb = \"{{ big }}\"\nc = \"{{ big }}\"\n";
        assert_eq!(
            problems(expand(template, vars(&pairs))),
            ["2: the expanded text passes 64 kB"]
        );
    }
}
