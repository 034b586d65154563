#!/usr/bin/env bash
# Retake the two screenshots of the README and the site with headless Chromium
# (apt-get install chromium): the built site's home page and a demo's report.html.
#   mkdocs build --strict && physnode demo --quick --out /tmp/demo && docs/screenshots/take.sh /tmp/demo
set -euo pipefail
cd "$(dirname "$0")/../.."
demo="${1:?usage: docs/screenshots/take.sh DEMO_DIR}"
shot() { chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --virtual-time-budget=5000 --window-size=1280,1600 --screenshot="$1" "$2"; }
shot docs/screenshots/site.png "file://$PWD/site/index.html"
shot docs/screenshots/report.png "file://$(realpath "$demo")/report.html"
