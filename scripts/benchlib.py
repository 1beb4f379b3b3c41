"""Harness shared by the Python benchmark scripts (bench-auth-burst, bench-ws-flood).

Starts an ieum node of its own (IEUM_BIN, default target/release/ieum) on a free
loopback port with a fresh data directory, waits for GET /health, samples the
node's resident memory (VmRSS in /proc/PID/status) every 20 ms in a background
thread, and stops the node and removes the directory afterwards. Python 3
standard library only.

Exit codes the scripts share: 0 within the limits, 1 a limit was exceeded (or
the node died or stopped answering, which would make a low figure meaningless),
2 the benchmark could not run (no binary, the node did not start).
"""

import http.client
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

EXIT_OK = 0
EXIT_LIMIT = 1
EXIT_HARNESS = 2

SAMPLE_INTERVAL_SECS = 0.020
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class HarnessError(Exception):
    """The benchmark could not run; the message says why."""


def env_int(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise HarnessError(f"{name}={raw!r} is not a whole number") from None


def env_float(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise HarnessError(f"{name}={raw!r} is not a number") from None


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


def free_port():
    # The port is free when we look; another process could take it before the
    # node binds, which shows as "the node exited before answering".
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_status_kib(pid, field):
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def raise_open_files_limit(needed):
    """Raises this process's soft open-files limit to the hard one when `needed` is over it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if needed <= soft:
        return
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise HarnessError(f"{needed} open files needed, the hard limit is {hard} (ulimit -Hn)")
    target = needed if hard == resource.RLIM_INFINITY else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as error:
        raise HarnessError(f"could not raise the open-files limit to {target}: {error}") from None


def install_sigterm_handler():
    """SIGTERM unwinds like Ctrl-C, so `finally` blocks stop the node."""

    def raise_exit(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, raise_exit)


class Server:
    """One ieum node on 127.0.0.1 with a data directory of its own."""

    def __init__(self, name):
        self.name = name
        self.process = None
        self.port = None
        self.data_dir = None
        self.log_path = None
        self._log = None

    def backend(self):
        # Never print DATABASE_URL itself: it may carry a password.
        url = os.environ.get("DATABASE_URL", "")
        return "sqlite (fresh data dir)" if not url else url.split(":", 1)[0] + " (DATABASE_URL)"

    def start(self, start_timeout_secs):
        binary = os.environ.get("IEUM_BIN") or "target/release/ieum"
        binary_path = binary if os.path.isabs(binary) else os.path.join(REPO, binary)
        if not os.path.isfile(binary_path):
            raise HarnessError(
                f"no server binary at {binary_path} (build it with "
                "`cargo build --release -p ieum-server`, or point IEUM_BIN at one)"
            )
        if not os.access(binary_path, os.X_OK):
            raise HarnessError(f"server binary {binary_path} is not executable")
        self.data_dir = tempfile.mkdtemp(prefix=f"{self.name}.")
        self.port = free_port()
        self.log_path = os.path.join(self.data_dir, "server.log")
        environment = dict(os.environ)
        environment["IEUM_DATA_DIR"] = self.data_dir
        environment["IEUM_ADDR"] = f"127.0.0.1:{self.port}"
        environment.setdefault("IEUM_LOG", "warn")
        self._log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                [binary_path],
                cwd=self.data_dir,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
        except OSError as error:
            raise HarnessError(f"could not start {binary_path}: {error}") from None
        self._wait_healthy(start_timeout_secs)

    def _wait_healthy(self, timeout_secs):
        deadline = time.monotonic() + timeout_secs
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(
                    f"the server exited with code {self.process.returncode} before answering "
                    f"GET /health; its log ends with:\n{self.log_tail()}"
                )
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                try:
                    connection.request("GET", "/health")
                    status = connection.getresponse().status
                finally:
                    connection.close()
                if status == 200:
                    return
                last_problem = f"GET /health answered {status}"
            except OSError as error:
                last_problem = f"{type(error).__name__}: {error}"
            # A poll interval, not a wait for something to have happened.
            time.sleep(0.05)
        raise HarnessError(
            f"GET /health did not answer 200 within {timeout_secs:g} s ({last_problem}); "
            f"the server log ends with:\n{self.log_tail()}"
        )

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def rss_kib(self):
        return read_status_kib(self.process.pid, "VmRSS")

    def hwm_kib(self):
        return read_status_kib(self.process.pid, "VmHWM")

    def log_tail(self, lines=20):
        if not self.log_path or not os.path.exists(self.log_path):
            return "(no log)"
        with open(self.log_path, "rb") as log:
            tail = log.read().decode("utf-8", "replace").splitlines()[-lines:]
        return "\n".join("  " + line for line in tail) or "  (empty)"

    def stop(self):
        """Stops the node (SIGTERM, then SIGKILL after 5 s) and removes its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class RssSampler(threading.Thread):
    """Reads the node's VmRSS every 20 ms until stopped; answers peaks over time ranges."""

    def __init__(self, server):
        super().__init__(name="rss-sampler", daemon=True)
        self.server = server
        self._samples = []  # (time.monotonic(), kib)
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def sample_now(self):
        kib = self.server.rss_kib()
        if kib is not None:
            with self._lock:
                self._samples.append((time.monotonic(), kib))
        return kib

    def run(self):
        while not self._stop_event.is_set():
            self.sample_now()
            self._stop_event.wait(SAMPLE_INTERVAL_SECS)

    def stop(self):
        self._stop_event.set()
        self.join(timeout=5)

    def peak(self, start, end):
        """The highest sample taken between two time.monotonic() readings, in KiB."""
        with self._lock:
            inside = [kib for at, kib in self._samples if start <= at <= end]
        return max(inside) if inside else None

    def count(self, start, end):
        with self._lock:
            return sum(1 for at, _ in self._samples if start <= at <= end)


def run_main(name, read_settings, body):
    """Reads the settings, starts the node, runs body(server, sampler, settings) -> exit
    code, and always stops the node."""
    os.chdir(REPO)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped to tee
    install_sigterm_handler()
    server = Server(name)
    sampler = None
    try:
        settings = read_settings()
        server.start(env_float("START_TIMEOUT_SECS", 60))
        sampler = RssSampler(server)
        sampler.start()
        return body(server, sampler, settings)
    except HarnessError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return EXIT_HARNESS
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    finally:
        if sampler is not None:
            sampler.stop()
        server.stop()
