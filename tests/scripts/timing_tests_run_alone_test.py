#!/usr/bin/env python3
"""The GPU tests that compare measured times are marked to run alone, and only they: ctest
lists every test with its properties without running one.
Usage: timing_tests_run_alone_test.py CTEST BUILD_DIR"""
import json
import re
import subprocess
import sys
import unittest

TIMING = re.compile(r"^(TimerTest|ModelTrainingTest|SetupExperimentTest)\.")


def listed_tests(ctest, build_dir):
    out = subprocess.run([ctest, "-N", "--show-only=json-v1"], cwd=build_dir, check=True,
                         capture_output=True, text=True).stdout
    tests = {}
    for t in json.loads(out)["tests"]:
        props = {p["name"]: p["value"] for p in t.get("properties", [])}
        tests[t["name"]] = props
    return tests


class TimingTestsRunAlone(unittest.TestCase):
    def test_only_the_timing_tests_run_alone(self):
        tests = listed_tests(CTEST, BUILD_DIR)
        timing = [name for name in tests if TIMING.match(name)]
        self.assertGreaterEqual(len(timing), 2, "the timer's, the training and the setup experiments' tests are listed")
        for name in timing:
            self.assertTrue(tests[name].get("RUN_SERIAL"), name + " may run beside other tests")
        others = [n for n, p in tests.items() if p.get("RUN_SERIAL") and not TIMING.match(n)]
        self.assertEqual(others, [], "tests that need not run alone hold the others back")
        gpu = [n for n, p in tests.items() if "gpu" in p.get("LABELS", [])]
        self.assertGreater(len(gpu), len(timing), "the other GPU tests are listed too")


if __name__ == "__main__":
    CTEST, BUILD_DIR = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1])
