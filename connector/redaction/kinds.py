"""What each redaction kind is called in plain words, for the handoff screen and the note."""

from __future__ import annotations

from collections.abc import Mapping

# kind -> (one, several). The kind itself is what the marker says: "[redacted: wifi_key]".
WORDS: dict[str, tuple[str, str]] = {
    "password": ("password", "passwords"),
    "wifi_key": ("Wi-Fi key", "Wi-Fi keys"),
    "api_key": ("API key or token", "API keys or tokens"),
    "private_key": ("private key", "private keys"),
    "connection_string_password": ("connection-string password", "connection-string passwords"),
    "bitlocker_key": ("BitLocker recovery key", "BitLocker recovery keys"),
    "card_number": ("card number", "card numbers"),
    "webhook_url": ("webhook URL", "webhook URLs"),
    "recovery_code": ("recovery or MFA code", "recovery or MFA codes"),
    "pin": ("PIN or door code", "PINs or door codes"),
    "never_send": ("never-send term", "never-send terms"),
}


def describe(kinds: Mapping[str, int]) -> str:
    """ "2 passwords, 1 API key or token": most frequent first; "" when nothing was removed."""
    counted = sorted(((n, k) for k, n in kinds.items() if n > 0), key=lambda p: (-p[0], p[1]))
    parts = []
    for n, kind in counted:
        one, several = WORDS.get(kind, (kind.replace("_", " "), kind.replace("_", " ") + "s"))
        parts.append(f"{n} {one if n == 1 else several}")
    return ", ".join(parts)
