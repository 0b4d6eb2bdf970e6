#!/usr/bin/env python3
"""Fills fuzz/corpus/<target>/seed-* with the seed inputs of the fuzz
targets: the files of going.d.example, the service files the tests write
(Rust string literals passed to write_svc, expect_problems, the parse
helpers of src/config's unit tests, ...) and control requests (a fixed list
plus the ones the tests send). Rerunning replaces every seed-* file and
leaves the corpus libFuzzer grew (files named by their SHA-1) alone.

Usage: scripts/fuzz-seeds.py [REPO]   (default: the directory above scripts/)
"""

import hashlib
import os
import re
import sys

TARGETS = ("toml", "going_format", "control_request")

# Control requests: every verb, its options, and some that must fail.
CONTROL = [
    "status", "status\n", "status --json", "status --json web\n",
    "status web db", "status -x", "status --json --json a",
    "start a b\n", "start", "start -f a", "stop grp\n", "stop web@1",
    "restart x\n", "restart", "reload\n", "reload now", "", "\n",
    "  status \t web  \r\n", "dance", "STATUS", "status\0web",
    "start a\nstop b\n", "status \u00e9t\u00e9", "x" * 5000,
    "status " + "a " * 2100 + "\n",
]
CONTROL_BYTES = [b"status \xff\xfe\n", b"\xc3\n", b"stop a\r\n"]


def tokens(src):
    """Rust tokens: ('str', text), ('id', name) and ('p', punctuation);
    comments and char literals dropped."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif re.match(r'b?r#*"', src[i:]):
            m = re.match(r'(b?)r(#*)"', src[i:])
            end = '"' + m.group(2)
            start = i + m.end()
            j = src.find(end, start)
            j = n if j < 0 else j
            out.append(("str", src[start:j]))
            i = j + len(end)
        elif c == '"' or src.startswith('b"', i):
            i += 1 if c == '"' else 2
            buf = []
            while i < n and src[i] != '"':
                if src[i] == "\\":
                    e = src[i + 1] if i + 1 < n else ""
                    simple = {"n": "\n", "t": "\t", "r": "\r", "0": "\0",
                              "\\": "\\", '"': '"', "'": "'"}
                    if e in simple:
                        buf.append(simple[e])
                        i += 2
                    elif e == "x":
                        buf.append(chr(int(src[i + 2:i + 4], 16)))
                        i += 4
                    elif e == "u":
                        j = src.index("}", i)
                        buf.append(chr(int(src[i + 3:j], 16)))
                        i = j + 1
                    elif e == "\n":
                        i += 2
                        while i < n and src[i] in " \t\n\r":
                            i += 1
                    else:
                        buf.append(e)
                        i += 2
                else:
                    buf.append(src[i])
                    i += 1
            out.append(("str", "".join(buf)))
            i += 1
        elif c == "'":
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x..|\\.|[^\\'])'", src[i:])
            i += m.end() if m else 1  # a char literal, or a lifetime's '
        elif c.isalnum() or c == "_":
            m = re.match(r"\w+", src[i:])
            out.append(("id", m.group(0)))
            i += m.end()
        else:
            out.append(("p", c))
            i += 1
    return out


def split_args(toks, i):
    """The arguments of the call whose '(' is toks[i]; (args, index after ')')."""
    args, cur, depth = [], [], 0
    i += 1
    while i < len(toks):
        kind, val = toks[i]
        if kind == "p" and val in "([{":
            depth += 1
        elif kind == "p" and val in ")]}":
            if depth == 0:
                if cur:
                    args.append(cur)
                return args, i + 1
            depth -= 1
        elif kind == "p" and val == "," and depth == 0:
            args.append(cur)
            cur = []
            i += 1
            continue
        cur.append(toks[i])
        i += 1
    return args, i


def fill(template, toml):
    """A format! template with its placeholders replaced by stand-ins that
    keep the file's shape: a command after `=`, a path inside quotes."""
    template = template.replace("{{", "\x01").replace("}}", "\x02")
    out = []
    for line in template.split("\n"):
        def stand_in(m):
            before = line[:m.start()]
            name = m.group(1).split(":")[0]
            if name in ("n", "code", "i", "count", "secs", "ms"):
                return "3"
            if before.count('"') % 2 == 1:
                return "/tmp/going-fuzz"
            if before.rstrip().endswith("="):
                return '["/bin/sh", "-c", "sleep 1"]' if toml else "/bin/sleep 1"
            if not before.strip():
                return ""
            return "x"
        out.append(re.sub(r"\{([^{}]*)\}", stand_in, line))
    return "\n".join(out).replace("\x01", "{").replace("\x02", "}")


HELPERS = {
    # tests/common: sleep_service(n, extra), pid_service(path, extra), ...
    "sleep_service": 'cmd = ["/bin/sleep", "1000"]\nstop-timeout = "2s"\n{}\n',
    "pid_service": 'cmd = ["/bin/sh", "-c", "echo $$ > /tmp/p; exec sleep 1000"]\n'
                   'stop-timeout = "2s"\n{}\n',
    "exit_service": 'cmd = ["/bin/sh", "-c", "exit 3"]\n{}\n',
    "sh_service": 'cmd = ["/bin/sh", "-c", "sleep 1"]\n{}\n',
}


def evaluate(arg, env, toml):
    """The text an argument expression builds, when it can be told."""
    while arg and arg[0] == ("p", "&"):
        arg = arg[1:]
    if not arg:
        return None
    kind, val = arg[0]
    if kind == "str":
        return val
    if kind == "id" and len(arg) > 2 and arg[1] == ("p", "!") and val == "format":
        args, _ = split_args(arg, 2)
        first = evaluate(args[0], env, toml) if args else None
        return None if first is None else fill(first, toml)
    if kind == "id" and val in HELPERS and len(arg) > 1 and arg[1] == ("p", "("):
        args, _ = split_args(arg, 1)
        extra = evaluate(args[-1], env, toml) if len(args) >= 2 else ""
        return HELPERS[val].format(extra or "")
    if kind == "id" and len(arg) == 1 and val in env:
        return env[val]
    return None


def service_texts(path, src):
    """(format, text) of each service file the source builds."""
    toks = tokens(src)
    found, env = [], {}
    module = os.path.basename(path)
    for i, (kind, val) in enumerate(toks):
        # let text = "..."; ... toml(text)
        if kind == "id" and val == "let" and i + 3 < len(toks) \
                and toks[i + 1][0] == "id" and toks[i + 2] == ("p", "="):
            j = i + 3
            depth, expr = 0, []
            while j < len(toks) and not (toks[j] == ("p", ";") and depth == 0):
                if toks[j][0] == "p" and toks[j][1] in "([{":
                    depth += 1
                if toks[j][0] == "p" and toks[j][1] in ")]}":
                    depth -= 1
                expr.append(toks[j])
                j += 1
            text = evaluate(expr, env, True)
            if text is not None:
                env[toks[i + 1][1]] = text
        if kind != "id" or i + 1 >= len(toks) or toks[i + 1] != ("p", "("):
            continue
        args, _ = split_args(toks, i + 1)
        pairs = []
        if val in ("write_svc", "replace_svc") and len(args) >= 2:
            pairs.append((args[0], args[1]))
        elif val == "expect_problems" and len(args) >= 3:
            pairs.append((args[1], args[2]))
        elif val in ("toml", "values", "error_line") and args:
            found.append(("toml", evaluate(args[0], env, True)))
        elif val == "going" and args:
            found.append(("going_format", evaluate(args[0], env, False)))
        elif val == "entries" and args and module in ("toml_format.rs", "going_format.rs"):
            target = "toml" if module == "toml_format.rs" else "going_format"
            found.append((target, evaluate(args[0], env, target == "toml")))
        elif val == "parse" and len(args) >= 3:
            fmt = [t for t in args[1] if t[0] == "id"]
            toml = bool(fmt) and fmt[-1][1] == "Toml"
            found.append(("toml" if toml else "going_format",
                          evaluate(args[2], env, toml)))
        for name_arg, content_arg in pairs:
            name = evaluate(name_arg, env, True)
            if name is None:
                continue
            if name.endswith(".toml"):
                found.append(("toml", evaluate(content_arg, env, True)))
            elif re.fullmatch(r"[A-Za-z0-9_-]+", name):
                found.append(("going_format", evaluate(content_arg, env, False)))
    return [(t, text) for t, text in found if text is not None]


def control_requests(src):
    """`ctl(sock, "verb", &["a", "b"])` and `ctl_ok(g, sock, ...)` of the tests."""
    toks = tokens(src)
    found = []
    for i, (kind, val) in enumerate(toks):
        if kind == "id" and val in ("ctl", "ctl_ok") and i + 1 < len(toks) \
                and toks[i + 1] == ("p", "("):
            args, _ = split_args(toks, i + 1)
            if len(args) < 3:
                continue
            verb, rest = args[-2], args[-1]
            if len(verb) == 1 and verb[0][0] == "str":
                words = [verb[0][1]] + [v for k, v in rest if k == "str"]
                found.append(" ".join(words) + "\n")
    return found


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    seeds = {t: set() for t in TARGETS}
    example = os.path.join(repo, "going.d.example")
    for name in sorted(os.listdir(example)):
        with open(os.path.join(example, name), "rb") as f:
            data = f.read()
        seeds["toml" if name.endswith(".toml") else "going_format"].add(data)
    sources = []
    for sub in ("tests", os.path.join("src", "config")):
        d = os.path.join(repo, sub)
        sources += [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".rs")]
    for path in sources:
        with open(path, encoding="utf-8") as f:
            src = f.read()
        for target, text in service_texts(path, src):
            seeds[target].add(text.encode())
        for request in control_requests(src):
            seeds["control_request"].add(request.encode())
    for request in CONTROL:
        seeds["control_request"].add(request.encode())
    seeds["control_request"].update(CONTROL_BYTES)
    for target in TARGETS:
        d = os.path.join(repo, "fuzz", "corpus", target)
        os.makedirs(d, exist_ok=True)
        for old in os.listdir(d):
            if old.startswith("seed-"):
                os.remove(os.path.join(d, old))
        for data in seeds[target]:
            name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print(f"fuzz-seeds: {len(seeds[target])} seeds in fuzz/corpus/{target}")


if __name__ == "__main__":
    main()
