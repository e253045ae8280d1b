"""A high-entropy token close after a credential word is a secret, whatever its shape: "AWS
secret for the bucket <40 chars>", "WPA2 raw key (64 hex) for the scanners: <64 hex>". A hash
word between them ("thumbprint", "SHA-256", "commit", "empreinte"...) says it is a fact."""

from __future__ import annotations

import re
from collections.abc import Iterator

import re2
from detect_secrets.plugins.high_entropy_strings import (
    Base64HighEntropyString,
    HexHighEntropyString,
)

from connector.redaction.engine import Finding, Scan

WINDOW = 48  # characters after the word, on its line, where the token must start
_CREDENTIAL_WORD = re2.compile(
    r"(?i)(?:^|[^\pL\pN])(key|token|secret|password|passwd|pwd|pw|psk|apikey|api|bearer|"
    r"clave|contraseña|clé|cle|schlüssel|kennwort|passwort|sleutel|wachtwoord|chave|senha|"
    r"chiave|jeton|segreto|secreto|segredo|geheim)(?:[^\pL\pN]|$)"
)
_TOKEN = re.compile(r"(?<![\w+/~-])[A-Za-z0-9_+/~-]{16,}={0,2}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_GUID = re.compile(r"\{?[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_FACT_WORD = re.compile(
    r"(?<![^\W_])(?:thumbprint|fingerprint|hash|sha-?\d*|md5|checksum|commit|serial|id|guid|"
    r"huella|impronta|empreinte|vingerafdruk|fingerabdruck|impressão|prüfsumme|"
    r"certificate|certificat|zertifikat|certificado|certificaat|certificato)(?![^\W_])",
    re.IGNORECASE,
)
# detect-secrets' own entropy measures, with limits for tokens that a word already vouches for.
_BASE64 = Base64HighEntropyString(limit=3.3)
_HEXES = HexHighEntropyString(limit=3.0)


def _random_enough(token: str) -> bool:
    if _HEX.fullmatch(token):
        return len(token) >= 32 and _HEXES.calculate_shannon_entropy(token) > _HEXES.entropy_limit
    has_both = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
    return has_both and _BASE64.calculate_shannon_entropy(token) > _BASE64.entropy_limit


def find(scan: Scan, rank: int) -> Iterator[Finding]:
    text = scan.text
    for word in scan.finditer(_CREDENTIAL_WORD):
        after = scan.index(word.end(1))
        line_end = text.find("\n", after)
        limit = min(after + WINDOW, len(text) if line_end == -1 else line_end)
        token = _TOKEN.search(text, after, len(text) if line_end == -1 else line_end)
        if token is None or token.start() > limit or _GUID.match(token.group()):
            continue
        if _FACT_WORD.search(text, after, token.start()) or not _random_enough(token.group()):
            continue  # "key ... thumbprint <hex>": the nearer word wins
        yield Finding(token.start(), token.end(), "api_key", rank)
