"""What every doctor check returns, and how a check reaches the probe of the part that owns it."""
from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

PASS, WARN, FAIL, INFO = "PASS", "WARN", "FAIL", "INFO"
TEGRA_RELEASE = Path("/etc/nv_tegra_release")


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def probe(module: str, name: str) -> Callable[..., Any]:
    """A probe function from the part that owns it (imported late: doctor must run even
    when one part's dependencies are broken, and then say so)."""
    return getattr(importlib.import_module(module), name)

