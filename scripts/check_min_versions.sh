#!/usr/bin/env bash
# Install facepro with every dependency at the LOWEST version pyproject.toml allows (the
# runtime dependencies and the cpu extra), then run a smoke test: every module under edge/
# imports, a metrics exposition renders (the prometheus-client API), `facepro version`,
# and `facepro config check` on the demo and the device settings. A lower bound that is not
# true fails here, not on an installer's device.
#
#   scripts/check_min_versions.sh                 # a fresh venv in a temp dir, removed afterwards
#   KEEP_VENV=DIR scripts/check_min_versions.sh   # build it in DIR and keep it
#
# Needs the package index (network, or a mirror pip is configured for) and the machine's
# Python (3.10+). Prints one JSON line with the pins and the seconds taken. Slow (minutes:
# downloads, and psutil builds from source where no wheel exists for this Python), so it
# is a CI job of its own, not part of make test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
started=$(date +%s)
venv="${KEEP_VENV:-$(mktemp -d -t facepro-minver-XXXXXX)}"
work="$(mktemp -d -t facepro-minver-work-XXXXXX)"
trap 'rm -rf "$work"; [ -n "${KEEP_VENV:-}" ] || rm -rf "$venv"' EXIT

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null

# The pins: for each requirement, the lowest release the index offers for this Python that
# its specifier allows (so "opencv-python-headless>=4.8" tests 4.8.0.76, the first 4.8
# release; pip skips yanked releases). A requirement without ">=" is an error: its minimum
# cannot be tested.
"$venv/bin/python" - "$work/constraints.txt" <<'PY'
import re
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.version import Version

with open("pyproject.toml", "rb") as fh:
    project = tomllib.load(fh)["project"]
pins = []
for text in list(project["dependencies"]) + list(project["optional-dependencies"]["cpu"]):
    req = Requirement(text)
    if not any(s.operator == ">=" for s in req.specifier):
        sys.exit(f"check_min_versions: {text!r} in pyproject.toml has no lower bound (>=)")
    out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", req.name],
                         capture_output=True, text=True, check=True).stdout
    listed = re.search(r"Available versions: (.*)", out).group(1).split(", ")
    allowed = sorted(v for v in map(Version, listed) if v in req.specifier and not v.is_prerelease)
    if not allowed:
        sys.exit(f"check_min_versions: no release of {req.name} satisfies {text!r}")
    pins.append(f"{req.name}=={allowed[0]}")
open(sys.argv[1], "w").write("\n".join(pins) + "\n")
print("pins: " + " ".join(pins), file=sys.stderr)
PY

# PIP_CONSTRAINT replaces a machine-wide constraints file, which could fight the pins.
PIP_CONSTRAINT="$work/constraints.txt" "$venv/bin/python" -m pip install -q ".[cpu]"

# The smoke test runs outside the repository, so the installed package is what is imported.
cd "$work"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
import pkgutil

import edge

names = [m.name for m in pkgutil.walk_packages(edge.__path__, "edge.") if m.name != "edge.__main__"]
for name in names:
    __import__(name)
print(f"imported {len(names)} modules of edge")
for dist in ("numpy", "threadpoolctl", "opencv-python-headless", "paho-mqtt", "psutil", "flask", "waitress",
             "prometheus-client", "cryptography", "smbprotocol", "onnxruntime"):
    print(f"  {dist} {md.version(dist)}")
from prometheus_client import CollectorRegistry, generate_latest

from edge.telemetry.prometheus import CONTENT_TYPE

assert CONTENT_TYPE.startswith("text/plain"), CONTENT_TYPE
generate_latest(CollectorRegistry())
PY
"$venv/bin/facepro" version
"$venv/bin/facepro" --config "$root/config/demo.json" config check
FACEPRO_DEVICE_ID=minver-check "$venv/bin/facepro" --config "$root/deploy/settings.device.json" config check
pins="$(tr '\n' ' ' < "$work/constraints.txt")"
echo "{\"ok\": true, \"seconds\": $(( $(date +%s) - started )), \"python\": \"$("$python" -V 2>&1)\", \"pins\": \"${pins% }\"}"
