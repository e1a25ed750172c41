#!/usr/bin/env python3
"""Ground truth for conformance/expectations/haiway-0.30.0.toml: each deviation
it records for Haiway 0.30.0, shown in plain Haiway code, public API only, no
adapter.

The checks are Haiway's, one per rule, shared by every release the matrix
judges: ../haiway/ground_truth.py (what each shows, and how). This script
runs them for this release's file, with the Python that has haiway==0.30.0
(`cargo xtask matrix` makes one: target/matrix/haiway-0.30.0/venv):

    target/matrix/haiway-0.30.0/venv/bin/python3 conformance/expectations/haiway-0.30.0/ground_truth.py

Usage: ``ground_truth.py [EXPECTATIONS.toml]`` (default: ../haiway-0.30.0.toml).
It prints one line per deviation, ``RULE: shown: ...`` or ``RULE: NOT SHOWN: ...``,
and exits 0 if every one is shown (PROTOCOL.md, "Ground truth"); it refuses
(exit 2) a Python with another Haiway release.
"""

import runpy
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
if len(sys.argv) < 2:
    sys.argv.append(str(here.parent / "haiway-0.30.0.toml"))
runpy.run_path(str(here.parent / "haiway" / "ground_truth.py"), run_name="__main__")
