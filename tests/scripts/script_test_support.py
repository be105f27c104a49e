"""What the tests of the Python scripts share: where the scripts are, writing a small CSV
fixture, and running a script as a user would."""
import csv
import os
import subprocess
import sys

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts")


def write_rows(folder, name, rows, columns=None):
    """rows (dicts) as folder/name under `columns` (default: the first row's keys; keys not
    among them are left out); returns the path."""
    path = os.path.join(folder, name)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns or list(rows[0].keys()), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def run_script(script, *args):
    """scripts/<script> with args, its output captured."""
    return subprocess.run([sys.executable, os.path.join(SCRIPTS, script), *args], capture_output=True, text=True)
