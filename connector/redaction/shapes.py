"""Token shapes: secrets that look the same wherever they appear (cloud keys, tokens, webhook URLs,
private key blocks, credentials in URLs), found in one linear-time RE2 pass over the text.

The vendor token shapes come from detect-secrets' regex plugins, used as data: their `denylist`
patterns are compiled here, so none of its global settings, filters or per-line scanning is
involved (no offsets, digit-only values dropped, GitHub's prefix-only group). Left out: the
keyword and entropy plugins and IPPublic (built for code, noisy on prose), Artifactory and Twilio
(they take host names such as AP02WAREHOUSE and ordinary "AC..." ids), BasicAuth and PrivateKey
(the URL and PEM shapes below take the whole credential, not a part of it). What detect-secrets
does not know (Entra client secrets, Google API keys, Teams, Discord and Power Automate webhook
URLs, SAS signatures, whole PEM and PuTTY blocks) is added below.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import re2
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector

from connector.redaction.engine import Finding, Scan

PLUGINS: tuple[type[RegexBasedDetector], ...] = (
    AWSKeyDetector,
    AzureStorageKeyDetector,
    DiscordBotTokenDetector,
    GitHubTokenDetector,
    GitLabTokenDetector,
    JwtTokenDetector,
    MailchimpDetector,
    NpmDetector,
    OpenAIDetector,
    PypiTokenDetector,
    SendGridDetector,
    SlackDetector,
    SquareOAuthDetector,
    StripeDetector,
    TelegramBotTokenDetector,
)

# A match is widened over the characters its token is made of, so a token longer than its
# shape says (GitHub allows up to 255) goes whole, not with a tail left in the text.
RUN_CHARS = r"A-Za-z0-9_\-"
JWT_CHARS = RUN_CHARS + ".+/="


@dataclass(frozen=True)
class Shape:
    kind: str
    pattern: str  # RE2 syntax; a group (?P<v>...) is the secret when only part of the match is
    widen: str = RUN_CHARS
    accept: Callable[[str], bool] = lambda value: True


OWN = (
    Shape(
        "private_key",
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)"
        r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",  # to the end when truncated
        widen="",
    ),
    Shape("private_key", r"PuTTY-User-Key-File-\d+:(?s:.*?)(?:Private-MAC: *[0-9a-fA-F]+|\z)"),
    # Webhook URLs are credentials in themselves: whoever has one can post.
    Shape("webhook_url", r"https://[\w.-]+\.webhook\.office\.com/webhook(?:b2)?/\S+", widen=""),
    Shape("webhook_url", r"https://outlook\.office(?:365)?\.com/webhook/\S+", widen=""),
    Shape(
        "webhook_url", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/\S+", widen=""
    ),
    Shape("webhook_url", r"https://(?:[\w-]+\.)?discord(?:app)?\.com/api/webhooks/\d+/[\w-]+"),
    Shape(
        "webhook_url",
        r"https://[\w.-]+\.(?:logic\.azure\.com|environment\.api\.powerplatform\.com)(?::\d+)?"
        r"/\S*(?:workflows|powerautomate)\S*",
        widen="",
    ),
    Shape(
        "api_key", r"[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}", widen=RUN_CHARS + "~."
    ),  # Entra
    Shape("api_key", r"AIza[\w-]{35}"),  # Google
    Shape("api_key", r"sk-ant-[a-z]+\d*-[\w-]{20,}"),  # Anthropic
    Shape("api_key", r"sk-(?:proj|svcacct|admin|live)-[\w-]{20,}"),  # OpenAI's newer keys
    Shape("api_key", r"[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10,99}"),  # Stripe, test keys too
    Shape("api_key", r"github_pat_\w{22,}"),
    Shape("api_key", r"xapp-\d-[A-Za-z0-9-]{10,}"),  # Slack app-level token
    Shape("api_key", r"npm_[A-Za-z0-9]{36}"),
    # A URL's query parameters that carry a credential (Azure SAS sig=, AWS presigned, ?key=).
    Shape(
        "api_key",
        r"(?i:[?&](?:sig|signature|x-amz-signature|x-amz-credential|access_token|api_?key|"
        r"token|key|password|pwd|passwd|secret|client_secret)=)(?P<v>[^&\s#\"'<>]+)",
        widen="",
    ),
    Shape("api_key", r"(?i:AccountKey|SharedAccessKey)=(?P<v>[A-Za-z0-9+/=]{20,})", widen=""),
    # scheme://user:PASSWORD@host (a "*" or a marker is no password).
    Shape(
        "connection_string_password",
        r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@\[\]]+:(?P<v>[^\s@/\[\]]+)@",
        widen="",
        accept=lambda value: value.strip("*") != "",
    ),
)


def _from_plugin(plugin: type[RegexBasedDetector], pattern: re.Pattern[str]) -> Shape:
    """A detect-secrets pattern in RE2 syntax. RE2 has no look-around and caps repetitions at
    1000: GitLab's trailing (?!\\w) is what widening does anyway, {50,1024} becomes {50,}."""
    source = pattern.pattern.replace(r"(?!\w)", "")
    source = re.sub(r",\d{4,}\}", ",}", source)
    source = re.sub(r"(?<!\\)\((?!\?)", "(?:", source)  # its groups mean nothing here
    if pattern.flags & re.IGNORECASE:
        source = f"(?i:{source})"
    kind = "webhook_url" if source.removeprefix("(?i:").startswith("https://") else "api_key"
    if plugin is JwtTokenDetector:  # its own check: the first two parts decode to JSON
        return Shape(kind, source, widen=JWT_CHARS, accept=JwtTokenDetector.is_formally_valid)
    return Shape(kind, source)


# Each plugin's class body sets `denylist` (the base class only declares it, as a property).
SHAPES = OWN + tuple(_from_plugin(p, r) for p in PLUGINS for r in vars(p)["denylist"])


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print the pattern to stderr
    options.max_mem = 64 << 20
    return options


_ALTERNATION = re2.compile(
    "|".join(f"(?P<s{i}>{shape.pattern.replace('(?P<v>', f'(?P<v{i}>')})" for i, shape in
             enumerate(SHAPES)),
    _options(),
)  # fmt: skip
_BRANCH = {_ALTERNATION.groupindex[f"s{i}"]: i for i in range(len(SHAPES))}
_VALUE = {i: _ALTERNATION.groupindex.get(f"v{i}") for i in range(len(SHAPES))}
_WIDEN = {chars: re.compile(f"[{chars}]*") for chars in {s.widen for s in SHAPES} if chars}


def _widened(text: str, start: int, end: int, chars: str) -> tuple[int, int]:
    if not chars:
        return start, end
    token = _WIDEN[chars]
    while start > 0 and token.fullmatch(text[start - 1]):
        start -= 1
    run = token.match(text, end)
    return start, run.end() if run else end


def find(scan: Scan, rank: int) -> Iterator[Finding]:
    text = scan.text
    for match in scan.finditer(_ALTERNATION):
        i = _BRANCH[match.lastindex]
        shape = SHAPES[i]
        value = _VALUE[i]
        start, end = match.span(value) if value and match.start(value) >= 0 else match.span()
        start, end = _widened(text, scan.index(start), scan.index(end), shape.widen)
        if shape.accept(text[start:end]):
            yield Finding(start, end, shape.kind, rank + i)
