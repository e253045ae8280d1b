"""Take secrets out of text before anything leaves Baton: ticket text before the model call,
and the model's answers before they are saved, shown or written to the PSA.

`redact(text, tenant_rules)` replaces every secret it recognises with ``[redacted: <kind>]``
and counts the replacements per kind. Layers, each reporting spans:

- shapes: token shapes in one RE2 pass (detect-secrets' regex plugins plus what they lack);
- prose: a credential word in any of the seven handoff languages, a connector, a value of the
  right shape; user/secret pairs and pasted commands; BitLocker keys; card numbers;
- nearby: a high-entropy token close after a credential word;
- the tenant's own never-send terms and patterns.

The keep pass (keep.py) then shields error codes, GUIDs, IPs, hashes, hosts and the like from
any value that only its neighbourhood suggested. Overlapping spans merge. Redacting is
idempotent: a marker never matches, and a text is redacted again until nothing changes.
bench/redaction.py measures recall, facts kept and speed on tests/redaction/eval_lines.jsonl.
"""

from __future__ import annotations

from collections import Counter

from connector.redaction import keep, nearby, prose, shapes
from connector.redaction.engine import (
    MARKER,
    MARKERS,
    Finding,
    Redacted,
    Scan,
    merge,
    overlaps,
    render,
    union,
)
from connector.redaction.kinds import describe
from connector.redaction.tenant import TenantRules

__all__ = ["MARKER", "Redacted", "TenantRules", "describe", "redact"]

# Ranks: shapes name a kind first, then the prose rules, then nearby, then the tenant's.
_PROSE, _NEARBY, _TENANT = 100, 200, 300


def _findings(text: str, tenant: TenantRules | None) -> list[Finding]:
    scan = Scan(text)
    found = [
        *shapes.find(scan, 0),
        *prose.find(scan, _PROSE),
        *nearby.find(scan, _NEARBY),
    ]
    if tenant is not None:
        found += tenant.find(text, _TENANT)
    return found


def _redact_once(text: str, tenant: TenantRules | None) -> tuple[str, Counter[str]]:
    found = _findings(text, tenant)
    if not found:
        return text, Counter()
    markers = union(m.span() for m in MARKERS.finditer(text)) if "[redacted: " in text else []
    survivors = [
        f
        for f in found
        if not overlaps(markers, f.start, f.end) and (f.claimed or not keep.shields(text, f))
    ]
    return render(text, merge(survivors))


# A replacement changes what its neighbours see, so a text with secrets is redacted again
# until nothing changes: that is what makes redact() idempotent. Every rule but the PEM and
# PuTTY blocks (taken whole the first time) stays within a line, so only the lines a pass
# changed are redacted again. Texts without secrets take one pass; real ones settle in two.
_MAX_PASSES = 4


def redact(text: str, tenant: TenantRules | None = None) -> Redacted:
    """Replace every recognised secret in `text` with ``[redacted: <kind>]``."""
    text, kinds = _redact_once(text or "", tenant)
    lines = text.split("\n")
    changed = [i for i, line in enumerate(lines) if "[redacted: " in line] if kinds else []
    for _ in range(_MAX_PASSES - 1):
        again = []
        for i in changed:
            lines[i], found = _redact_once(lines[i], tenant)
            if found:
                kinds.update(found)
                again.append(i)
        if not again:
            break
        changed = again
    return Redacted("\n".join(lines) if kinds else text, kinds)
