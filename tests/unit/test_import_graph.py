"""The modules' import graph: no circle, and the RQ entry points on top of the worker's path.

Imports inside functions count: a circle that only closes at call time is still a circle.
"""

from __future__ import annotations

import ast
import inspect
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from rq.utils import import_attribute

from connector import jobs
from connector.queue import JOB_KINDS

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("connector", "adapters")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the project's modules it imports (`from a import b` counts a.b when a module)."""
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    modules = {module_name(p): p for p in paths if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        named: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                named.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                named.add(node.module)
                named.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = {m for m in named if m in modules and m != name}
    return graph


def test_the_graph_is_read_from_the_source():
    graph = import_graph()
    assert {"connector.escalations", "connector.notify"} <= graph["connector.jobs"]
    assert "connector.escalations" in graph["connector.webhooks"]


def test_no_module_imports_itself_back_through_others():
    try:
        TopologicalSorter(import_graph()).prepare()
    except CycleError as exc:
        raise AssertionError(f"import circle: {' -> '.join(exc.args[1])}") from None


def test_nothing_imports_the_job_entry_points():
    importers = sorted(m for m, imported in import_graph().items() if "connector.jobs" in imported)
    # Only what starts a worker: `flask worker` and embedded mode warm it up before its first job.
    assert importers == ["connector.cli", "connector.embedded"]


def test_every_job_kind_names_an_entry_point_of_connector_jobs():
    for kind in JOB_KINDS:
        func = import_attribute(kind.entry_point)
        assert inspect.getmodule(func) is jobs, kind.entry_point
