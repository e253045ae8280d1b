"""Take secrets out of ticket text before anything leaves Baton.

`redact(text)` replaces every secret it recognises with ``[redacted: <kind>]`` and
counts the replacements per kind. Keywords stay ("temp pw is [redacted: password]") so
the reader still knows a password was handed out; only the value goes.

The patterns lean towards redacting: a lost word in a handoff costs little, a password
in a model prompt or on an escalation row costs a lot. What is not a secret stays:
usernames, hostnames, IP addresses, error codes, ticket numbers, times and dates, and
any digit run that fails the Luhn check. Redacting is idempotent: a marker never
matches a pattern, and a text is redacted again until nothing changes.

Speed: Python's `re` scans slowly for case-insensitive alternations, so each rule lists
the words a secret of its kind starts with; `str.find` locates them in the lower-cased
text and the full pattern is only tried there. tests/unit/test_redaction.py prints the
time for a megabyte of ticket notes.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

MARKER = "[redacted: {kind}]"


@dataclass(frozen=True)
class Redacted:
    text: str
    kinds: Counter[str] = field(default_factory=Counter)


# --- value shapes ---------------------------------------------------------------------
# A value is one whitespace-free run (or a quoted string). Trailing punctuation goes
# with it: a swallowed full stop is harmless, a leaked last character is not.

# Never take a value that holds an earlier marker: keeps redact() idempotent.
_NOT_MARKER = r"(?![^\s'\"]*\[redacted)"
# Times and dates are not passwords ("last bad pwd 9:56am", "pw reset 1/7").
_NOT_WHEN = r"(?!\d{1,2}:\d{2}|\d{1,4}[/.-]\d{1,2}(?:[/.-]\d{1,4})?(?:[ap]m)?(?:[.,;)]*(?:\s|$)))"
# A quoted value may hold spaces ("new password is 'correct horse battery'").
_QUOTED = r"""(?:'[^'\n]{1,200}'|"[^"\n]{1,200}"|`[^`\n]{1,200}`|“[^”\n]{1,200}”)"""
# Words that say there is no value after "password:" ("pw: see IT Glue", "pw = ?").
_NOT_A_VALUE = (
    r"(?!(?:\?+|-+|n/?a|none|null|unknown|not|no|same|see|blank|empty|expired|expires|"
    r"reset|never|tbd|changed|required|missing|the|is|was|in|on|for|from|and|or|ok|yes|"
    r"wrong|incorrect|invalid|policy|change|manager|prompt|prompts|field|box|dialog)"
    r"(?:[.,;:!?)]*(?:\s|$)))"
)
# Straight after "password:" / "PSK =": anything of three characters or more.
_LOOSE = _NOT_A_VALUE + r"\S{3,}"
# After "password is" / "password to" / "pw per IT Glue:": it must look like a password,
# letters plus a digit, an inner symbol or camel case ("expired." does not).
_SHAPED = (
    _NOT_WHEN + r"(?=\S{4,})(?=\S*[A-Za-z])"
    r"(?-i:(?=\S*\d|\S*[^\w\s]\S|\S*[a-z]\S*[A-Z]))\S+"
)
# Right after the keyword with no separator ("temp pw Brookhaven!0412"): stricter,
# six characters, letters and digits, and a symbol or mixed case.
_STRICT = (
    _NOT_WHEN + r"(?=\S{6,})(?=\S*\d)(?=\S*[A-Za-z])"
    r"(?-i:(?=\S*[^\w\s]|\S*[a-z]\S*[A-Z]|\S*[A-Z]\S*[a-z]))\S+"
)
# Up to four words between a keyword and ":" / "=" / " is " / " to "
# ("pw per IT Glue: X", "password was reset to X").
_FILLER = r"(?:[ \t]+[^\W\d_(][\w'\u2019/()&.-]{0,29}){1,4}?"
# Between a separator and its value: spaces, &nbsp; and inline HTML tags
# ("<b>Password:</b> X", "Password:&nbsp;X").
_GAP = r"(?:[ \t]|&nbsp;|</?[a-z][^<>\n]{0,60}>)*+"  # possessive: never gives a tag back
# Natural-language separators, in the languages tickets arrive in.
_SAYS = r"(?:is|was|to|-|\u2013|es|era|ist|lautet|war|est|était|é)"
# A long high-entropy token: 16+ characters with letters and digits.
_HIGH_ENTROPY = r"(?=[\w./+~-]*\d)(?=[\w./+~-]*[A-Za-z])[\w./+~-]{16,}={0,2}"


def _keyed(keywords: str) -> re.Pattern[str]:
    """A "<keyword> <separator> <value>" pattern; the value groups are what is redacted."""
    return re.compile(
        rf"""
        (?<![\w-]){keywords}(?![\w-])
        (?:
            ["']?{_GAP}[:=]{_GAP}{_NOT_MARKER}(?P<value>{_QUOTED}|{_LOOSE})   # pw: X, PSK = X
          | {_FILLER}[ \t]*(?::|=|[ \t](?:is|was|to)[ \t]){_GAP}{_NOT_MARKER}
            (?P<value2>{_QUOTED}|{_SHAPED})                  # pw per IT Glue: X, pw was reset to X
          | [ \t]+(?:(?:set|reset|changed)[ \t]+)?{_SAYS}[ \t]+
            (?:(?:now|set[ \t]+to|still)[ \t]+)?
            {_NOT_MARKER}(?P<value3>{_QUOTED}|{_SHAPED})                      # password is X
          | [ \t]+{_NOT_MARKER}(?P<value4>{_QUOTED}|{_STRICT})                # temp pw X
        )
        """,
        re.IGNORECASE | re.VERBOSE,
    )


# --- one pattern per kind -------------------------------------------------------------

# private_key: PEM / OpenSSH / PGP private key blocks, BEGIN through END, or through the
# end of the text when the END line is missing (a truncated paste).
PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
    re.DOTALL,
)

# connection_string_password: the value of Password= / Pwd= in a connection string (up
# to the next ";", or to the end of the line when it is the last pair), and the password
# in URL credentials (scheme://user:PASS@host).
_CONN_VALUE = r"""(?:"[^"\n]*"|'[^'\n]*'|\{[^}\n]*\})"""
CONNECTION_STRING_PASSWORD = re.compile(
    rf"""
    (?<![\w-])(?:password|pwd)[ \t]*=[ \t]*{_NOT_MARKER}
    (?P<value>{_CONN_VALUE}|[^;\n]+?)(?=[ \t]*;)                     # Password=X;
  | (?:(?<=;)|(?<=;[ \t]))(?:password|pwd)[ \t]*=[ \t]*{_NOT_MARKER}
    (?P<value2>{_CONN_VALUE}|[^;\n]+)                                # ...;Pwd=X<end>
  | ://[^\s:/@]+:{_NOT_MARKER}(?P<value3>[^\s@/]+)@                  # scheme://user:X@host
    """,
    re.IGNORECASE | re.VERBOSE,
)

# bitlocker_key: a BitLocker recovery password, 8 groups of 6 digits joined by dashes.
BITLOCKER_KEY = re.compile(r"(?<!\d)(?<!\d-)\d{6}(?:-\d{6}){7}(?!\d|-\d)")

# card_number: 13-19 digits, contiguous or in groups with one consistent space or dash
# (4-4-4-4, 4-6-5, ...), and only when the Luhn check passes (see _luhn_ok).
CARD_NUMBER = re.compile(
    r"(?<!\w)(?<!\w-)(?:\d{13,19}|\d{4}(?P<sep>[ -])\d{4,6}(?:(?P=sep)\d{3,5}){1,3})(?!\w|[ -]\d)"
)

# wifi_key: Wi-Fi pre-shared keys and passphrases ("PSK = X", "WPA2 key: X",
# "Wi-Fi password is X", "SSID password X").
_WIFI_WORDS = r"""(?:
    wpa[23]?(?:[- ]?(?:psk|personal))?(?:[ \t]+(?:key|password|passphrase|pass|pw))?
  | psk | pre-?shared[ \t]+key
  | wi-?fi[ \t]+(?:key|password|passphrase|pass|pw|code)
  | wireless[ \t]+(?:key|password|passphrase)
  | network[ \t]+(?:security[ \t]+)?key
  | ssid[ \t]+(?:password|key|pw|pass|passphrase)
)"""
WIFI_KEY = _keyed(_WIFI_WORDS)

# api_key: well-known token formats anywhere, "Authorization: Bearer X", and long
# high-entropy tokens after key / token / secret words, including identifiers that end
# in them (CF_API_TOKEN=X, client_secret: X, "api key is X").
API_KEY = re.compile(
    rf"""
    (?<![\w-])(?-i:(?P<value>
        sk-(?=[\w-]*\d)[A-Za-z0-9_-]{{20,}}                     # Anthropic / OpenAI
      | [sr]k_(?:live|test)_[A-Za-z0-9]{{16,}}                  # Stripe
      | xox[abposr]-[A-Za-z0-9-]{{10,}}                         # Slack
      | gh[pousr]_[A-Za-z0-9]{{20,}} | github_pat_\w{{20,}}     # GitHub
      | glpat-[\w-]{{20,}}                                      # GitLab
      | AKIA[0-9A-Z]{{16}}                                      # AWS access key id
      | AIza[\w-]{{35}}                                         # Google API key
    ))(?![\w-])
  | (?:authorization[ \t]*[:=][ \t]*["']?(?:bearer|basic|token)|bearer)[ \t]+
    {_NOT_MARKER}(?P<value2>[\w./+~-]{{8,}}={{0,2}})           # Authorization: Bearer X
  | (?:key|token|secret)(?![A-Za-z0-9])
    (?:["']?{_GAP}[:=]{_GAP}|[ \t]+(?:is[ \t]+)?)["']?{_NOT_MARKER}
    (?P<value3>{_HIGH_ENTROPY})                                # api_key=X, token X
    """,
    re.IGNORECASE | re.VERBOSE,
)

# password: passwords and temporary passwords after password words in English, German,
# Spanish and French ("reset her password to X", "temp pw: X", "Kennwort lautet X").
_PW_WORDS = r"""(?:
    passwords? | passwd | pwd | pw | pass | passphrase | passcode
  | kennwort | passwort | contraseña | contrasena | clave | mot[ \t]+de[ \t]+passe
)"""
PASSWORD = _keyed(_PW_WORDS)


# --- rules ------------------------------------------------------------------------------


def _luhn_ok(match: re.Match[str]) -> bool:
    digits = [int(ch) for ch in match.group(0) if ch.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# Where a secret of a kind can begin: lower-case words found with str.find (fast), or a
# digit pattern. Every pattern above starts with one of its rule's words; the test suite
# checks each kind, so a keyword added to a pattern must be added here too.
_Starts = tuple[str, ...] | re.Pattern[str]
# Four digits: where a card number or BitLocker key can begin. Spelled out because `re`
# scans this form several times faster than [0-9]{4}.
_DIGITS = re.compile(r"[0-9][0-9][0-9][0-9]")


@dataclass(frozen=True)
class _Rule:
    kind: str
    starts: _Starts
    pattern: re.Pattern[str]  # the secret, tried at each place a start word occurs
    accept: Callable[[re.Match[str]], bool] = lambda match: True


# In priority order: where two rules claim the same characters the earlier one wins, so a
# BitLocker key is not read as a card number and "Wi-Fi password: X" is a wifi_key.
_RULES = (
    _Rule("private_key", ("-----begin",), PRIVATE_KEY),
    _Rule("connection_string_password", ("password", "pwd", "://"), CONNECTION_STRING_PASSWORD),
    _Rule("bitlocker_key", _DIGITS, BITLOCKER_KEY),
    _Rule("card_number", _DIGITS, CARD_NUMBER, _luhn_ok),
    _Rule(
        "wifi_key",
        ("wpa", "psk", "pre", "wi-fi", "wifi", "wireless", "network", "ssid"),
        WIFI_KEY,
    ),
    _Rule(
        "api_key",
        (
            *("sk-", "sk_", "rk_", "xox", "gh", "github_pat_", "glpat-", "akia", "aiza"),
            *("authorization", "bearer", "key", "token", "secret"),
        ),
        API_KEY,
    ),
    _Rule("password", ("pass", "pw", "kennwort", "contrase", "clave", "mot"), PASSWORD),
)

_VALUE_GROUPS = ("value", "value2", "value3", "value4")


def _starts(starts: _Starts, lowered: str) -> list[int]:
    """Sorted positions in `lowered` where a match may begin."""
    if isinstance(starts, re.Pattern):
        # Hits never span a non-digit, so the start of every run of 4+ digits is a hit.
        return [hit.start() for hit in starts.finditer(lowered)]
    found: set[int] = set()
    for word in starts:
        i = lowered.find(word)
        while i != -1:
            found.add(i)
            i = lowered.find(word, i + 1)
    return sorted(found)


def _secret_span(match: re.Match[str]) -> tuple[int, int]:
    """The value group that matched (keywords stay), or the whole match."""
    for name in _VALUE_GROUPS:
        if name in match.re.groupindex and match.group(name) is not None:
            return match.span(name)
    return match.span()


def _spans(rule: _Rule, text: str, starts: list[int]) -> list[tuple[int, int]]:
    """Every secret of one rule, left to right, not overlapping."""
    spans: list[tuple[int, int]] = []
    done = 0
    for start in starts:
        if start < done:
            continue
        match = rule.pattern.match(text, start)
        if match is not None and rule.accept(match):
            spans.append(_secret_span(match))
            done = match.end()
    return spans


def _lowered(text: str) -> str:
    """text.lower(), keeping every index in place (a few characters lower to two)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)


def _redact_once(text: str) -> tuple[str, Counter[str]]:
    kinds: Counter[str] = Counter()
    lowered = _lowered(text)
    claimed: list[tuple[int, int, str]] = []  # sorted, never overlapping
    starts: dict[_Starts, list[int]] = {}
    for rule in _RULES:
        if rule.starts not in starts:
            starts[rule.starts] = _starts(rule.starts, lowered)
        for start, end in _spans(rule, text, starts[rule.starts]):
            i = bisect.bisect_left(claimed, (start,))
            overlaps_before = i > 0 and claimed[i - 1][1] > start
            overlaps_after = i < len(claimed) and claimed[i][0] < end
            if not (overlaps_before or overlaps_after):
                claimed.insert(i, (start, end, rule.kind))
    if not claimed:
        return text, kinds
    out: list[str] = []
    last = 0
    for start, end, kind in claimed:
        out.append(text[last:start])
        out.append(MARKER.format(kind=kind))
        kinds[kind] += 1
        last = end
    out.append(text[last:])
    return "".join(out), kinds


# A replacement changes what its neighbours see, so a text with secrets is redacted again
# until nothing changes: that is what makes redact() idempotent. Texts without secrets
# take one pass; real ones settle in two.
_MAX_PASSES = 4


def redact(text: str) -> Redacted:
    """Replace every recognised secret in `text` with ``[redacted: <kind>]``."""
    kinds: Counter[str] = Counter()
    for _ in range(_MAX_PASSES):
        text, found = _redact_once(text or "")
        if not found:
            break
        kinds.update(found)
    return Redacted(text, kinds)
