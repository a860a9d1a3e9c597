#!/usr/bin/env python3
"""Checks that modules inside each crate form one-way layers (no import circles).

Reads every `src/**/*.rs` of each workspace crate and collects the paths it names:
`crate::a::b`, `super::x` (resolved) and bare `sibling::item` where `sibling` is a module
beside the file. Two graphs are checked for cycles:

- between the top-level modules of a crate (`crate::node` -> `crate::rpc`);
- between sibling modules inside each directory module (`node::sync` -> `node::effects`).

A child naming its own parent (`use super::*`) and a parent using its children are how
Rust modules are built, not layering, so edges to an ancestor are not counted. Test-only
code (`#[cfg(test)] mod ...` blocks and `tests.rs` files) may reach anywhere and is skipped.

It also checks file length: a Rust file of more than 800 lines must be named, with the reason,
in `docs/architecture.md` (test files mostly: a scenario table reads better whole).

Exit status 1 with the cycle (or the file) spelled out; `--print` shows the graph.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["accel", "hsm", "state", "consensus", "appliance"]

PATH_RE = re.compile(r"\b(crate|super(?:::super)*)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
BRACE_RE = re.compile(r"\b(crate|super(?:::super)*)::\{([^}]*)\}", re.S)
MOD_DECL = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;", re.M)


def strip_comments_and_tests(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    # Drop `#[cfg(test)] mod name { ... }` blocks by brace matching.
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def module_path(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def crate_modules(src):
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if f.endswith(".rs"):
                p = os.path.join(dirpath, f)
                mods[module_path(src, p)] = p
    # `bin/` targets are separate crates.
    return {m: p for m, p in mods.items() if not (m and m[0] == "bin")}


def references(mod, text, modules):
    """Module paths (tuples) named from `mod`'s file."""
    refs = set()

    def resolve(head, tail):
        if head == "crate":
            base = ()
        else:
            ups = head.count("super")
            # A `foo.rs` or `foo/mod.rs` file is module `foo`; `super` is its parent.
            base = mod[: len(mod) - ups] if len(mod) >= ups else ()
        full = base + tuple(tail)
        # Longest prefix that is a module.
        for n in range(len(full), -1, -1):
            if full[:n] in modules:
                return full[:n]
        return base

    for m in BRACE_RE.finditer(text):
        for part in m.group(2).split(","):
            part = part.strip()
            if part and part != "self":
                refs.add(resolve(m.group(1), part.split("::")[0:2]))
    for m in PATH_RE.finditer(text):
        refs.add(resolve(m.group(1), m.group(2).strip(":").split("::")))
    # Bare `sibling::item` for modules beside this one (brought in by `use super::*`).
    parent = mod[:-1] if mod else ()
    siblings = {m[-1] for m in modules if len(m) == len(mod) and m[:-1] == parent and m != mod}
    children = {m[-1] for m in modules if len(m) == len(mod) + 1 and m[:-1] == mod}
    # Only a glob import of the parent brings siblings into scope by bare name (a bare name
    # can otherwise be an external crate of the same name, e.g. `hsm::`).
    if not re.search(r"use\s+super::\*\s*;", text):
        siblings = set()
    for name in siblings - children:
        if re.search(r"(?<![:\w])" + re.escape(name) + r"::", text):
            refs.add(parent + (name,))
    refs.discard(mod)
    return refs


def unit(mod, depth):
    return mod[:depth]


def find_cycle(graph):
    color, stack = {}, []

    def visit(n):
        color[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if color.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if not color.get(m):
                c = visit(m)
                if c:
                    return c
        stack.pop()
        color[n] = 2
        return None

    for n in sorted(graph):
        if not color.get(n):
            c = visit(n)
            if c:
                return c
    return None


def main():
    show = "--print" in sys.argv
    failed = False
    for crate in CRATES:
        src = os.path.join(ROOT, crate, "src")
        modules = crate_modules(src)
        edges = set()
        for mod, path in modules.items():
            if mod and mod[-1] == "tests":
                continue
            with open(path, encoding="utf-8") as fh:
                text = strip_comments_and_tests(fh.read())
            for r in references(mod, text, modules):
                # Ancestor and descendant edges are module structure, not layering.
                if r == mod[: len(r)] or mod == r[: len(mod)]:
                    continue
                edges.add((mod, r))
        # Graphs: level 1 (top-level modules), then siblings inside every directory module.
        groups = {}
        for a, b in edges:
            # The deepest common ancestor decides which sibling graph the edge belongs to.
            k = 0
            while k < min(len(a), len(b)) and a[k] == b[k]:
                k += 1
            parent = a[:k]
            groups.setdefault(parent, {}).setdefault(a[: k + 1], set()).add(b[: k + 1])
        for parent, graph in sorted(groups.items()):
            name = "::".join((crate,) + parent)
            if show:
                for a in sorted(graph):
                    print(f"{name}: {a[-1]} -> {', '.join(sorted(b[-1] for b in graph[a]))}")
            cycle = find_cycle(graph)
            if cycle:
                failed = True
                print(
                    f"module graph: import circle in `{name}`: "
                    + " -> ".join(c[-1] for c in cycle)
                    + "\n  move the shared item to a lower module (see docs/architecture.md)",
                    file=sys.stderr,
                )
    failed |= long_files()
    if failed:
        sys.exit(1)
    print("module graph: no import circles in " + ", ".join(CRATES))


MAX_LINES = 800


def long_files():
    """Files over MAX_LINES lines that docs/architecture.md does not explain."""
    with open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8") as fh:
        doc = fh.read()
    failed = False
    for crate in CRATES + ["benches"]:
        for dirpath, _, files in os.walk(os.path.join(ROOT, crate)):
            if "/target" in dirpath or "/fuzz" in dirpath:
                continue
            for f in files:
                if not f.endswith(".rs"):
                    continue
                path = os.path.join(dirpath, f)
                with open(path, encoding="utf-8") as fh:
                    n = sum(1 for _ in fh)
                rel = os.path.relpath(path, ROOT)
                if n > MAX_LINES and f"`{rel}`" not in doc:
                    failed = True
                    print(
                        f"file length: {rel} has {n} lines (over {MAX_LINES}); split it by "
                        "concern, or say why it is long in docs/architecture.md",
                        file=sys.stderr,
                    )
    return failed


if __name__ == "__main__":
    main()
