"""What a vendor's connection needs: the admin API and console build their forms from this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SettingField:
    name: str
    label: str
    secret: bool = False  # encrypted at rest, write-only over the API
    required: bool = True
    kind: Literal["text", "url", "email", "choice"] = "text"
    choices: tuple[str, ...] = ()
    help: str = ""
    min_length: int = 0
    max_length: int = 200
