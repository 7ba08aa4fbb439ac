"""The git side of `gpuhil bisect`: the user's repository (read only) and the bisect's own worktree,
in which git's `bisect` decides which commit to test next.

git runs with LC_ALL=C: the bisect's outcome is read from its messages ("<sha> is the first bad
commit", "only 'skip'ped commits left"), which other locales translate. `git bisect start
--no-checkout` keeps its state in the worktree's own git dir (BISECT_*, refs/bisect/*, both private to
a worktree), so a bisect the user runs in their own tree is never disturbed, and the worktree is checked
out only at the commits actually tested.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

SHA = r"[0-9a-f]{40,64}"  # SHA-1 or SHA-256 repositories
# Variables that would point git at another repository or index than the one named by -C.
GIT_LOCATION_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR")


class GitError(Exception):
    """A refused revision or a git command that failed: the message is one line."""


def _env(environ) -> dict[str, str]:
    return {**{k: v for k, v in environ.items() if k not in GIT_LOCATION_ENV}, "LC_ALL": "C"}


def _run(args: list[str], cwd: Path, environ, check: bool = True) -> subprocess.CompletedProcess:
    # Its own process group: a Ctrl-C meant for the bisect must not kill git halfway through a checkout
    # or a mark; the bisect stops at the next step instead (search.py).
    done = subprocess.run(["git", *args], cwd=cwd, env=_env(environ), capture_output=True, text=True,
                          process_group=0)
    if check and done.returncode != 0:
        said = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        raise GitError(f"git {' '.join(args[:2])} failed (exit {done.returncode}): {said[-1] if said else 'no output'}")
    return done


class Repo:
    """The repository the command was run in. Nothing here writes to its working tree."""

    def __init__(self, cwd: Path, environ) -> None:
        self.environ = environ
        done = _run(["rev-parse", "--show-toplevel"], cwd, environ, check=False)
        if done.returncode != 0:
            raise GitError(f"{cwd}: not inside a git repository (run gpuhil bisect from a checkout)")
        self.root = Path(done.stdout.strip())
        self.common_dir = self._path(_run(["rev-parse", "--git-common-dir"], self.root, environ).stdout.strip())

    def _path(self, text: str) -> Path:
        p = Path(text)
        return (p if p.is_absolute() else self.root / p).resolve()

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run(list(args), self.root, self.environ, check)

    def commit(self, rev: str, flag: str) -> str:
        """The full sha of `rev`, or GitError naming the option it came from."""
        if not rev.strip() or rev.startswith("-"):
            raise GitError(f"{flag} {rev!r}: not a revision")
        done = self.git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False)
        if done.returncode != 0:
            raise GitError(f"{flag} {rev!r}: not a commit of this repository")
        return done.stdout.strip()

    def is_ancestor(self, older: str, newer: str) -> bool:
        return self.git("merge-base", "--is-ancestor", older, newer, check=False).returncode == 0

    def changed_files(self) -> list[str]:
        """Tracked files with uncommitted changes (staged or not); untracked files do not count."""
        out = self.git("status", "--porcelain", "--untracked-files=no").stdout
        return [line[3:] for line in out.splitlines() if line.strip()]

    def subject(self, sha: str) -> str:
        return self.git("log", "-1", "--format=%s", sha).stdout.strip()

    def has_file(self, sha: str, path: str) -> bool:
        return self.git("cat-file", "-e", f"{sha}:{path}", check=False).returncode == 0


@dataclass(frozen=True)
class Outcome:
    """What git bisect said after a start or a mark: the next commit to test, or the end."""

    next: str | None = None
    first_bad: str | None = None
    candidates: tuple[str, ...] = ()  # only skipped commits are left: the first bad one is among these
    steps_left: int | None = None  # git's "roughly N steps"

    @property
    def done(self) -> bool:
        return self.next is None


class Worktree:
    """The bisect's own worktree, checked out (detached) at each commit tested. One worktree, reused:
    a checkout rewrites only the files that differ between two commits, so everything else (and its
    bytecode) stays as it was; a worktree per step would check out the whole tree every time."""

    def __init__(self, repo: Repo, path: Path) -> None:
        self.repo, self.path = repo, path

    def problem(self) -> str | None:
        """Why `path` cannot be this repository's bisect worktree (None: absent, or one to reuse)."""
        if not self.path.exists():
            return None
        done = _run(["rev-parse", "--show-toplevel", "--git-common-dir"], self.path, self.repo.environ, check=False)
        lines = done.stdout.split("\n")
        if done.returncode == 0 and len(lines) >= 2 and Path(lines[0]).resolve() == self.path.resolve():
            common = Path(lines[1])
            if (common if common.is_absolute() else self.path / common).resolve() == self.repo.common_dir:
                return None
        return f"{self.path} exists and is not a worktree of {self.repo.root}"

    def open(self, at: str) -> None:
        """Create the worktree at `at`, or take over the one an interrupted bisect left (its git bisect
        state is dropped: the state file replays it)."""
        self.repo.git("worktree", "prune")  # registrations whose folder was deleted
        if self.path.exists():
            self.git("bisect", "reset", check=False)
        else:
            self.repo.git("worktree", "add", "--detach", "--quiet", str(self.path), at)

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run(list(args), self.path, self.repo.environ, check)

    def checkout(self, sha: str) -> None:
        """Exactly `sha`'s tree: what a step wrote into tracked or untracked files is discarded
        (ignored files such as __pycache__ stay)."""
        self.git("checkout", "--quiet", "--force", "--detach", sha)
        self.git("clean", "-d", "--force", "--quiet")

    def remove(self) -> None:
        self.git("bisect", "reset", check=False)
        self.repo.git("worktree", "remove", "--force", str(self.path), check=False)

    def start(self, bad: str, good: str) -> Outcome:
        self.git("bisect", "reset", check=False)
        return self._outcome(["bisect", "start", "--no-checkout", bad, good, "--"])

    def mark(self, verdict: str, sha: str) -> Outcome:
        """Tell git bisect the verdict ('good', 'bad' or 'skip') of `sha`."""
        return self._outcome(["bisect", verdict, sha])

    def _outcome(self, args: list[str]) -> Outcome:
        done = self.git(*args, check=False)
        out = done.stdout + done.stderr
        first = re.search(rf"^({SHA}) is the first bad commit$", out, re.MULTILINE)
        if first:
            return Outcome(first_bad=first.group(1))
        if "only 'skip'ped commits left" in out:
            listed = out.split("could be any of:", 1)[-1]
            return Outcome(candidates=tuple(re.findall(rf"^({SHA})$", listed, re.MULTILINE)))
        if done.returncode != 0:
            said = [ln.strip() for ln in out.splitlines() if ln.strip()]
            raise GitError(f"git {' '.join(args[:2])} failed (exit {done.returncode}): {said[-1] if said else 'no output'}")
        steps = re.search(r"roughly (\d+) steps?\)", out)
        head = self.git("rev-parse", "--verify", "BISECT_HEAD").stdout.strip()
        return Outcome(next=head, steps_left=int(steps.group(1)) if steps else None)
