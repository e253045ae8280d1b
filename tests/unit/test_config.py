"""Settings from the environment: defaults, and a clear error naming the variable."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from connector.config import ConfigError, load_settings


def test_embedded_defaults(tmp_path):
    settings = load_settings({"CONNECTOR_INSTANCE_PATH": str(tmp_path)})
    assert settings.embedded
    assert settings.database_url == f"sqlite:///{tmp_path / 'baton.db'}"
    assert settings.summary_model == "claude-sonnet-5-5"
    assert settings.tone_model == "claude-haiku-5-5"
    assert settings.ai_deadline_seconds == 20
    # Embedded mode keeps a generated key so that a restart can still decrypt.
    again = load_settings({"CONNECTOR_INSTANCE_PATH": str(tmp_path)})
    assert settings.secret_keys == again.secret_keys
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


def test_production_requires_a_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="CONNECTOR_SECRET_KEY"):
        load_settings(
            {"REDIS_URL": "redis://localhost:6379/0", "CONNECTOR_INSTANCE_PATH": str(tmp_path)}
        )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONNECTOR_SECRET_KEY", "not-a-fernet-key"),
        ("CONNECTOR_AI_DEADLINE_SECONDS", "soon"),
        ("CONNECTOR_AI_DEADLINE_SECONDS", "0"),
        ("REDIS_URL", "http://localhost"),
        ("DATABASE_URL", "mysql://x"),
        ("CONNECTOR_PUBLIC_URL", "ftp://x"),
        ("CONNECTOR_SMTP_URL", "http://mail"),
        ("CONNECTOR_MAIL_FROM", "nobody"),
        ("CONNECTOR_ALLOW_PRIVATE_URLS", "maybe"),
    ],
)
def test_wrong_values_name_the_variable(tmp_path, name, value):
    env = {"CONNECTOR_INSTANCE_PATH": str(tmp_path), name: value}
    with pytest.raises(ConfigError, match=name):
        load_settings(env)


def test_key_rotation_list_and_smtp_url(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = load_settings(
        {
            "CONNECTOR_INSTANCE_PATH": str(tmp_path),
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "CONNECTOR_SECRET_KEY": f"{new}, {old}",
            "CONNECTOR_SMTP_URL": "smtp://user%40x:p%40ss@mail.example:2525",
            "DATABASE_URL": "postgresql://postgres@127.0.0.1/test",
        }
    )
    assert settings.secret_keys == (new, old)
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.smtp and settings.smtp.username == "user@x" and settings.smtp.password == "p@ss"
    assert settings.smtp.port == 2525 and not settings.allow_private_urls
