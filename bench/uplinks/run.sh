#!/usr/bin/env bash
# HTTP uplinks benchmark (issue 6): registers a service group "load" and
# 10,000 devices on a running zenne, then drives POST /iot/json with wrk.
#   ZENNE_API_KEY=zk_... bench/uplinks/run.sh [http://127.0.0.1:1026] [seconds]
set -euo pipefail
base=${1:-http://127.0.0.1:1026}
secs=${2:-15}
: "${ZENNE_API_KEY:?give an operator's or administrator's key in ZENNE_API_KEY}"
auth="Authorization: Bearer $ZENNE_API_KEY"
curl -sf -o /dev/null -X POST "$base/iot/services" -H "$auth" -H 'Content-Type: application/json' -d '{"services": [{"apikey": "load", "entity_type": "WeatherObserved",
  "attributes": [{"object_id": "t", "name": "temperature", "unitCode": "CEL"}, {"object_id": "h", "name": "relativeHumidity", "unitCode": "P1"},
  {"object_id": "p", "name": "atmosphericPressure", "unitCode": "A97"}]}]}' || echo "(the group exists already)"
for b in $(seq 0 9); do
  python3 - "$b" <<'PY' | curl -sf -o /dev/null -X POST "$base/iot/devices" -H "$auth" -H 'Content-Type: application/json' --data-binary @- || echo "(devices of batch $b exist already)"
import json, sys
b = int(sys.argv[1])
print(json.dumps({"devices": [{"device_id": "d%05d" % i, "apikey": "load"} for i in range(b * 1000, b * 1000 + 1000)]}))
PY
done
wrk -t2 -c64 -d"${secs}s" -s "$(dirname "$0")/up.lua" "$base"
