#!/usr/bin/env python3
"""Finds import circles between the files of a Rust crate.

Usage: import-cycles.py SRC_DIR [SRC_DIR ...]   (e.g. core/src runtime-std/src)

A module is a file (`lib.rs`/`main.rs` is the crate root, `a.rs` and `a/mod.rs` are
module `a`, `a/b.rs` is `a::b`; inline `mod x { .. }` blocks belong to their file). File A
depends on file B when A names something of B through `use crate::..`, `use super::..`,
`use self::..`, a child module (`use driver::..` in the parent), or the same paths in code
(`crate::x::f()`). A name that a file re-exports (`pub use x::Item;`, also globs) is
followed to the file that defines it, so `use crate::Item` depends on the defining file,
not the crate root; a module re-exporting its own descendants is not a dependency.
Comments, doc links and string literals are ignored.

Prints the circles (strongly connected groups of files, each with one concrete loop and
the line behind each step) and exits 1 if there is any, 0 otherwise.
"""

import os
import re
import sys
from collections import defaultdict

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|::|[{}()\[\];,*<>#!=]|\S")
DEFINES = re.compile(
    r"\b(?:struct|enum|union|trait|type|fn|const|static|mod)\s+([A-Za-z_][A-Za-z0-9_]*)"
)
MACRO = re.compile(r"#\[macro_export\][^\n]*\n\s*macro_rules!\s*([A-Za-z_][A-Za-z0-9_]*)")


def strip(text):
    """Blanks comments, strings and char literals, keeping line breaks (line numbers)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif c in "rb" and re.match(r"(?:br|rb|r)#*\"", text[i:i + 300] or "") and (
            i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            m = re.match(r"(?:br|rb|r)(#*)\"", text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(" " + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(" " + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^'\\\n])'", text[i:])
            if m:
                out.append(" ")
                i += m.end()
            else:  # a lifetime or label
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokens(text):
    """(token, line) pairs of stripped source."""
    line, last = 1, 0
    for m in TOKEN.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        yield m.group(0), line


def file_modules(src):
    """Module path (tuple) -> file path, relative to src. src/bin and build scripts apart."""
    mods = {}
    for root, dirs, files in os.walk(src):
        rel_root = os.path.relpath(root, src)
        if rel_root == "bin" or rel_root.startswith("bin" + os.sep):
            continue
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.normpath(os.path.join(rel_root, f))
            parts = rel[:-3].split(os.sep)
            if parts in (["lib"], ["main"]):
                path = ()
            elif parts[-1] == "mod":
                path = tuple(parts[:-1])
            else:
                path = tuple(parts)
            # lib.rs wins over main.rs: the library is what other files import.
            if path == () and path in mods and parts == ["main"]:
                continue
            mods[path] = rel
    return mods


def parse_use_tree(toks, i):
    """Parses a use tree starting at toks[i]; returns (list of (segments, alias), next i)."""
    prefix = []
    while i < len(toks):
        t = toks[i][0]
        if t == "{":
            i += 1
            paths = []
            while i < len(toks) and toks[i][0] != "}":
                sub, i = parse_use_tree(toks, i)
                paths += [(prefix + s, a) for s, a in sub]
                if i < len(toks) and toks[i][0] == ",":
                    i += 1
            return paths, i + 1
        if t == "*":
            return [(prefix + ["*"], None)], i + 1
        if t == "::":
            i += 1
            continue
        if re.match(r"[A-Za-z_]", t):
            prefix.append(t)
            i += 1
            if i < len(toks) and toks[i][0] == "as":
                return [(prefix, toks[i + 1][0])], i + 2
            if i < len(toks) and toks[i][0] == "::":
                continue
            return [(prefix, None)], i
        return [(prefix, None)], i
    return [(prefix, None)], i


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = file_modules(src)  # module path -> file
        self.modules = set(self.files)  # every module path, inline ones too
        self.owner = {}  # module path -> file that holds it
        self.reexports = defaultdict(list)  # module path -> [(name or '*', target path, line)]
        self.defined = defaultdict(set)  # module path -> item names defined there
        self.refs = []  # (file, module path, segments, line, is_use, is_pub_use)
        for path, rel in sorted(self.files.items()):
            self.owner[path] = rel
            self.scan(path, rel)

    def scan(self, path, rel):
        with open(os.path.join(self.src, rel), encoding="utf-8") as f:
            text = strip(f.read())
        for m in MACRO.finditer(text):
            self.defined[()].add(m.group(1))
        toks = list(tokens(text))
        stack = []  # (inline module path, brace depth at its opening)
        depth = 0
        i = 0
        while i < len(toks):
            t, line = toks[i]
            cur = stack[-1][0] if stack else path
            prev = toks[i - 1][0] if i else ""
            if t == "{":
                depth += 1
            elif t == "}":
                depth -= 1
                if stack and stack[-1][1] == depth:
                    stack.pop()
            elif t == "mod" and i + 2 < len(toks) and toks[i + 2][0] == "{":
                inner = cur + (toks[i + 1][0],)
                self.modules.add(inner)
                self.owner[inner] = rel
                stack.append((inner, depth))
                depth += 1
                i += 3
                continue
            elif t in ("struct", "enum", "union", "trait", "type", "fn", "const", "static", "mod"):
                if i + 1 < len(toks) and re.match(r"[A-Za-z_]", toks[i + 1][0]):
                    self.defined[cur].add(toks[i + 1][0])
            elif t == "use" and prev not in ("::",):
                is_pub = self.is_pub(toks, i)
                trees, j = parse_use_tree(toks, i + 1)
                for segs, alias in trees:
                    self.refs.append((rel, cur, segs, line, True, is_pub, alias))
                i = j
                continue
            elif (
                re.match(r"[A-Za-z_]", t)
                and prev != "::"
                and i + 1 < len(toks)
                and toks[i + 1][0] == "::"
                and not (prev == "in" and i >= 2 and toks[i - 2][0] == "(")
            ):
                segs, j = [t], i + 1
                while j + 1 < len(toks) and toks[j][0] == "::" and re.match(
                    r"[A-Za-z_]", toks[j + 1][0]
                ):
                    segs.append(toks[j + 1][0])
                    j += 2
                self.refs.append((rel, cur, segs, line, False, False, None))
                i = j
                continue
            i += 1

    @staticmethod
    def is_pub(toks, i):
        """Whether the `use` at toks[i] has a visibility (`pub`, `pub(crate)`, ...)."""
        j = i - 1
        if j >= 0 and toks[j][0] == ")":
            while j >= 0 and toks[j][0] != "(":
                j -= 1
            j -= 1
        return j >= 0 and toks[j][0] == "pub"

    def start(self, module, first, is_use):
        """The module a path's first segment names, or None for another crate."""
        if first == "crate":
            return ()
        if first == "self":
            return module
        if first == "super":
            return module[:-1]
        if module + (first,) in self.modules:
            return module  # a child module, named from its parent
        return None

    def resolve(self, module, segs, is_use):
        """(module path, remaining item name or None) a path names, or None if external."""
        base = self.start(module, segs[0], is_use)
        if base is None:
            return None
        rest = segs if segs[0] not in ("crate", "self", "super") else segs[1:]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
        for k, s in enumerate(rest):
            if s in ("*", "self"):
                return base, None
            if base + (s,) in self.modules:
                base = base + (s,)
            else:
                return base, s
        return base, None

    def index_reexports(self):
        for rel, module, segs, line, is_use, is_pub, alias in self.refs:
            if not (is_use and is_pub):
                continue
            r = self.resolve(module, segs, True)
            if r is None:
                continue
            target, item = r
            name = "*" if segs[-1] == "*" else (alias or item)
            if name:
                self.reexports[module].append((name, target, item))

    def defining_file(self, module, item, seen=None):
        """The file where `item` of `module` is defined, through re-exports."""
        seen = seen or set()
        if (module, item) in seen:
            return self.owner.get(module)
        seen.add((module, item))
        if item is None or item in self.defined[module]:
            return self.owner.get(module)
        for name, target, orig in self.reexports[module]:
            if name == item:
                return self.defining_file(target, orig, seen)
        for name, target, _ in self.reexports[module]:
            if name == "*" and (item in self.defined[target] or self.reexports[target]):
                found = self.defining_file(target, item, seen)
                if found and item in self.defined.get(self.module_of(found), set()):
                    return found
        return self.owner.get(module)

    def module_of(self, rel):
        for path, f in self.files.items():
            if f == rel:
                return path
        return None

    def edges(self):
        self.index_reexports()
        edges = defaultdict(list)  # (from, to) -> [(line, text)]
        for rel, module, segs, line, is_use, is_pub, alias in self.refs:
            r = self.resolve(module, segs, is_use)
            if r is None:
                continue
            target, item = r
            # A module re-exporting its descendants is their facade, not their user.
            if is_pub and target[: len(module)] == module:
                continue
            to = self.defining_file(target, item)
            if to and to != rel:
                edges[(rel, to)].append((line, "::".join(segs)))
        return edges


def cycles(nodes, succ):
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(succ[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(succ[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def loop_in(comp, succ):
    """One shortest loop through the first file of a component (breadth-first)."""
    start, members = comp[0], set(comp)
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(succ[v]):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in members and w not in prev:
                prev[w] = v
                queue.append(w)
    return comp + [start]


def check(src):
    if not os.path.isdir(src):
        print(f"{src}: not a directory", file=sys.stderr)
        return 2
    crate = Crate(src)
    edges = crate.edges()
    succ = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
    files = sorted(crate.files.values())
    found = cycles(files, succ)
    if not found:
        print(f"{src}: {len(files)} files, {len(edges)} file-to-file imports, no cycles")
        return 0
    print(f"{src}: {len(found)} import cycle(s) between files")
    for comp in found:
        print(f"  cycle among {len(comp)} files: {', '.join(comp)}")
        loop = loop_in(comp, succ)
        for a, b in zip(loop, loop[1:]):
            line, text = edges[(a, b)][0]
            more = len(edges[(a, b)]) - 1
            extra = f" (+{more} more)" if more else ""
            print(f"    {a} -> {b}   {a}:{line} {text}{extra}")
    return 1


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    status = 0
    for src in argv[1:]:
        status = max(status, check(src.rstrip("/")))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
