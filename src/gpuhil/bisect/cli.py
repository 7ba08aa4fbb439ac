"""`gpuhil bisect`'s arguments (the search itself: gpuhil.bisect.search, imported when it runs)."""

from __future__ import annotations

import os
from pathlib import Path


def add_subparser(sub) -> None:
    sp = sub.add_parser(
        "bisect", help="the first commit at which a test fails or a perf series slows down",
        description="Runs one case at each commit git bisect picks between --good and --bad, in a worktree of "
                    "its own (your working tree is never touched), and prints the first bad commit. CASE is a "
                    "pytest node id (good: passes; bad: fails or errors) or a perf series suite|case_id|provider "
                    "(judged as `gpuhil perf compare` judges, against the good commit's runs measured in the same "
                    "bisect). Rerunning the same command with the same --results-dir resumes. docs/BISECT.md")
    sp.add_argument("--good", metavar="SHA", help="a commit where the case is good")
    sp.add_argument("--bad", metavar="SHA", help="a later commit (a descendant of --good) where it is bad")
    sp.add_argument("--results-dir", metavar="DIR",
                    help="the bisect's folder: state, a log per step (default: results/bisect-<time>); "
                         "the folder of an interrupted bisect resumes it")
    sp.add_argument("--repeats", metavar="N",
                    help="perf series only: runs per commit (default 5, at least 3); a step stops at a majority")
    sp.add_argument("case", nargs="*", metavar="CASE",
                    help="a pytest node id (path/test_x.py::test_y[params]) or a perf series (suite|case_id|provider)")
    sp.set_defaults(fn=run)


def run(args) -> int:
    from .search import main

    return main(args, dict(os.environ), Path.cwd())
