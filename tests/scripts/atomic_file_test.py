#!/usr/bin/env python3
"""scripts/atomic_file.py: a file is replaced whole or not at all, and a failed write leaves no
temporary file beside it."""
import os
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from atomic_file import replace_atomically, write_atomically  # noqa: E402


class AtomicFileTest(unittest.TestCase):
    def test_a_write_replaces_the_file_and_leaves_nothing_else(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "result.csv")
            write_atomically(path, "old\n")
            write_atomically(path, "new\n")
            with open(path) as f:
                self.assertEqual(f.read(), "new\n")
            self.assertEqual(os.listdir(tmp), ["result.csv"])

    def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "result.csv")
            write_atomically(path, "old\n")

            def half_written(partial):
                with open(partial, "w") as f:
                    f.write("ne")
                raise OSError("disk full")

            with self.assertRaises(OSError):
                replace_atomically(path, half_written)
            with open(path) as f:
                self.assertEqual(f.read(), "old\n")
            self.assertEqual(os.listdir(tmp), ["result.csv"])


if __name__ == "__main__":
    unittest.main()
