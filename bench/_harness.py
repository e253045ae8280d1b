"""What the benchmarks share: scratch services, child processes, percentiles, the machine.

Every benchmark runs on loopback against real PostgreSQL (a scratch database it creates and
drops) and real Redis (one dedicated database number, flushed before and after), and starts
the real processes it measures: gunicorn, `rq worker`, the fake Anthropic server. Children
are started in their own process groups and stopped by their ids when the script ends.

Importing this module puts the repository root on sys.path, so `tests.corpus` and
`tests.fakes` import from a script run as `.venv/bin/python bench/<name>.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent  # the venv's bin: gunicorn, rq, flask live beside python
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)  # a maintenance database to CREATE / DROP the scratch one from
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


# --- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def machine() -> str:
    """nproc, CPU model, memory, load average and Python: printed at the top of every run."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} CPUs ({model}), {memory} RAM, load average {load}, "
        f"Python {platform.python_version()}"
    )


def header(title: str) -> None:
    print(f"== {title} ==")
    print(machine())
    print(f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", flush=True)


# --- scratch services ------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh PostgreSQL database `baton_bench_<random>`, dropped afterwards; yields its URL."""
    import psycopg

    name = f"baton_bench_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scratch_redis() -> Iterator[str]:
    """The benchmark's Redis database (BENCH_REDIS_URL, default db 14), flushed around the run."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, proc: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            proc.check_alive()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


# --- child processes -------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.popen.returncode}; its log ends:\n{self.tail()}"
            )

    def terminate(self) -> None:
        """SIGTERM to this child's own process group (it was started as its leader)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(5)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        self.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Stack:
    """The processes one benchmark started, and a temp directory for their logs."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="baton-bench-")))
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> Child:
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals only it
            )
        child = Child(name, popen, log)
        self.children.append(child)
        return child

    def stop_all(self, timeout: float = 10.0) -> None:
        """SIGTERM to every child at once, then SIGKILL whatever is left after `timeout`."""
        for child in reversed(self.children):
            child.terminate()
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            try:
                child.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        self.children.clear()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, kind: Any, *exc: Any) -> None:
        self.stop_all()
        if kind is None:  # the logs are kept (and named in the error) only when it failed
            shutil.rmtree(self.workdir, ignore_errors=True)


# --- Baton's processes -----------------------------------------------------------------------


def baton_env(database_url: str, redis_url: str, public_url: str, **extra: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CONNECTOR_SECRET_KEY=Fernet.generate_key().decode(),
        CONNECTOR_ADMIN_TOKEN=secrets.token_urlsafe(24),
        CONNECTOR_PUBLIC_URL=public_url,
        CONNECTOR_ALLOW_PRIVATE_URLS="true",
        # Production mode writes nothing there; set so that nothing lands in the checkout.
        CONNECTOR_INSTANCE_PATH=str(Path(tempfile.gettempdir()) / "baton-bench-instance"),
        PYTHONUNBUFFERED="1",
    )
    env.pop("ANTHROPIC_API_KEY", None)
    env.pop("ANTHROPIC_BASE_URL", None)
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db-upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def start_gunicorn(
    stack: Stack, env: dict[str, str], port: int, *, workers: int = 2, threads: int = 16
) -> Child:
    argv = [
        str(BIN / "gunicorn"),
        "--worker-class", "gthread",
        "--workers", str(workers),
        "--threads", str(threads),
        "--timeout", "60",
        "--bind", f"127.0.0.1:{port}",
        "wsgi:app",
    ]  # fmt: skip
    child = stack.start("gunicorn", argv, env)
    wait_http(f"http://127.0.0.1:{port}/healthz", 60, child)
    # /healthz answers once the first worker has loaded the app; wait for the others too.
    deadline = time.monotonic() + 60
    while len(child_pids(child.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    wait_idle(child_pids(child.pid))
    return child


def child_pids(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def processes_matching(text: str) -> list[int]:
    """Pids whose command line contains `text` (read from /proc; nothing is signalled)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(entry.name))
    return found


def cpu_snapshot(pids: Sequence[int]) -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in pids}


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two snapshots (a pid new in `after` counts from zero)."""
    return sum(max(0.0, t - before.get(pid, 0.0)) for pid, t in after.items())


def wait_idle(pids: Sequence[int], timeout: float = 90.0) -> None:
    """Until these processes stop burning CPU (done importing and building the app)."""
    deadline = time.monotonic() + timeout
    before = [cpu_seconds(p) for p in pids]
    while time.monotonic() < deadline:
        time.sleep(0.5)
        after = [cpu_seconds(p) for p in pids]
        if all(b - a < 0.05 for a, b in zip(before, after, strict=True)):
            return
        before = after


def wait_http(url: str, timeout: float, proc: Child | None = None) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            proc.check_alive()
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f}s")


def start_rq_workers(stack: Stack, env: dict[str, str], count: int) -> list[Child]:
    """The Procfile's workers; each registers once its app is built, so they start warm."""
    argv = [str(BIN / "flask"), "--app", "wsgi", "worker"]
    children = [stack.start(f"rq-worker-{i}", argv, env) for i in range(count)]
    wait_rq_workers(env["REDIS_URL"], count, children)
    return children


def wait_rq_workers(redis_url: str, count: int, children: list[Child], timeout=120.0) -> None:
    import redis
    from rq import Worker

    connection = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while Worker.count(connection=connection) < count:
        for child in children:
            child.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {Worker.count(connection=connection)} of {count} rq workers")
        time.sleep(0.2)
    connection.close()


def start_fake_anthropic(stack: Stack, latency: float) -> str:
    port = free_port()
    argv = [
        sys.executable, "-m", "tests.fakes.anthropic_server",
        "--port", str(port), "--mode", "answer", "--latency", str(latency),
    ]  # fmt: skip
    child = stack.start("fake-anthropic", argv, dict(os.environ))
    wait_port(port, 30, child)
    return f"http://127.0.0.1:{port}"


# --- a ConnectWise tenant on the sandbox PSA -------------------------------------------------


def connect_tenant(
    base_url: str, admin_token: str, site: str, company: str, slug: str = "bench"
) -> str:
    """Create a ConnectWise tenant over the admin API, aim it at the sandbox PSA's site (with
    the sandbox's default API keys) and install the callback, as an admin would; returns the
    callback URL."""
    import requests

    from adapters.connectwise.sandbox.state import SANDBOX_PRIVATE_KEY, SANDBOX_PUBLIC_KEY

    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {admin_token}"

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = api.request(method, f"{base_url}/api/v1/admin{path}", json=body, timeout=30)
        if answer.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return dict(answer.json())

    call(
        "POST",
        "/tenants",
        {
            "slug": slug,
            "name": "Bench MSP",
            "vendor": "connectwise",
            "escalation_statuses": ["Escalated"],
        },
    )
    call(
        "PUT",
        f"/tenants/{slug}/connection",
        {
            "site": site,
            "company_id": company,
            "public_key": SANDBOX_PUBLIC_KEY,
            "private_key": SANDBOX_PRIVATE_KEY,
            "client_id": "00000000-0000-4000-8000-000000000000",
        },
    )
    installed = call("POST", f"/tenants/{slug}/webhooks/install")
    return str(installed["url"])


def start_sandbox(stack: Stack, rows: list[dict[str, Any]]) -> tuple[str, Child]:
    """The sandbox PSA in its own process, seeded with `rows`; returns its root URL."""
    corpus = stack.workdir / "sandbox-corpus.jsonl"
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows))
    port = free_port()
    argv = [sys.executable, "-m", "adapters.sandbox", "--port", str(port), "--corpus", str(corpus)]
    child = stack.start("sandbox-psa", argv, dict(os.environ))
    wait_port(port, 30, child)
    return f"http://127.0.0.1:{port}", child


def corpus_rows(count: int, first_id: int = 900_000) -> list[dict[str, Any]]:
    """`count` corpus tickets for a sandbox store, cycling through the 40 with fresh ids
    (ticket and note ids), so every escalation in a run is of a distinct ticket."""
    from tests.corpus import load_corpus

    corpus = load_corpus()
    rows = []
    for i in range(count):
        row = json.loads(json.dumps(corpus[i % len(corpus)]))
        row["id"] = first_id + i
        for j, note in enumerate(row.get("notes", [])):
            note["id"] = 50_000_000 + i * 1000 + j
        rows.append(row)
    return rows
