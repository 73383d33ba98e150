#!/usr/bin/env bash
# Start facepro on config/demo.json (needs no hardware). Run through `make run`.
# The demo camera 'stage' loops the shared Hamilton clip; Lin-Manuel Miranda is enrolled
# from the shared photo on first start, so recognitions show in the log
# ("recognized Lin-Manuel Miranda on camera stage ...") and in `facepro events list`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
facepro=(.venv/bin/facepro --config config/demo.json)
person="Lin-Manuel Miranda"
photo="../shared/media/lin-manuel-miranda.png"

enrolled="$("${facepro[@]}" users list --json | .venv/bin/python -c '
import json, sys
print(any(u["name"] == sys.argv[1] for u in json.load(sys.stdin)))' "$person")"
if [ "$enrolled" != True ]; then
    echo "demo: enrolling $person from $photo"
    "${facepro[@]}" enroll "$person" "$photo"
fi
echo "demo: starting facepro (events: .venv/bin/facepro --config config/demo.json events list)"
exec "${facepro[@]}" run
