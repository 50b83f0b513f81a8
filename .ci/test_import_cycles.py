#!/usr/bin/env python3
"""Tests of .ci/import-cycles.py on small made-up crates (python3 .ci/test_import_cycles.py)."""

import contextlib
import importlib.util
import io
import os
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location("import_cycles", os.path.join(HERE, "import-cycles.py"))
checker = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(checker)


def run(files):
    """Writes `files` (path -> text) into a temporary src/ and checks it: (status, output)."""
    with tempfile.TemporaryDirectory() as src:
        for path, text in files.items():
            full = os.path.join(src, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(text)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = checker.check(src)
        return status, out.getvalue()


class ImportCycles(unittest.TestCase):
    def test_two_files_naming_each_other(self):
        status, out = run({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::Beta;\npub struct Alpha;\n",
            "b.rs": "pub struct Beta;\nfn f() -> super::a::Alpha { super::a::Alpha }\n",
        })
        self.assertEqual(status, 1)
        self.assertIn("cycle among 2 files: a.rs, b.rs", out)
        self.assertIn("a.rs:1 crate::b::Beta", out)

    def test_a_chain_is_no_cycle(self):
        status, out = run({
            "lib.rs": "mod a;\nmod b;\nmod c;\npub use a::Alpha;\n",
            "a.rs": "use crate::b::Beta;\npub struct Alpha(Beta);\n",
            "b.rs": "use crate::c::{self, Gamma};\npub struct Beta(Gamma);\n",
            "c.rs": "pub struct Gamma;\n",
        })
        self.assertEqual(status, 0, out)
        # a -> b, b -> c; the root re-exporting its child is no import.
        self.assertIn("2 file-to-file imports", out)

    def test_reexports_lead_to_the_defining_file(self):
        # `crate::Beta` is b.rs's, through the root's re-export: a -> b, and b -> a.
        status, out = run({
            "lib.rs": "mod a;\nmod b;\npub use b::Beta;\npub use a::*;\n",
            "a.rs": "pub fn alpha() -> crate::Beta { crate::Beta }\n",
            "b.rs": "pub struct Beta;\nfn g() { crate::alpha(); }\n",
        })
        self.assertEqual(status, 1)
        self.assertIn("a.rs, b.rs", out)
        self.assertNotIn("lib.rs", out)

    def test_folder_modules_and_child_paths(self):
        status, out = run({
            "lib.rs": "pub mod net;\n",
            "net/mod.rs": "mod udp;\npub struct Addr;\nfn open() { udp::bind(); }\n",
            "net/udp.rs": "use super::Addr;\npub fn bind() -> Addr { Addr }\n",
        })
        self.assertEqual(status, 1)
        self.assertIn("net/mod.rs, net/udp.rs", out)

    def test_inline_test_modules_comments_and_strings(self):
        status, out = run({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": (
                "use crate::b::Beta;\n"
                "pub fn f() {}\n"
                "#[cfg(test)]\nmod tests {\n    use super::*;\n    #[test]\n    fn t() { f(); }\n}\n"
            ),
            "b.rs": (
                "/// Used by [`crate::a::f`].\npub struct Beta;\n"
                "// use crate::a::f;\n/* crate::a::f() /* nested */ */\n"
                "const S: &str = \"crate::a::f\";\nconst R: &str = r#\"crate::a::f\"#;\n"
                "const C: char = '\"';\nfn g<'x>(v: &'x str) -> &'x str { v }\n"
                "mod inner {\n    fn h() { super::g(\"\"); }\n}\n"
            ),
        })
        self.assertEqual(status, 0, out)
        self.assertIn("1 file-to-file imports", out)

    def test_external_crates_are_not_modules(self):
        status, out = run({
            "lib.rs": "mod log;\nmod a;\n",
            "log.rs": "use crate::a::A;\npub fn info(_: A) {}\n",
            # `log::` outside the root is the external crate, not src/log.rs.
            "a.rs": "pub struct A;\nfn f() { log::trace!(\"x\"); std::mem::drop(0); }\n",
        })
        self.assertEqual(status, 0, out)


if __name__ == "__main__":
    unittest.main()
