"""Fault injection: run folders never lose a user's files, and every failure is one line.

Runs go through the ``nrmkit`` command group as a user calls it: in this process through
click's runner (with faults patched in: an ``os.replace`` that finds a read-only file system,
an ``fsync`` that finds the disk full), or, where two processes or signals are involved, in
a fresh interpreter (``python -c`` calling the group, as the installed scripts do; a patched
step sleeps so that a second run or a signal arrives mid-run). Where this machine allows it
(root in a container), small tmpfs mounts give a real read-only and a real full disk.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import NamedTuple

import pytest
from click.testing import CliRunner

from nrmkit.cli.main import cli

TINY = ["--gmin", "0.5", "--gmax", "2", "--m_g", "2", "--n_samples", "2", "--n", "20",
        "--tsim", "5", "--ttrans", "2", "--quiet"]
#: a sweep of 4 samples whose units sleep (patched), so that signals arrive mid-run.
SLOW_UNITS = """
import time
from nrmkit.experiments.lyapunov import coupling_sweep
_original = coupling_sweep.iter_coupling_sweep
def _slow(*args, **kwargs):
    for item in _original(*args, **kwargs):
        yield item
        time.sleep(float(os.environ.get("NRMKIT_TEST_UNIT_SLEEP", "1")))
coupling_sweep.iter_coupling_sweep = _slow
"""
SWEEP = ["transition_2_chaos", "--gmin", "0.5", "--gmax", "2", "--m_g", "2", "--n_samples",
         "4", "--n", "20", "--tsim", "5", "--ttrans", "2", "--quiet"]


def command(args, *, patch: str = "", env=None, umask: int | None = None, cwd=None,
            timeout: float = 300, background: bool = False):
    """Run ``nrmkit ARGS`` in a new interpreter after ``patch`` (Python source)."""
    code = "import os, sys, errno\n" + textwrap.dedent(patch) + (
        "\nfrom nrmkit.cli.main import cli\ncli(prog_name='nrmkit')\n")
    argv = [sys.executable, "-c", code, *[str(a) for a in args]]
    environment = {**os.environ, **(env or {})}

    def set_umask():
        if umask is not None:
            os.umask(umask)

    if background:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=environment, cwd=cwd, preexec_fn=set_umask)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=environment, cwd=cwd, preexec_fn=set_umask)


class Done(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def invoke(args, *, env=None, umask: int | None = None) -> Done:
    """Run ``nrmkit ARGS`` in this process (what escapes as an exception fails the test)."""
    previous = os.umask(umask) if umask is not None else None
    try:
        result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="nrmkit", env=env)
    finally:
        if previous is not None:
            os.umask(previous)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return Done(result.exit_code, result.stdout, result.stderr)


def one_line(stderr: str) -> str:
    """The single line a failure prints (asserts there is exactly one, and no traceback)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


def wait_for(condition, process=None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the run ended early: {process.stderr.read()}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def results_without_time(folder: Path) -> dict:
    results = json.loads((folder / "results.json").read_text())
    results.pop("elapsed_seconds")
    results.pop("seconds_per_epoch", None)  # timings of training runs
    return results


# ----------------------------------------------------------------------------- overwrite

def test_overwrite_keeps_a_foreign_folder_that_has_a_config_json(tmp_path):
    """The unlucky user's case 1: a folder of theirs with a config.json is not a run."""
    folder = tmp_path / "P"
    (folder / "src").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "data.csv").write_text("x\n")
    (folder / "src" / "main.py").write_text("1\n")
    done = command(["transition_2_chaos", *TINY, "--output-dir", folder, "--overwrite"])
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "--output-dir" in line and "not an nrmkit run folder" in line
    assert (folder / "data.csv").read_text() == "x\n"
    assert (folder / "src" / "main.py").read_text() == "1\n"
    assert (folder / "config.json").read_text() == "{}"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "data.csv", "src"]


def test_array_task_refuses_a_folder_holding_foreign_files(tmp_path):
    """Case 2: array-task mode applies the same checks; nothing is written."""
    folder = tmp_path / "N"
    folder.mkdir()
    (folder / "thesis.tex").write_text("chapter 1")
    done = command(["transition_2_chaos", *TINY, "--task_count", "2", "--task_index", "0",
                    "--output-dir", folder])
    assert done.returncode == 2
    assert "thesis.tex" in one_line(done.stderr)
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]
    refused = command(["transition_2_chaos", *TINY, "--task_count", "2", "--task_index", "0",
                       "--output-dir", tmp_path / "fresh", "--overwrite"])
    assert refused.returncode == 2 and "--overwrite" in one_line(refused.stderr)


def test_overwrite_replaces_only_what_nrmkit_wrote(tmp_path):
    folder = tmp_path / "run"
    assert invoke(["transition_2_chaos", *TINY, "--output-dir", folder]).returncode == 0
    written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                     if p.is_file() and ".nrmkit" not in p.parts)
    assert "results.json" in written and "figures/transition_2_chaos.png" in written
    marker = json.loads((folder / ".nrmkit" / "run.json").read_text())
    assert marker["workflow"] == "transition_2_chaos" and marker["format"] == 1
    # a file of the user's inside the run folder: --overwrite refuses, naming it
    (folder / "figures" / "my_edit.svg").write_text("<svg/>")
    done = invoke(["transition_2_chaos", *TINY, "--seed", "1", "--output-dir", folder,
                    "--overwrite"])
    assert done.returncode == 2
    assert "figures/my_edit.svg" in one_line(done.stderr)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and ".nrmkit" not in p.parts) == sorted(
        [*written, "figures/my_edit.svg"])
    (folder / "figures" / "my_edit.svg").unlink()
    first = json.loads((folder / "results.json").read_text())["lambda_max"]
    done = invoke(["transition_2_chaos", *TINY, "--seed", "1", "--output-dir", folder,
                    "--overwrite"])
    assert done.returncode == 0, done.stderr
    assert json.loads((folder / "results.json").read_text())["lambda_max"] != first
    assert json.loads((folder / "config.json").read_text())["options"]["seed"] == 1


def test_overwrite_refuses_the_run_of_another_workflow(tmp_path):
    """``lyapu_convergence --overwrite`` on a transition_2_chaos run: its files stay."""
    folder = tmp_path / "run"
    assert invoke(["transition_2_chaos", *TINY, "--output-dir", folder]).returncode == 0
    def files():        # the lock file records its last holder
        return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "lock"}

    before = files()
    done = invoke([*CONVERGENCE, "--output-dir", folder, "--overwrite"])
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "holds a transition_2_chaos run, not a lyapu_convergence run" in line
    assert "--overwrite replaces only a lyapu_convergence run" in line
    assert files() == before


def test_overwrite_clears_a_sweep_with_local_jobs_and_a_killed_writers_temporary(tmp_path):
    """Parts written by job processes, submitit's files and a temporary file left by a killed
    writer are nrmkit's too: --overwrite clears them all."""
    folder = tmp_path / "run"
    done = invoke(["transition_2_chaos", *TINY, "--executor", "local", "--jobs", "2",
                    "--output-dir", folder])
    assert done.returncode == 0, done.stderr
    assert list(folder.glob("parts/*/unit-*.npz")) and list(folder.glob("submitit/*"))
    (folder / "figures" / ".nrmkit-tmp-abc123").write_bytes(b"half a png")
    done = invoke(["transition_2_chaos", *TINY, "--m_g", "3", "--output-dir", folder,
                    "--overwrite"])
    assert done.returncode == 0, done.stderr
    assert not (folder / "submitit").exists()
    assert not (folder / "figures" / ".nrmkit-tmp-abc123").exists()
    assert len(json.loads((folder / "results.json").read_text())["g"]) == 3


def test_empty_output_dir_and_save_false_with_a_folder_are_usage_errors(tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = invoke(["transition_2_chaos", *TINY, "--output-dir", ""])
    assert done.returncode == 2 and "--output-dir" in one_line(done.stderr)
    done = invoke(["transition_2_chaos", *TINY, "--save", "false", "--output-dir",
                    tmp_path / "x"])
    assert done.returncode == 2 and "--save" in one_line(done.stderr)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- locking

def test_second_run_on_a_locked_folder_exits_2_naming_the_holder(tmp_path):
    folder = tmp_path / "run"
    first = command([*SWEEP, "--output-dir", folder], patch=SLOW_UNITS, background=True)
    wait_for(lambda: (folder / "config.json").exists(), first)
    started = time.monotonic()
    second = invoke(["transition_2_chaos", *TINY, "--seed", "5", "--output-dir", folder,
                     "--overwrite"])
    assert time.monotonic() - started < 60
    assert second.returncode == 2
    line = one_line(second.stderr)
    assert "in use by" in line and f"pid {first.pid}" in line
    collect = invoke(["collect", folder])
    assert collect.returncode == 2 and "in use by" in one_line(collect.stderr)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    options = json.loads((folder / "config.json").read_text())["options"]
    assert options["n_samples"] == 4 and options["seed"] == 0
    results = json.loads((folder / "results.json").read_text())
    assert len(results["lambda_max"][0]) == 4


def test_a_lock_left_by_a_killed_process_is_not_in_the_way(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import pathlib, time
        from nrmkit.runs.folderlock import FolderLock
        folder = pathlib.Path({str(folder)!r})
        (folder / ".nrmkit").mkdir(parents=True)
        FolderLock(folder).acquire()
        print("locked", flush=True)
        time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    refused = invoke(["transition_2_chaos", *TINY, "--output-dir", folder])
    assert refused.returncode == 2 and f"pid {holder.pid}" in one_line(refused.stderr)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    done = invoke(["transition_2_chaos", *TINY, "--output-dir", folder])
    assert done.returncode == 0, done.stderr


def test_pid_file_lock_where_flock_is_unsupported(tmp_path, monkeypatch):
    """On file systems without flock the lock is an O_EXCL file; a dead holder's is stale."""
    import fcntl

    from nrmkit.runs import folderlock

    def no_flock(descriptor, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    (tmp_path / ".nrmkit").mkdir()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        for pid, expected_free in ((dead.pid, True), (alive.pid, False)):
            record = {"host": folderlock.socket.gethostname(), "pid": pid,
                      "start": folderlock._process_start(pid), "role": "run"}
            (tmp_path / ".nrmkit" / "lock.pid").write_text(json.dumps(record))
            lock = folderlock.FolderLock(tmp_path)
            if expected_free:
                lock.acquire()
                assert json.loads((tmp_path / ".nrmkit" / "lock.pid").read_text())["pid"] \
                    == os.getpid()
                with pytest.raises(folderlock.LockHeld):   # held: a second one is refused
                    folderlock.FolderLock(tmp_path).acquire()
                lock.release()
                assert not (tmp_path / ".nrmkit" / "lock.pid").exists()
            else:
                with pytest.raises(folderlock.LockHeld, match=f"pid {pid}"):
                    lock.acquire()
    finally:
        alive.kill()
        alive.wait()


def test_array_tasks_and_collect_share_the_folder(tmp_path):
    """Array tasks hold the lock only while they write config.json; collect then takes it.
    A task with other options is refused."""
    folder = tmp_path / "run"
    for index in range(2):
        done = invoke(["transition_2_chaos", *TINY, "--task_count", "2", "--task_index",
                        index, "--output-dir", folder])
        assert done.returncode == 0, done.stderr
    other = invoke(["transition_2_chaos", *TINY, "--n", "25", "--task_count", "2",
                     "--task_index", "0", "--output-dir", folder])
    assert other.returncode == 2 and "--n" in one_line(other.stderr)
    assert invoke(["collect", folder]).returncode == 0
    serial = tmp_path / "serial"
    assert invoke(["transition_2_chaos", *TINY, "--output-dir", serial]).returncode == 0
    assert results_without_time(folder) == results_without_time(serial)


# ----------------------------------------------------------------------------- OS errors

def refuse_replacing(monkeypatch, name: str, code: int = errno.EROFS) -> None:
    """``os.replace`` onto a file called ``name`` fails as on a read-only file system."""
    replace = os.replace

    def refusing(source, target, *args, **kwargs):
        if Path(target).name == name:
            raise OSError(code, os.strerror(code), str(target))
        return replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", refusing)


def fill_disk_after(monkeypatch, writes: int) -> None:
    """The disk is full after ``writes`` files (``fsync`` fails with ENOSPC)."""
    fsync, count = os.fsync, [0]

    def full(descriptor):
        count[0] += 1
        if count[0] > writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full)


def test_read_only_results_is_one_line_and_a_resumable_run_keeps_its_parts(tmp_path,
                                                                           monkeypatch):
    folder = tmp_path / "run"
    refuse_replacing(monkeypatch, "results.json")
    done = invoke(["transition_2_chaos", *TINY, "--output-dir", folder])
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert f"cannot write {folder / 'results.json'}: Read-only file system" in line
    assert "--resume" in line and str(folder) in line
    assert len(list(folder.glob("parts/*/unit-*.npz"))) == 2
    assert not list(folder.rglob(".nrmkit-tmp-*"))


def test_permission_denied_is_one_line(tmp_path, monkeypatch):
    refuse_replacing(monkeypatch, "config.json", errno.EACCES)
    done = invoke(["lyapu_convergence", "--n", "20", "--nle", "2", "--n_samples", "1",
                   "--tsim", "5", "--quiet", "--output-dir", tmp_path / "run"])
    assert done.returncode == 1
    assert "config.json: Permission denied" in one_line(done.stderr)
    assert not (tmp_path / "run").exists()


def test_full_disk_non_resumable_run_leaves_nothing(tmp_path, monkeypatch):
    fill_disk_after(monkeypatch, 3)         # the marker, config.json, one array, then full
    runs = tmp_path / "runs"
    done = invoke(["lyapu_convergence", "--n", "20", "--nle", "2", "--n_samples", "1",
                   "--tsim", "5", "--ttrans", "1", "--tons", "0.2", "--quiet"],
                  env={"NRMKIT_RUNS_DIR": str(runs)})
    assert done.returncode == 1
    assert "No space left on device" in one_line(done.stderr)
    assert not runs.exists(), "the default folder and its empty parents are removed"


def test_full_disk_mid_sweep_resumes_to_the_same_numbers(tmp_path, monkeypatch):
    """The marker, config.json and two parts fit; then the disk is full. The command the
    error prints continues the sweep to the numbers of an uninterrupted run."""
    folder = tmp_path / "run"
    with monkeypatch.context() as patched:
        fill_disk_after(patched, 4)
        done = invoke([*SWEEP, "--output-dir", folder])
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert "No space left on device" in line
    resume = line.split("continue with ", 1)[1]
    assert resume.startswith("nrmkit transition_2_chaos") and "--resume" in resume
    assert len(list(folder.glob("parts/*/unit-*.npz"))) == 2
    again = invoke(shlex.split(resume)[1:])
    assert again.returncode == 0, again.stderr
    reference = tmp_path / "reference"
    assert invoke([*SWEEP, "--output-dir", reference]).returncode == 0
    assert results_without_time(folder) == results_without_time(reference)


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    mounted = []

    def mount(name: str, options: str) -> Path:
        path = tmp_path / name
        if not _mount_tmpfs(path, options):
            pytest.skip("tmpfs cannot be mounted here (needs root); the patched-fault tests "
                        "cover the same paths")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", str(path)], capture_output=True)


def test_real_read_only_file_system(tmpfs):
    read_only = tmpfs("ro", "ro,size=1m")
    done = invoke(["transition_2_chaos", *TINY, "--output-dir", read_only / "run"])
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert "Read-only file system" in line and str(read_only / "run") in line


def test_real_full_disk(tmpfs):
    small = tmpfs("small", "size=64k")
    done = invoke(["transition_2_chaos", *TINY, "--output-dir", small / "run"])
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert "No space left on device" in line
    assert not list(small.rglob(".nrmkit-tmp-*"))


# ----------------------------------------------------------------------------- permissions

@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_follow_the_umask(tmp_path, mask, mode):
    folder = tmp_path / "run"
    done = invoke(["transition_2_chaos", *TINY, "--output-dir", folder], umask=mask)
    assert done.returncode == 0, done.stderr
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != "lock"]
    assert len(files) > 5
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    if mask == 0o022:
        listing = subprocess.run(["ls", "-l", str(folder)], capture_output=True,
                                 text=True).stdout
        assert "-rw-r--r--" in listing and "-rw-------" not in listing


# ----------------------------------------------------------------------------- signals

def test_sigterm_on_a_resumable_sweep_keeps_parts_and_prints_the_resume_command(tmp_path):
    folder = tmp_path / "run"
    process = command([*SWEEP, "--output-dir", folder], patch=SLOW_UNITS, background=True)
    wait_for(lambda: list(folder.glob("parts/*/unit-*.npz")), process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143
    line = one_line(process.stderr.read())
    assert line.startswith("Terminated (SIGTERM)") and "--resume" in line
    assert 1 <= len(list(folder.glob("parts/*/unit-*.npz"))) < 4
    done = invoke([*SWEEP, "--resume", "--output-dir", folder])
    assert done.returncode == 0, done.stderr
    reference = tmp_path / "reference"
    assert invoke([*SWEEP, "--output-dir", reference]).returncode == 0
    assert results_without_time(folder) == results_without_time(reference)


def test_sigterm_on_a_run_that_cannot_resume_leaves_no_folder(tmp_path):
    folder = tmp_path / "run"
    slow = """
    import time, nrmkit.dynamics as dynamics
    _spectrum = dynamics.lyapunov_spectrum
    def _slow(*a, **k):
        time.sleep(20)
        return _spectrum(*a, **k)
    dynamics.lyapunov_spectrum = _slow
    """
    process = command(["lyapu_convergence", "--n", "20", "--nle", "2", "--n_samples", "1",
                       "--tsim", "5", "--quiet", "--output-dir", folder], patch=slow,
                      background=True)
    wait_for(lambda: (folder / "config.json").exists(), process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143
    assert one_line(process.stderr.read()).startswith("Terminated (SIGTERM)")
    assert not folder.exists()


def test_sigterm_whose_exception_is_swallowed_still_ends_the_run_with_143(tmp_path):
    """Where the signal's exception is lost (code that clears errors: CPython compiling a
    module on import does, here a bare ``except BaseException``), the run still ends as
    terminated before it writes results, and leaves no folder."""
    folder = tmp_path / "run"
    inside = tmp_path / "inside"
    swallowing = f"""
    import pathlib, time, nrmkit.dynamics as dynamics
    _spectrum = dynamics.lyapunov_spectrum
    def _swallowing(*a, **k):
        marker = pathlib.Path({str(inside)!r})
        if not marker.exists():              # the first call only
            try:
                marker.touch()
                time.sleep(20)
            except BaseException:
                pass
        return _spectrum(*a, **k)
    dynamics.lyapunov_spectrum = _swallowing
    """
    process = command(["lyapu_convergence", "--n", "20", "--nle", "2", "--n_samples", "1",
                       "--tsim", "5", "--quiet", "--output-dir", folder], patch=swallowing,
                      background=True)
    wait_for(inside.exists, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143
    assert one_line(process.stderr.read()).startswith("Terminated (SIGTERM)")
    assert not folder.exists()


# ----------------------------------------------------------------------------- corrupt state

@pytest.fixture(scope="module")
def made_runs(tmp_path_factory):
    """A sweep left by its array task (parts, no results) and a finished run, to copy."""
    root = tmp_path_factory.mktemp("made")
    assert invoke(["transition_2_chaos", *TINY, "--task_count", "1", "--task_index", "0",
                   "--output-dir", root / "array"]).returncode == 0
    assert invoke(["transition_2_chaos", *TINY, "--output-dir", root / "finished"]) \
        .returncode == 0
    return root


def copy_of(made_runs, name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(made_runs / name, tmp_path / name))


def test_corrupt_part_is_named_by_collect_and_resume(made_runs, tmp_path):
    folder = copy_of(made_runs, "array", tmp_path)
    part = sorted(folder.glob("parts/*/unit-*.npz"))[1]
    part.write_bytes(b"junk" * 10)
    for args in (["collect", folder],
                 ["transition_2_chaos", *TINY, "--resume", "--output-dir", folder]):
        done = invoke(args)
        assert done.returncode == 1
        line = one_line(done.stderr)
        assert part.name in line and "damaged" in line and "allow_pickle" not in line
    part.unlink()                                  # as the message says: then --resume
    done = invoke(["transition_2_chaos", *TINY, "--resume", "--output-dir", folder])
    assert done.returncode == 0, done.stderr
    assert results_without_time(folder) == results_without_time(made_runs / "finished")


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"workflow": 3}', b"\xff\xfe"])
def test_corrupt_config_json_is_one_line(made_runs, tmp_path, content):
    folder = copy_of(made_runs, "array", tmp_path)
    (folder / "config.json").write_bytes(content)
    for args in (["collect", folder],
                 ["transition_2_chaos", *TINY, "--resume", "--output-dir", folder]):
        done = invoke(args)
        assert done.returncode == 1
        assert "config.json" in one_line(done.stderr)


def test_corrupt_marker_is_one_line(made_runs, tmp_path):
    folder = copy_of(made_runs, "finished", tmp_path)
    (folder / ".nrmkit" / "run.json").write_text("{")
    done = invoke(["transition_2_chaos", *TINY, "--output-dir", folder, "--overwrite"])
    assert done.returncode == 1 and "run.json" in one_line(done.stderr)
    assert (folder / "results.json").exists()


@pytest.mark.parametrize(("toml", "reason"), [
    (b"n = 20.7\n", "an integer is needed"),
    (b"n = true\n", "a number is needed"),
    (b"\xff\xfe\x00n = 3", "UTF-8"),
])
def test_bad_config_file_values(tmp_path, toml, reason):
    path = tmp_path / "options.toml"
    path.write_bytes(toml)
    done = invoke(["transition_2_chaos", "--gmin", "1", "--gmax", "2", "--config", path,
                   "--output-dir", tmp_path / "run"])
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "--config" in line and reason in line
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- bounds

@pytest.mark.parametrize(("args", "name"), [
    (["--n", "99999999999999999999"], "--n"),
    (["--m_g", "3000000000"], "--m_g"),
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**32)], "--seed"),
    (["--memory-limit", "0"], "--memory-limit"),
    (["--memory-limit", "nan"], "--memory-limit"),
    (["--n_samples", "2000000", "--n", "2", "--m_g", "1"], "--n_samples"),
])
def test_out_of_range_values_are_usage_errors(tmp_path, args, name):
    done = invoke(["transition_2_chaos", "--gmin", "1", "--gmax", "2", "--quiet", *args,
                   "--output-dir", tmp_path / "run"])
    assert done.returncode == 2
    assert name in one_line(done.stderr)
    assert not (tmp_path / "run").exists()


def test_memory_limit_refuses_before_anything_is_written(tmp_path):
    done = invoke(["transition_2_chaos", *TINY, "--n", "2000", "--memory-limit", "0.001",
                   "--output-dir", tmp_path / "run"])
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "--n" in line and "--memory-limit" in line
    assert not (tmp_path / "run").exists()


CONVERGENCE = ["lyapu_convergence", "--n", "20", "--nle", "2", "--n_samples", "1", "--tsim",
               "5", "--quiet"]


@pytest.mark.parametrize(("error", "expected"), [
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                  "8000000000000 bytes.\nError code 12"), "ran out of memory"),
    (MemoryError(), "ran out of memory"),
    (TypeError("unsupported operand"), "unexpected TypeError: unsupported operand"),
])
def test_unforeseen_errors_are_one_line(tmp_path, monkeypatch, error, expected):
    import nrmkit.dynamics

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(nrmkit.dynamics, "lyapunov_spectrum", failing)
    done = invoke([*CONVERGENCE, "--output-dir", tmp_path / "run"])
    assert done.returncode == 1
    assert expected in one_line(done.stderr)
    assert not (tmp_path / "run").exists()
    debug = CliRunner().invoke(cli, [*CONVERGENCE, "--debug", "--output-dir",
                                     str(tmp_path / "debug")])
    assert debug.exception is error, "--debug lets the exception (and its traceback) through"


WORKFLOWS = ["lyapu_convergence", "transition_2_chaos", "spectrum", "lyapu_benchmark",
             "train_rd_model", "train_rd_model_fixed_param", "train_flybrain_full",
             "train_flybrain_pop", "smnist", "train_glifr", "rate_to_lif"]


def test_every_workflow_takes_save_and_memory_limit():
    from click.testing import CliRunner

    from nrmkit.cli.main import cli

    for name in WORKFLOWS:
        text = CliRunner().invoke(cli, [name, "--help"]).output
        assert "--save" in text and "--memory-limit" in text, name


#: the smallest run of every workflow (seconds each).
SMALLEST = {
    "lyapu_convergence": ["--n", "20", "--nle", "2", "--n_samples", "1", "--tsim", "5",
                          "--ttrans", "1", "--tons", "0.2"],
    "transition_2_chaos": TINY[:-1],
    "spectrum": ["--n", "20", "--g", "2", "--n_samples", "1", "--tsim", "5", "--ttrans", "1"],
    "lyapu_benchmark": ["--n", "30", "--m_g", "2", "--n_samples", "1", "--tsim", "2",
                        "--ttrans", "1", "--reference-networks", "1", "--reference-steps", "2",
                        "--independent-steps", "2", "--full-spectrum-n", "20",
                        "--full-spectrum-steps", "2", "--no-scaling"],
    "train_rd_model": ["--n", "20", "--nle", "2", "--tsim", "4", "--ttrans", "2",
                       "--n_epochs", "1", "--spectrum_nle", "2"],
    "train_rd_model_fixed_param": ["--n", "20", "--nle", "2", "--tsim", "4", "--ttrans", "2",
                                   "--n_epochs", "1", "--spectrum_nle", "2",
                                   "--number_param", "10", "2", "2"],
    "train_flybrain_full": ["--cell_classes", "APL,MBON", "--nle", "2", "--tsim", "2",
                            "--ttrans", "1", "--n_epochs", "1", "--spectrum_nle", "2"],
    "train_flybrain_pop": ["--cell_classes", "APL,MBON", "--nle", "2", "--tsim", "2",
                           "--ttrans", "1", "--n_epochs", "1", "--spectrum_nle", "2"],
    "smnist": ["--nhid", "8", "--input", "rows", "--epochs", "1", "--batch", "256",
               "--no-fractional_order"],
    "train_glifr": ["--task", "sine", "--hidden", "8", "--epochs", "2"],
    "rate_to_lif": ["--mode", "train", "--n", "20", "--n_trials", "20"],
}


@pytest.mark.parametrize("name", WORKFLOWS)
def test_every_workflow_runs_with_save_false_and_writes_nothing(tmp_path, monkeypatch, name):
    from click.testing import CliRunner

    from nrmkit.cli.main import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NRMKIT_RUNS_DIR", str(tmp_path / "runs"))
    done = CliRunner().invoke(cli, [name, *SMALLEST[name], "--quiet", "--save", "false"])
    assert done.exit_code == 0, done.output
    assert list(tmp_path.iterdir()) == []
