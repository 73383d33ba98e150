"""What every doctor check returns."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

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


