#!/usr/bin/env bash
# Start facepro on config/demo.json (needs no hardware). Run through `make run`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
facepro=(.venv/bin/facepro --config config/demo.json)
exec "${facepro[@]}" run
