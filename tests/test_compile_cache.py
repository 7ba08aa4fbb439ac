"""The persistent compile cache's store, key, command and wiring (gpuhil.kernels.compile_cache), with
payloads of plain bytes: a hit loads what was stored and compiles nothing; a truncated, corrupt or
foreign entry is rebuilt with one warning; processes racing on one key compile it once; the size
bound removes the least recently used; `gpuhil cache`; the plugin's --compile-cache and the runner's.
The same store with real kernels (export, load, the key's source closure): test_compile_cache_dsl.py."""

import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
from filelock import FileLock

from fakes import make_checkout
from gpuhil.kernels import compile_cache, compile_key
from gpuhil.kernels.compile_cache import CompileCache, CompileCacheWarning

SRC = Path(__file__).resolve().parents[1] / "src"
DSL = {"dsl": "4.8.1", "dsl_cuda": "13.4", "dsl_settings": "arch='sm_90a';"}


def fields(name="k", **changes):
    return {"format": compile_key.FORMAT, "kind": "jit", "kernel": f"toy:{name}", "source": "s", "config": "c",
            "variant": "v", "target": None, **DSL, **changes}


class Compiler:
    """A compile that makes `payload` and counts its calls; export writes it as kernel.o, load reads it."""

    def __init__(self, payload: bytes = b"binary" * 100):
        self.payload, self.calls = payload, 0

    def compile(self):
        self.calls += 1
        return self.payload

    @staticmethod
    def export(value, folder, key):
        (folder / compile_cache.OBJECT).write_bytes(value)
        return {}

    @staticmethod
    def load(folder, meta, key):
        return (folder / compile_cache.OBJECT).read_bytes()

    def fetch(self, cache, key_fields):
        return cache.fetch(key_fields, self.compile, self.export, self.load)


def entry_of(cache, key_fields) -> Path:
    return cache.root / compile_cache.dsl_folder_name(key_fields) / compile_key.digest(key_fields)


def test_a_hit_loads_what_was_stored_and_compiles_nothing(tmp_path):
    cache, c = CompileCache(tmp_path / "cute"), Compiler()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert c.fetch(cache, fields()) == c.payload and c.calls == 1
        assert c.fetch(CompileCache(tmp_path / "cute"), fields()) == c.payload and c.calls == 1
    entry = entry_of(cache, fields())
    assert entry.parent.name == "dsl-4.8.1-cuda13.4"
    assert sorted(p.name for p in entry.iterdir()) == ["kernel.o", "meta.json"]
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["fields"] == fields() and meta["files"]["kernel.o"]["bytes"] == len(c.payload)
    assert c.fetch(cache, fields(variant="other")) == c.payload and c.calls == 2, "another key compiles"


def _truncate(entry):
    (entry / "kernel.o").write_bytes((entry / "kernel.o").read_bytes()[:10])


def _flip_a_byte(entry):
    data = bytearray((entry / "kernel.o").read_bytes())
    data[5] ^= 0xFF
    (entry / "kernel.o").write_bytes(bytes(data))


@pytest.mark.parametrize("damage, why", [
    (_truncate, "kernel.o is truncated or corrupt"),
    (_flip_a_byte, "kernel.o is truncated or corrupt"),
    (lambda e: (e / "kernel.o").unlink(), "kernel.o is truncated or corrupt"),
    (lambda e: (e / "meta.json").write_text('{"fields": '), "meta.json unreadable"),
    (lambda e: (e / "meta.json").unlink(), "meta.json unreadable"),
])
def test_a_damaged_entry_is_rebuilt_with_one_warning(tmp_path, damage, why):
    cache, c = CompileCache(tmp_path), Compiler()
    c.fetch(cache, fields())
    damage(entry_of(cache, fields()))
    with pytest.warns(CompileCacheWarning) as caught:
        assert c.fetch(cache, fields()) == c.payload
    assert len(caught) == 1 and why in str(caught[0].message) and "compiling it again" in str(caught[0].message)
    assert "\n" not in str(caught[0].message)
    assert c.calls == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert c.fetch(cache, fields()) == c.payload and c.calls == 2, "the rebuilt entry is whole"


def test_an_entry_that_fails_to_load_is_rebuilt_with_one_warning(tmp_path):
    cache, c = CompileCache(tmp_path), Compiler()
    c.fetch(cache, fields())

    def broken_load(folder, meta, key):
        raise RuntimeError("Symbols not found: _mlir_x_cuda_init")

    with pytest.warns(CompileCacheWarning, match="Symbols not found") as caught:
        assert cache.fetch(fields(), c.compile, c.export, broken_load) == c.payload
    assert len(caught) == 1 and c.calls == 2


def test_an_entry_of_another_dsl_or_payload_is_never_loaded(tmp_path):
    cache = CompileCache(tmp_path)
    theirs, ours = Compiler(b"built by DSL 4.7.1"), Compiler(b"built by DSL 4.8.1")
    other = fields(dsl="4.7.1", dsl_cuda="12.9")
    theirs.fetch(cache, other)
    assert ours.fetch(cache, fields()) == ours.payload and ours.calls == 1, "another folder, another key"
    assert entry_of(cache, other).parent.name == "dsl-4.7.1-cuda12.9"
    # Even moved to where this DSL looks (a copied cache, a key collision), its meta.json refuses it.
    mine = entry_of(cache, fields(variant="w"))
    mine.parent.mkdir(parents=True, exist_ok=True)
    os.rename(entry_of(cache, other), mine)
    with pytest.warns(CompileCacheWarning, match="written for another key .*differs in dsl, dsl_cuda") as caught:
        assert ours.fetch(cache, fields(variant="w")) == ours.payload
    assert len(caught) == 1 and ours.calls == 2
    payload_only = fields(dsl_cuda="12.9")
    assert compile_key.digest(payload_only) != compile_key.digest(fields())
    assert compile_cache.dsl_folder_name(payload_only) != compile_cache.dsl_folder_name(fields())


RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gpuhil.kernels.compile_cache import CompileCache

    root, log, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    FIELDS = {FIELDS}

    def compile():
        with open(log, "a") as f:
            f.write("compiled\\n")
        time.sleep(1.0)
        return b"payload" * 5000

    def export(value, folder, key):
        (folder / "kernel.o").write_bytes(value)

    while not go.exists():
        time.sleep(0.01)
    value = CompileCache(root).fetch(FIELDS, compile, export, lambda f, m, k: (f / "kernel.o").read_bytes())
    print(value == b"payload" * 5000)
""")


def test_processes_compiling_one_key_at_once_compile_it_once_and_leave_one_whole_entry(tmp_path):
    script, log, go = tmp_path / "racer.py", tmp_path / "compiles.log", tmp_path / "go"
    script.write_text(RACER.replace("{FIELDS}", repr(fields())))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "cute"), str(log), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    time.sleep(0.5)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [o.strip() for o, _ in outs] == ["True"] * 4, outs
    assert log.read_text().count("compiled") == 1, "the others waited for the lock and loaded the entry"
    assert all("CompileCacheWarning" not in err for _, err in outs), outs
    cache = CompileCache(tmp_path / "cute")
    [entry] = cache.entries()
    assert not list(entry.path.parent.glob(".*.tmp")), "no half-written folder is left"
    assert Compiler().fetch(cache, fields()) == b"payload" * 5000


def test_the_size_bound_removes_the_least_recently_used_first(tmp_path):
    c = Compiler(b"x" * 1000)
    for name in ("a", "b"):
        c.fetch(CompileCache(tmp_path), fields(name))
    each = max(e.bytes for e in CompileCache(tmp_path).entries())  # the payload and its meta.json
    cache = CompileCache(tmp_path, max_bytes=int(2.5 * each))
    a, b = entry_of(cache, fields("a")), entry_of(cache, fields("b"))
    old = time.time() - 100
    os.utime(a / "meta.json", (old, old))  # a was written first ...
    os.utime(b / "meta.json", (old + 10, old + 10))
    c.fetch(cache, fields("a"))  # ... but used last: a hit marks it
    assert c.calls == 2
    c.fetch(cache, fields("c"))  # three entries are over the bound: the least recently used goes
    assert a.is_dir() and not b.exists() and entry_of(cache, fields("c")).is_dir()
    assert sum(e.bytes for e in cache.entries()) <= cache.max_bytes


def test_eviction_leaves_an_entry_another_process_holds_and_removes_dead_writers_folders(tmp_path):
    c = Compiler(b"x" * 1000)
    c.fetch(CompileCache(tmp_path), fields("a"))
    cache = CompileCache(tmp_path, max_bytes=int(1.5 * CompileCache(tmp_path).entries()[0].bytes))
    a = entry_of(cache, fields("a"))
    dead = a.parent / f".{a.name}.12345.abcd.tmp"
    dead.mkdir()
    os.utime(dead, (time.time() - 2 * compile_cache.STALE_TMP_S,) * 2)
    with FileLock(str(a.parent / f"{a.name}.lock"), timeout=0):  # a worker is loading it
        c.fetch(cache, fields("b"))
    assert a.is_dir() and entry_of(cache, fields("b")).is_dir()
    assert not dead.exists()
    assert cache.evict() == [a], "once free, the older entry goes"


def test_clear_removes_entries_and_nothing_else(tmp_path):
    cache = CompileCache(tmp_path / "cute")
    Compiler().fetch(cache, fields("a"))
    Compiler().fetch(cache, fields("b", dsl="4.7.1"))
    mine = tmp_path / "cute" / "notes.txt"
    mine.write_text("not an entry")
    beside = tmp_path / "flashinfer"
    beside.mkdir()
    held = entry_of(cache, fields("a")).parent / f"{'0' * 64}.lock"  # a worker compiling that key right now
    with FileLock(str(held), timeout=0):
        removed, freed, busy = cache.clear()
        assert (removed, busy) == (2, 0) and freed > 0 and held.exists()
    assert cache.clear() == (0, 0, 0)
    assert cache.entries() == [] and not list((tmp_path / "cute").glob("dsl-*"))
    assert mine.read_text() == "not an entry" and beside.is_dir()


@pytest.mark.parametrize("text, value", [("2GiB", 2 << 30), ("500MiB", 500 << 20), ("1g", 1 << 30), ("4096", 4096),
                                         ("1.5K", 1536)])
def test_sizes(text, value):
    assert compile_cache.parse_size(text) == value


@pytest.mark.parametrize("text", ["", "0", "-1G", "lots", "1X", "nan", "infG"])
def test_a_bad_size_is_refused_naming_it(text):
    with pytest.raises(ValueError, match="is not a size"):
        compile_cache.parse_size(text)


# -- gpuhil cache -------------------------------------------------------------------------------


def gpuhil(*args, env_extra=None, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def test_cache_info_and_clear(tmp_path):
    cache = CompileCache(compile_cache.location(tmp_path))
    for name in ("a", "b"):
        Compiler(b"y" * 2048).fetch(cache, fields(name))
    Compiler(b"z" * 1024).fetch(cache, fields("c", dsl="4.7.1", dsl_cuda="12.9"))
    r = gpuhil("cache", "info", env_extra={"GPUHIL_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"location: {tmp_path / 'cute'}"
    assert lines[1].startswith("entries: 3, ")
    assert any(line.strip().startswith("dsl-4.8.1-cuda13.4: 2 entries") for line in lines[2:]), lines
    assert any(line.strip().startswith("dsl-4.7.1-cuda12.9: 1 entry,") for line in lines[2:]), lines
    r = gpuhil("cache", "clear", "--cache-dir", str(tmp_path))
    assert r.returncode == 0 and r.stdout.startswith(f"removed 3 entries, ") and str(tmp_path / "cute") in r.stdout
    assert cache.entries() == []
    r = gpuhil("cache", "info", "--cache-dir", str(tmp_path / "new"))
    assert r.returncode == 0 and "(not created yet)" in r.stdout and "entries: 0, 0 B" in r.stdout
    assert not (tmp_path / "new").exists(), "info writes nothing"


@pytest.mark.parametrize("args, env, message", [
    (["info", "--cache-dir", "FILE"], {}, "FILE: is a file, not a folder"),
    (["clear", "--cache-dir", ""], {}, "--cache-dir: empty value"),
    (["clear"], {"GPUHIL_CACHE_DIR": ""}, "$GPUHIL_CACHE_DIR is set but empty"),
    (["clear"], {"GPUHIL_CACHE_DIR": "FILE"}, "FILE: is a file, not a folder"),
])
def test_cache_command_refusals_are_one_line_and_exit_2(tmp_path, args, env, message):
    file = tmp_path / "a-file"
    file.write_text("keep me")
    sub = lambda s: s.replace("FILE", str(file))  # noqa: E731
    r = gpuhil("cache", *map(sub, args), env_extra={k: sub(v) for k, v in env.items()})
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(f"gpuhil cache: {sub(message)}")
    assert file.read_text() == "keep me"


def test_cache_without_a_subcommand_is_a_usage_error():
    r = gpuhil("cache")
    assert r.returncode == 2 and "info" in r.stderr and "clear" in r.stderr


# -- wiring: the plugin scopes a process to --compile-cache, the runner passes its cache root -----

SCOPE_TEST = textwrap.dedent("""
    import os
    from gpuhil.kernels.compile_cache import scoped

    def test_scope():
        cache = scoped()
        assert (f"{cache.root}|{cache.max_bytes}" if cache else "") == os.environ["EXPECTED_CACHE"]
""")


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_compile_cache_option_scopes_the_controller_and_every_worker(pytester, monkeypatch, workers):
    make_checkout(pytester.path)
    pytester.makepyfile(test_scope=SCOPE_TEST)
    monkeypatch.setenv("PYTHONPATH", str(SRC))  # this checkout's gpuhil in the pytest subprocesses
    folder = pytester.path / "cc"
    monkeypatch.setenv("EXPECTED_CACHE", f"{folder}|{3 << 20}")
    out = pytester.runpytest_subprocess(f"--compile-cache={folder}", "--compile-cache-max-bytes=3MiB", "-p",
                                        "no:cacheprovider", "test_scope.py", *workers)
    out.assert_outcomes(passed=1)
    if not workers:
        out.stdout.fnmatch_lines([f"compile cache: {folder}"])
    assert not folder.exists(), "nothing is written until a kernel is compiled"
    monkeypatch.setenv("EXPECTED_CACHE", "")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_scope.py", *workers).assert_outcomes(passed=1)


@pytest.mark.parametrize("args, message", [
    (["--compile-cache=cc", "--compile-cache-max-bytes=lots"], "--compile-cache-max-bytes: 'lots' is not a size"),
    (["--compile-cache="], "--compile-cache: empty value"),
    (["--compile-cache=conftest.py"], "--compile-cache conftest.py: is a file, not a folder"),
])
def test_bad_compile_cache_options_are_usage_errors(pytester, monkeypatch, args, message):
    make_checkout(pytester.path)
    monkeypatch.setenv("PYTHONPATH", str(SRC))
    out = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
    assert out.ret == pytest.ExitCode.USAGE_ERROR
    out.stderr.fnmatch_lines([f"*gpuhil: {message}*"])


def test_run_passes_its_cache_roots_compile_cache_and_refuses_its_own_option(tmp_path):
    make_checkout(tmp_path)
    (tmp_path / "suites/gates/test_mini.py").write_text("def test_host_side():\n    pass\n")
    r = gpuhil("run", "--target-sku", "gb10", "--results-dir", str(tmp_path / "out"), cwd=tmp_path,
               env_extra={"GPUHIL_CACHE_DIR": str(tmp_path / "caches")})
    assert r.returncode == 0, r.stdout + r.stderr
    report = (tmp_path / "out/report.md").read_text()
    pytest_line = next(line for line in report.splitlines() if line.startswith("- pytest: "))
    assert f"--compile-cache={tmp_path / 'caches' / 'cute'}" in pytest_line
    r = gpuhil("run", "--target-sku", "gb10", "--", "--compile-cache=/elsewhere", cwd=tmp_path)
    assert r.returncode == 2 and "pytest option --compile-cache after --: the runner sets it itself" in r.stderr
