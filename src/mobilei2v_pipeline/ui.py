"""`mobilei2v ui` (`make ui`): the MLflow UI and kedro-viz on localhost together, stopped together."""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from mobilei2v_pipeline.project_config import load_config, tracking_uri

STARTUP_TIMEOUT_S = 90.0
STOP_GRACE_S = 5.0
TAIL_LINES = 20


class UIError(RuntimeError):
    """A UI process died or never answered, or its port is taken."""


class _StopRequest:
    """Set by the SIGINT/SIGTERM handler. (Not a threading.Event: setting one from a signal handler can
    deadlock on the lock its wait() holds in the same thread.)"""

    requested = False

    def handle(self, *_: object) -> None:
        self.requested = True

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.requested and time.monotonic() < deadline:
            time.sleep(0.1)


class _Child:
    """One UI process in its own process group, its output echoed with a prefix and its tail kept."""

    def __init__(
        self, name: str, command: list[str], cwd: Path, url: str, probe_url: str, env: dict[str, str]
    ):
        self.name, self.url, self.probe_url = name, url, probe_url
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env={**env, "PYTHONUNBUFFERED": "1"},
            # Its own group, so stop() reaches the workers it spawns (uvicorn, kedro-viz's server process),
            # and Ctrl-C in the terminal reaches only us: we stop the children in order.
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.tail.append(line.rstrip())
            print(f"[{self.name}] {line}", end="", flush=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.probe_url, timeout=5) as response:
                return response.status == 200
        except OSError:  # URLError included: refused, reset, timed out, or an HTTP error status
            return False

    def failure(self, what: str) -> UIError:
        tail = "\n".join(f"    {line}" for line in self.tail) or "    (no output)"
        return UIError(f"{self.name} {what}; its last output lines:\n{tail}")

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL to what is left after STOP_GRACE_S."""
        pgid = self.process.pid  # the group leader's pid, as start_new_session made it
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + STOP_GRACE_S
            while time.monotonic() < deadline and _group_exists(pgid):
                self.process.poll()  # reap the leader, or it keeps the group alive as a zombie
                time.sleep(0.1)
        self.process.wait()


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def _probe_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def serve_ui(
    project_path: Path,
    host: str = "127.0.0.1",
    mlflow_port: int = 5000,
    viz_port: int = 4141,
) -> int:
    """Start the MLflow UI on the project's tracking store and kedro-viz on the project, print their URLs and
    wait for SIGINT/SIGTERM or for either to exit; then stop both. Returns 0, or 1 when a UI exited by itself.

    When the tracking URI is an http(s) server, that server is the UI: only kedro-viz is started."""
    project_path = project_path.resolve()
    uri = tracking_uri(project_path, load_config(project_path, os.environ.get("KEDRO_ENV")))
    remote = uri.startswith(("http://", "https://"))
    probe = _probe_host(host)
    for name, port in [("kedro-viz", viz_port)] + ([] if remote else [("the MLflow UI", mlflow_port)]):
        # kedro-viz would quietly move to the next free port, and we would poll whatever holds this one.
        if _port_taken(probe, port):
            raise UIError(f"port {port} on {host}, meant for {name}, is in use; choose another")
    stop = _StopRequest()
    previous = {sig: signal.signal(sig, stop.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[_Child] = []
    try:
        if not remote:
            artifacts = str(project_path / "mlartifacts")
            mlflow = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri]
            mlflow += ["--default-artifact-root", artifacts, "--artifacts-destination", artifacts]
            mlflow += ["--host", host, "--port", str(mlflow_port), "--workers", "1"]
            children.append(
                _Child(
                    "mlflow",
                    mlflow,
                    project_path,
                    f"http://{host}:{mlflow_port}/",
                    f"http://{probe}:{mlflow_port}/health",
                    # A UI needs none of MLflow's GenAI background jobs, which are eight more processes.
                    {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ},
                )
            )
        viz = [sys.executable, "-m", "kedro", "viz", "run", "--no-browser", "--host", host]
        viz += ["--port", str(viz_port)]
        children.append(
            _Child(
                "kedro-viz",
                viz,
                project_path,
                f"http://{host}:{viz_port}/",
                f"http://{probe}:{viz_port}/api/main",
                dict(os.environ),
            )
        )
        _wait_until_up(children, stop)
        if stop.requested:
            return 0
        if remote:
            print(f"MLflow UI:  {uri}  (the tracking server in MLFLOW_TRACKING_URI)", flush=True)
        else:
            print(f"MLflow UI:  {children[0].url}  (store {uri})", flush=True)
        print(f"kedro-viz:  {children[-1].url}", flush=True)
        print("Ctrl-C stops", "kedro-viz." if remote else "both.", flush=True)
        while not stop.requested:
            exited = [child for child in children if not child.alive()]
            if exited:
                print(exited[0].failure(f"exited with code {exited[0].process.returncode}"), file=sys.stderr)
                return 1
            stop.sleep(0.5)
        return 0
    finally:
        for child in children:
            child.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_until_up(children: list[_Child], stop: _StopRequest) -> None:
    """Poll each child's URL until it answers 200; raise UIError if one dies or is silent too long."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    waiting = list(children)
    while waiting and not stop.requested:
        for child in list(waiting):
            if not child.alive():
                raise child.failure(f"exited with code {child.process.returncode} while starting")
            if child.answers():
                waiting.remove(child)
        if waiting and time.monotonic() > deadline:
            child = waiting[0]
            raise child.failure(f"did not answer at {child.probe_url} within {STARTUP_TIMEOUT_S:.0f} s")
        stop.sleep(0.5)
