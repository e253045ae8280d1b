"""A made-up history of escalations for "seen before", shared by its tests and bench/related.py.

MSP incidents repeat: the same client's backup target fills up again, the same firewall's VPN
drops after another firmware update. Each client has a few devices; each incident kind has
several wordings (titles, reasons, descriptions written differently each time) and happens on
one kind of device. The history holds, per tenant, repeats of the same incident on the same
client and device, the same incident at other clients (look-alikes that must not rank first),
other incidents at the same client, and a second tenant with the very same clients, devices
and incidents (which must never be found).

A query is a new escalation of an incident that happened before on that client and device,
in a wording of its own; it is right when the first result is an earlier escalation of the
same incident on the same client and device.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# (kind, device type, titles, reasons, descriptions, fix): {device} is the device's name.
INCIDENTS: list[tuple[str, str, list[str], list[str], list[str], str]] = [
    (
        "backup-full",
        "nas",
        [
            "Backups failing on {device}",
            "Nightly backup job failed - {device} out of space",
            "Veeam job error: target {device} full",
        ],
        [
            "Backup repository on {device} is at 100%, retention not pruning",
            "Job fails with 'insufficient free space' on {device}",
        ],
        [
            "The overnight Veeam job failed again. The repository disk on {device} is full.",
            "Backup copy job errors out writing to {device}; free space 0 GB.",
        ],
        "Pruned old restore points and set retention to 14 days on {device}",
    ),
    (
        "vpn-firmware",
        "firewall",
        [
            "VPN down after firmware update on {device}",
            "Remote users cannot connect to VPN",
            "SSL VPN tunnel drops - {device}",
        ],
        [
            "After the firmware update {device} rejects VPN logins; IKE phase 1 fails",
            "Users get 'peer not responding' since {device} was updated",
        ],
        [
            "Since last night's firmware upgrade on {device} nobody can connect to the VPN.",
            "FortiClient shows tunnel down; {device} logs show IKE negotiation failure.",
        ],
        "Re-imported the VPN certificate and re-applied the IPsec proposal on {device}",
    ),
    (
        "outlook-password",
        "laptop",
        [
            "Outlook keeps asking for password",
            "Outlook credential prompts on {device}",
            "Password prompt loop in Outlook",
        ],
        [
            "{device} shows Disabled in Entra; DeviceAuthStatus FAILED",
            "Outlook prompts every 10 minutes on {device}, new profile did not help",
        ],
        [
            "Outlook pops up asking for my password every few minutes. Webmail works.",
            "User's Outlook on {device} asks for credentials repeatedly since yesterday.",
        ],
        "Re-enabled {device} in Entra and excluded it from the stale-device cleanup",
    ),
    (
        "printer-queue",
        "printer",
        [
            "Printing stuck in queue on {device}",
            "Nobody can print to {device}",
            "Print spooler jams - {device}",
        ],
        [
            "Jobs sit in the queue for {device}; restarting the spooler helps for an hour",
            "{device} shows offline on the print server though it pings",
        ],
        [
            "Documents sent to {device} never print; the queue keeps growing.",
            "Print jobs to {device} stay in 'spooling'.",
        ],
        "Replaced the {device} driver with the universal PCL6 driver and cleared the spool",
    ),
    (
        "disk-full-server",
        "server",
        [
            "C: drive full on {device}",
            "Low disk space alert {device}",
            "Server {device} out of disk space",
        ],
        [
            "C: on {device} has 200 MB free; WinSxS and logs are large",
            "Monitoring alert: {device} system volume below 1%",
        ],
        [
            "RMM alert for low disk space on {device}, services starting to fail.",
            "{device} C: drive is almost full, SQL logs growing.",
        ],
        "Cleaned WinSxS, moved IIS logs off C: and set log rotation on {device}",
    ),
    (
        "wifi-drops",
        "access point",
        [
            "Wi-Fi keeps dropping in the office",
            "Wireless disconnects near {device}",
            "Staff losing Wi-Fi - {device}",
        ],
        [
            "Clients roam off {device} every few minutes; channel utilisation 90%",
            "{device} reboots itself under load",
        ],
        [
            "People near {device} lose the wireless connection several times an hour.",
            "Laptops disconnect from Wi-Fi in the meeting room served by {device}.",
        ],
        "Moved {device} to a clean 5 GHz channel and updated its firmware",
    ),
    (
        "mfa-lockout",
        "cloud tenant",
        [
            "User locked out by MFA",
            "MFA prompts failing for staff",
            "Authenticator sign-in denied",
        ],
        [
            "Conditional access on {device} blocks the sign-in; the phone was replaced",
            "MFA registration lost after phone change; {device} policy requires number matching",
        ],
        [
            "User got a new phone and cannot approve MFA prompts anymore.",
            "Sign-in blocked: 'your sign-in was blocked' after MFA.",
        ],
        "Reset the MFA methods in {device} and re-registered the authenticator",
    ),
    (
        "sql-slow",
        "server",
        [
            "Line-of-business app very slow",
            "SQL queries timing out on {device}",
            "Database performance degraded - {device}",
        ],
        [
            "CPU on {device} at 100% from sqlservr; index fragmentation high",
            "App times out; {device} tempdb growing",
        ],
        [
            "The practice management software is crawling; reports time out.",
            "Queries against {device} take minutes instead of seconds.",
        ],
        "Rebuilt fragmented indexes and added a weekly maintenance plan on {device}",
    ),
    (
        "rdp-license",
        "server",
        [
            "Remote desktop licensing error",
            "RDS: no licenses available on {device}",
            "Cannot connect to terminal server {device}",
        ],
        [
            "{device} grace period expired; licensing server not found",
            "RDP error 'no Remote Desktop License Servers available' on {device}",
        ],
        [
            "Users get a licensing error when connecting to {device}.",
            "Remote desktop sessions to {device} refused with a license message.",
        ],
        "Pointed {device} at the licensing server by GPO and activated the CALs",
    ),
    (
        "switch-loop",
        "switch",
        [
            "Network outage - broadcast storm",
            "Everything slow, {device} lights flashing",
            "Spanning tree loop on {device}",
        ],
        [
            "{device} CPU 100%, MAC flapping between ports 12 and 24",
            "Loop detected on {device} after desk move",
        ],
        [
            "The whole office lost network; {device} ports all blinking.",
            "Network unusable, {device} logs show MAC flapping.",
        ],
        "Enabled loop protection and BPDU guard on {device} edge ports",
    ),
]
DEVICE_CODES = {"nas": "NAS", "firewall": "FW", "laptop": "LT", "printer": "PRN",
                "server": "SRV", "access point": "AP", "cloud tenant": "M365",
                "switch": "SW"}  # fmt: skip
CLIENT_WORDS = [
    "Keller",
    "Vance",
    "Harbor",
    "Summit",
    "Maple",
    "Orion",
    "Cedar",
    "Atlas",
    "Birch",
    "Coastal",
    "Delta",
    "Ember",
    "Falcon",
    "Granite",
    "Horizon",
    "Iris",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Northwind",
    "Oakridge",
    "Pioneer",
    "Quartz",
    "Redwood",
    "Sierra",
    "Tidewater",
    "Union",
    "Valley",
    "Willow",
]
SUFFIXES = ["Dental", "LLP", "Logistics", "Clinic", "Architects", "Insurance", "Foods", "CPA"]


@dataclass(frozen=True)
class Past:
    """One earlier escalation: what the index holds, and what it was about."""

    tenant: int  # 0 or 1
    client: str
    device: str
    kind: str
    number: str
    title: str
    reason: str
    description: str
    resolution: str
    received_at: datetime


@dataclass(frozen=True)
class Query:
    tenant: int
    client: str
    device: str
    kind: str
    title: str
    reason: str
    description: str
    received_at: datetime


def clients(count: int, rng: random.Random) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = f"{rng.choice(CLIENT_WORDS)} {rng.choice(CLIENT_WORDS)} {rng.choice(SUFFIXES)}"
        if name not in names:
            names.append(name)
    return names


def devices(client: str) -> dict[str, list[str]]:
    """The client's devices by type: two of each, named the way MSPs name them."""
    code = "".join(word[0] for word in client.split()).upper()
    return {
        kind: [f"{code}-{short}{n:02d}" for n in (1, 2)] for kind, short in DEVICE_CODES.items()
    }


def _incident(kind: str) -> tuple[str, str, list[str], list[str], list[str], str]:
    return next(i for i in INCIDENTS if i[0] == kind)


def _wording(kind: str, device: str, rng: random.Random) -> tuple[str, str, str]:
    _, _, titles, reasons, descriptions, _ = _incident(kind)
    return tuple(
        rng.choice(options).format(device=device) for options in (titles, reasons, descriptions)
    )  # type: ignore[return-value]


def history(
    size: int, *, clients_per_tenant: int = 40, seed: int = 20
) -> tuple[list[Past], list[Query]]:
    """`size` earlier escalations over two tenants with the same clients, and one query per
    (tenant 0) client, device and incident that happened before."""
    rng = random.Random(seed)
    names = clients(clients_per_tenant, rng)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    past: list[Past] = []
    for index in range(size):
        tenant = 0 if index % 4 else 1  # a quarter in the other tenant: the same clients
        client = rng.choice(names)
        kind, device_type, *_ = rng.choice(INCIDENTS)
        device = rng.choice(devices(client)[device_type])
        title, reason, description = _wording(kind, device, rng)
        fix = _incident(kind)[5].format(device=device)
        past.append(
            Past(tenant, client, device, kind, f"T{100000 + index}", title, reason, description,
                 fix, start + timedelta(minutes=5 * index))
        )  # fmt: skip
    seen = sorted({(p.client, p.device, p.kind) for p in past if p.tenant == 0})
    rng.shuffle(seen)
    later = start + timedelta(minutes=5 * size + 60)
    queries = []
    for client, device, kind in seen[:500]:
        title, reason, description = _wording(kind, device, rng)
        queries.append(Query(0, client, device, kind, title, reason, description, later))
    return past, queries


def store(connection, past: list[Past], tenant_ids: tuple[int, int], batch: int = 5_000) -> None:
    """Insert the history as the pipeline leaves it (connector/related.py's fields set)."""
    from sqlalchemy import insert

    from connector.models import Escalation

    rows = [
        {
            "tenant_id": tenant_ids[p.tenant],
            "ticket_id": p.number,
            "ticket_number": p.number,
            "ticket_title": p.title,
            "ticket_url": "",
            "escalated_by": "tech",
            "reason": p.reason,
            "delivery_key": f"history-{p.number}",
            "source": "webhook",
            "received_at": p.received_at,
            "company": p.client,
            "configuration_names": [p.device],
            "search_text": f"{p.reason}\n{p.device}\n{p.description}",
            "resolution": p.resolution,
            "resolved_by": "Sam Senior",
            "resolved_at": p.received_at + timedelta(hours=3),
            "resolution_source": "psa",
            "related": [],
        }
        for p in past
    ]
    for at in range(0, len(rows), batch):
        connection.execute(insert(Escalation), rows[at : at + batch])


def as_escalation(query: Query, tenant_id: int):
    """The new escalation, as related.find() sees it once its context is indexed."""
    from connector.models import Escalation

    return Escalation(
        id=0, tenant_id=tenant_id, ticket_title=query.title, received_at=query.received_at,
        company=query.client, configuration_names=[query.device],
        search_text=f"{query.reason}\n{query.device}\n{query.description}",
    )  # fmt: skip


def right(first: object, query: Query, numbers: dict[str, Past]) -> bool:
    """The first result is an earlier escalation of the same incident, client and device."""
    found = numbers.get(getattr(first, "ticket_number", ""))
    return found is not None and (found.tenant, found.client, found.device, found.kind) == (
        query.tenant,
        query.client,
        query.device,
        query.kind,
    )
