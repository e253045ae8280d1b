"""The README's commands, as printed, against `./dev run` started for real.

Every fenced `sh` block of README.md that talks to the embedded demo (it names the demo's
http://127.0.0.1:5000) is read from the README itself, so the two cannot drift apart. The
server runs with an instance folder and a port of its own; the commands run in the folder
that holds that instance, with only the port changed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
DEMO = "http://127.0.0.1:5000"


def sh_blocks(markdown: str) -> list[str]:
    return re.findall(r"^ *```sh\n(.*?)^ *```", markdown, flags=re.DOTALL | re.MULTILINE)


def commands(block: str) -> list[str]:
    """One entry per command: continuation lines joined, comments and blank lines left out."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = (line.strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def demo_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return [c for block in sh_blocks(readme) if DEMO in block for c in commands(block)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dev_run(tmp_path):
    """`./dev run` in its own process group, on its own port and instance folder."""
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONNECTOR_", "ANTHROPIC_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(PORT=str(port), CONNECTOR_INSTANCE_PATH=str(tmp_path / "instance"))
    output = tmp_path / "dev-run.log"
    with output.open("wb") as out:
        server = subprocess.Popen(
            [str(ROOT / "dev"), "run"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while f"ready at {url}" not in output.read_text():
            assert server.poll() is None, f"./dev run ended:\n{output.read_text()}"
            assert time.monotonic() < deadline, f"not ready:\n{output.read_text()}"
            time.sleep(0.2)
        yield url, tmp_path, output
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)


def run_as_printed(command: str, url: str, cwd: Path, within: float = 10.0) -> dict:
    """Run the command (with the demo's port swapped for ours) until it answers JSON that is
    not an error: the README says a handoff follows "within a second"."""
    deadline = time.monotonic() + within
    while True:
        done = subprocess.run(
            ["bash", "-c", command.replace(DEMO, url)],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            answer = {"error": done.stdout}
        if "error" not in answer:
            return answer
        assert time.monotonic() < deadline, f"{command}\nanswered {done.stdout}"
        time.sleep(0.2)


def test_the_readme_has_its_demo_commands():
    printed = demo_commands()
    assert any("/sandbox/tickets/104512/escalate" in c for c in printed)
    assert any("/api/v1/escalations/1" in c for c in printed)
    assert any("/sign-in-link" in c for c in printed)


def test_every_demo_command_of_the_readme_works_against_dev_run(dev_run):
    url, cwd, output = dev_run
    answers = {}
    for command in demo_commands():
        answers[command] = run_as_printed(command, url, cwd)
    by_path = {re.search(r"5000(\S*)", c).group(1): a for c, a in answers.items()}
    assert by_path["/sandbox/tickets/104512/escalate"]["status"] == "Escalated"
    escalation = by_path["/api/v1/escalations/1"]
    assert escalation["ticket"]["id"] == "104512"
    link = by_path["/api/v1/admin/tenants/sandbox/members/1/sign-in-link"]
    opened = requests.get(link["url"].replace(DEMO, url), allow_redirects=False, timeout=10)
    assert opened.is_redirect and opened.headers["Location"] == "/panel/"
    assert "set-cookie" in opened.headers  # signed in: the panel's session

    # The in-process worker turns it into a handoff (the fallback: no API key is set).
    [read] = [c for c in answers if "/api/v1/escalations/1" in c]
    deadline = time.monotonic() + 20
    while run_as_printed(read, url, cwd)["handoff"]["state"] != "fallback":
        assert time.monotonic() < deadline, "the handoff did not reach a terminal state"
        time.sleep(0.2)

    log = output.read_text()
    # One line per step, and none of the tools' own output.
    assert re.match(r"(installing .*\n)?starting Baton in embedded mode\nready at ", log), log
    assert "development server" not in log.lower()
