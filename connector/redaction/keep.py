"""The keep pass: shapes a senior needs and that look like secrets. A finding that only its
neighbourhood suggests (see Finding.claimed) is dropped where it overlaps one of these; a
credential word right before a value still claims it ("API token 6f1e2d3c-...")."""

from __future__ import annotations

import re2

from connector.redaction.engine import Finding

_HEX = "[0-9a-fA-F]"
KEEP = re2.compile(
    "|".join(
        (
            rf"\{{?{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}\}}?",  # GUID
            rf"\b(?:{_HEX}{{64}}|{_HEX}{{40}}|{_HEX}{{32}})\b",  # hashes, thumbprints
            rf"\b{_HEX}{{2}}(?:[:-]{_HEX}{{2}}){{5}}\b",  # MAC
            r"\b0x[0-9a-fA-F]{2,8}\b",  # HRESULT, NTSTATUS, Win32
            r"\bKB\d{6,7}\b",
            r"\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2}|:\d{1,5})?\b",  # IPv4, CIDR, port
            rf"\b{_HEX}{{1,4}}(?::{_HEX}{{0,4}}){{2,7}}\b",  # IPv6 (and clock times)
            r"\bv?\d+(?:\.\d+){1,3}\b",  # versions, builds
            r"#\d{3,}|\bT\d{8}\.\d{4}\b",  # ticket numbers
            r"\b[A-Z]{4,}\d{3,}\b",  # error codes such as AADSTS50126
            r"\b[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+\b",  # host names: SRV-DC01, KV-LT-0231
            r"\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:local|lan|corp|internal|intra|home|"
            r"com|net|org|io|de|es|fr|nl|pt|it|uk|eu|br|be|ch|at|us|ca|au|co|info|biz|cloud|"
            r"example|test)\b",  # FQDNs
            r"\\\\[\w.$-]+(?:\\[\w.$-]+)*",  # UNC paths
            r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b",  # e-mail addresses
            r"(?i:\b(?:event(?: ?id)?|ereignis(?:-id)?|evento|événement|gebeurtenis|id|error|"
            r"fehler|erreur|errore|erro|fout|status)[ :#]*\d{1,5}\b)",  # event ids, error numbers
            r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b|\b\d{1,2}:\d{2}(?::\d{2})?\b",  # dates, times
        )
    ),
    re2.Options(),
)


_EDGES = "\"'`([{<.,;:!?)]}>"
_MARGIN = 60  # context a kept shape may need around a value ("error 4471", word boundaries)


def shields(text: str, finding: Finding) -> bool:
    """Whether a kept shape is the whole value (quotes and trailing punctuation aside): a shape
    inside a longer value ("Shared#2024") shields nothing."""
    value = text[finding.start : finding.end]
    start = finding.start + len(value) - len(value.lstrip(_EDGES))
    end = finding.start + len(value.rstrip(_EDGES))
    base = max(0, start - _MARGIN)
    window = text[base : end + _MARGIN]
    return any(base + m.start() <= start and base + m.end() >= end for m in KEEP.finditer(window))
