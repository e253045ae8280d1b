"""Settings from the environment, in one typed object.

A wrong or missing value stops start-up with a message naming the variable.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography.fernet import Fernet

MAX_BODY_BYTES = 1024 * 1024  # webhooks and API bodies: 1 MiB, answered 413 beyond

DEFAULT_SUMMARY_MODEL = "claude-sonnet-5-5"
DEFAULT_TONE_MODEL = "claude-haiku-5-5"

# USD per million tokens (input, output); from Anthropic's price list, late 2026.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "claude-sonnet-5-5": (2.0, 10.0),
    "claude-haiku-5-5": (0.10, 0.50),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-opus-5-5": (4.0, 20.0),
}


class ConfigError(Exception):
    """A setting is wrong or missing; the message names the variable."""


@dataclass(frozen=True)
class SMTPSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    use_ssl: bool  # smtps:// ; plain smtp:// upgrades with STARTTLS when offered


@dataclass(frozen=True)
class Settings:
    instance_path: Path
    database_url: str
    redis_url: str | None
    secret_keys: tuple[str, ...]
    admin_token: str | None
    public_url: str
    summary_model: str = DEFAULT_SUMMARY_MODEL
    tone_model: str = DEFAULT_TONE_MODEL
    ai_deadline_seconds: float = 20.0
    # The summary call streams, so the panel fills while the model writes; off only where a
    # proxy holds event streams back (the benchmark compares the two).
    ai_stream: bool = True
    smtp: SMTPSettings | None = None
    mail_from: str = "Baton <baton@localhost>"
    allow_private_urls: bool = False
    context_budget_tokens: int = 12000
    prices: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    run_embedded_worker: bool = True
    sandbox: bool = False  # mount the sandbox PSA and seed a sandbox tenant (embedded demo)
    sandbox_dialect: str = ""  # the PSA the sandbox speaks; empty keeps the tenant's choice
    # How long past the AI deadline a pending handoff may wait for its job (PSA reads included)
    # before the sweeper finishes it with the fallback.
    sweep_grace_seconds: float = 30.0
    webhook_rate_limit: str = "1200/minute"  # per tenant
    api_rate_limit: str = "600/minute"  # per member
    # Hold every PSA request to the limits its vendor declares, across all workers (issue 19);
    # off only to measure what the PSA refuses without it.
    psa_limiter: bool = True
    # The organisation's limits per model, held across every worker: model -> (requests per
    # minute, input tokens per minute); a model not named, or None, is not held.
    model_limits: Mapping[str, tuple[int | None, int | None]] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.redis_url is None

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **overrides)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _float(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {raw!r}")
    return value


def _limit(env: Mapping[str, str], name: str) -> int | None:
    """A per-minute limit: unset or 0 means none."""
    value = int(_float(env, name, 0, minimum=0))
    return value or None


def _model_limits(
    env: Mapping[str, str], summary_model: str, tone_model: str
) -> dict[str, tuple[int | None, int | None]]:
    limits: dict[str, tuple[int | None, int | None]] = {}
    for prefix, model in (("SUMMARY", summary_model), ("TONE", tone_model)):
        rpm = _limit(env, f"CONNECTOR_{prefix}_RPM")
        tpm = _limit(env, f"CONNECTOR_{prefix}_TPM")
        if model in limits and (rpm or tpm) and limits[model] != (rpm, tpm):
            raise ConfigError(
                f"CONNECTOR_{prefix}_RPM/TPM: {model} is both models, with other limits"
            )
        if rpm or tpm:
            limits[model] = (rpm, tpm)
    return limits


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    parts = urlsplit(raw.strip())
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ConfigError(f"{name} must be a URL starting with {' or '.join(schemes)}")
    return raw.strip()


def _rate(env: Mapping[str, str], name: str, default: str) -> str:
    raw = (env.get(name) or "").strip() or default
    from limits import parse_many

    try:
        parse_many(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a rate like '600/minute', not {raw!r}") from None
    return raw


def parse_smtp_url(raw: str | None) -> SMTPSettings | None:
    if raw is None:
        return None
    parts = urlsplit(raw)
    if not parts.hostname:
        raise ConfigError("CONNECTOR_SMTP_URL must name a host: smtp://user:password@host:port")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError("CONNECTOR_SMTP_URL has an invalid port") from None
    use_ssl = parts.scheme == "smtps"
    return SMTPSettings(
        host=parts.hostname,
        port=port or (465 if use_ssl else 587),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_ssl=use_ssl,
    )


def _secret_keys(env: Mapping[str, str], instance_path: Path, embedded: bool) -> tuple[str, ...]:
    raw = env.get("CONNECTOR_SECRET_KEY", "").strip()
    if not raw:
        if not embedded:
            raise ConfigError(
                "CONNECTOR_SECRET_KEY is required when REDIS_URL is set (production mode); "
                "generate one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            )
        return (_embedded_secret_key(instance_path),)
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for key in keys:
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError(
                "CONNECTOR_SECRET_KEY must be a comma-separated list of Fernet keys "
                "(32 url-safe base64-encoded bytes each)"
            ) from None
    return keys


def _embedded_secret_key(instance_path: Path) -> str:
    """Embedded mode keeps a generated key under instance/ so restarts can still decrypt."""
    path = instance_path / "secret.key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    env = os.environ if env is None else env
    instance_path = Path(env.get("CONNECTOR_INSTANCE_PATH") or Path.cwd() / "instance").resolve()
    redis_url = _url(env, "REDIS_URL", ("redis", "rediss", "unix"))
    embedded = redis_url is None
    database_url = _url(
        env, "DATABASE_URL", ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
    )
    if database_url is None:
        instance_path.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{instance_path / 'baton.db'}"
    elif database_url.startswith(("postgres://", "postgresql://")):
        # Heroku-style URLs name no driver; Baton ships psycopg 3.
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
    public_url = _url(env, "CONNECTOR_PUBLIC_URL", ("http", "https"))
    summary_model = env.get("CONNECTOR_SUMMARY_MODEL", "").strip() or DEFAULT_SUMMARY_MODEL
    tone_model = env.get("CONNECTOR_TONE_MODEL", "").strip() or DEFAULT_TONE_MODEL
    mail_from = env.get("CONNECTOR_MAIL_FROM", "").strip() or "Baton <baton@localhost>"
    if "@" not in mail_from:
        raise ConfigError(
            "CONNECTOR_MAIL_FROM must be an email address, e.g. Baton <baton@msp.example>"
        )
    settings = Settings(
        instance_path=instance_path,
        database_url=database_url,
        redis_url=redis_url,
        secret_keys=_secret_keys(env, instance_path, embedded),
        admin_token=env.get("CONNECTOR_ADMIN_TOKEN", "").strip() or None,
        public_url=(public_url or "http://127.0.0.1:5000").rstrip("/"),
        summary_model=summary_model,
        tone_model=tone_model,
        ai_deadline_seconds=_float(env, "CONNECTOR_AI_DEADLINE_SECONDS", 20.0, minimum=1.0),
        ai_stream=_bool(env, "CONNECTOR_AI_STREAM", default=True),
        smtp=parse_smtp_url(_url(env, "CONNECTOR_SMTP_URL", ("smtp", "smtps"))),
        mail_from=mail_from,
        allow_private_urls=_bool(env, "CONNECTOR_ALLOW_PRIVATE_URLS", default=embedded),
        context_budget_tokens=int(
            _float(env, "CONNECTOR_CONTEXT_BUDGET_TOKENS", 12000, minimum=1000)
        ),
        run_embedded_worker=_bool(env, "CONNECTOR_EMBEDDED_WORKER", default=True),
        sandbox=_bool(env, "CONNECTOR_SANDBOX", default=embedded),
        sandbox_dialect=env.get("CONNECTOR_SANDBOX_DIALECT", "").strip().lower(),
        sweep_grace_seconds=_float(env, "CONNECTOR_SWEEP_GRACE_SECONDS", 30.0, minimum=0.0),
        webhook_rate_limit=_rate(env, "CONNECTOR_WEBHOOK_RATE_LIMIT", "1200/minute"),
        api_rate_limit=_rate(env, "CONNECTOR_API_RATE_LIMIT", "600/minute"),
        psa_limiter=_bool(env, "CONNECTOR_PSA_LIMITER", default=True),
        model_limits=_model_limits(env, summary_model, tone_model),
    )
    return settings.with_overrides(**overrides) if overrides else settings


def new_token() -> str:
    return secrets.token_urlsafe(32)
