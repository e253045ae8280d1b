"""The registry: every PSA is one folder and one line, and connector/ names none of them."""

from __future__ import annotations

import importlib
from pathlib import Path

from limits import parse

from adapters import VENDOR_PACKAGES, adapter_for, speaking, vendor, vendors
from adapters.base import AdapterOptions
from adapters.sandbox.server import SandboxServer
from adapters.sandbox.store import SandboxStore

CONNECTOR = Path(__file__).resolve().parents[2] / "connector"
# Named here as well as read from the registry: a vendor on its way in (HaloPSA) counts too.
VENDOR_NAMES = {"connectwise", "autotask", "halo"}


def vendor_names() -> set[str]:
    names = set(VENDOR_NAMES)
    for registered in vendors().values():
        if registered.speaks is None:  # the sandbox is the demo's own vendor, not a PSA
            names |= {registered.key, registered.name.split()[0].lower()}
    return names


def test_connector_names_no_vendor() -> None:
    files = [p for p in CONNECTOR.rglob("*") if p.suffix in {".py", ".js", ".css", ".html"}]
    assert {"console.py", "signin.js", "panel.css", "signed_out.html"} <= {p.name for p in files}
    names = vendor_names()
    found = [
        f"{path.relative_to(CONNECTOR.parent)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if any(name in line.lower() for name in names)
    ]
    assert found == []


def test_each_vendor_is_its_own_package_registered_once() -> None:
    assert list(vendors()) == ["connectwise", "autotask", "halopsa", "sandbox"]
    for name in VENDOR_PACKAGES:
        package = importlib.import_module(name)
        assert Path(package.__file__).name == "__init__.py"
        assert package.VENDOR.key == name.rsplit(".", 1)[1]  # the folder is the vendor's key


def test_a_setting_means_the_same_for_every_vendor_that_has_it() -> None:
    seen: dict[str, tuple[str, bool]] = {}
    for registered in vendors().values():
        for spec in registered.fields:
            kind = (spec.kind, spec.secret)
            assert seen.setdefault(spec.name, kind) == kind, spec.name


def test_the_sandbox_speaks_every_vendor_with_a_dialect() -> None:
    spoken = [v.key for v in vendors().values() if v.sandbox is not None]
    assert spoken == ["connectwise", "autotask", "halopsa"]
    assert vendor("sandbox").fields[0].choices == tuple(spoken)
    site = {"site": "http://127.0.0.1:5000/sandbox"}
    assert speaking("sandbox", site).key == "connectwise"  # no dialect: the first
    for key in spoken:
        settings = {**site, "dialect": key}
        assert speaking("sandbox", settings).key == key
        # The sandbox's own pages may frame the panel, whatever the dialect.
        assert "http://127.0.0.1:5000" in speaking("sandbox", settings).frame_origins(settings)
    options = AdapterOptions(allow_private_urls=True)
    with SandboxServer(SandboxStore()) as server:
        for key in spoken:
            psa = adapter_for("sandbox", {"site": server.url, "dialect": key}, options)
            assert psa.vendor == key and "Escalated" in {s.name for s in psa.list_statuses()}


def test_each_vendor_declares_its_request_limits_for_the_shared_limiter() -> None:
    declared = {key: (v.request_windows, v.max_concurrent_requests) for key, v in vendors().items()}
    assert declared["halopsa"] == (("300/5 minutes",), None)
    assert declared["autotask"] == (("10000/hour",), 3)
    assert declared["connectwise"] == ((), None)  # ConnectWise publishes none
    for windows, _concurrent in declared.values():
        for window in windows:  # in the notation the limiter reads
            parsed = parse(window)
            assert parsed.amount > 0 and parsed.get_expiry() > 0
    assert parse("300/5 minutes").get_expiry() == 300
