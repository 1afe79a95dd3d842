#!/usr/bin/env bash
# Assert what systemd/install.sh laid down (run as root on the target, or in the emulated Pi).
set -uo pipefail
fail=0
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi; }
mode() { [ "$(stat -c %a "$1")" = "$2" ]; }
group_of() { [ "$(stat -c %G "$1")" = "$2" ]; }
in_groups() { id -nG kiosk | tr ' ' '\n' | grep -qx "$1"; }

check "kiosk system user" id kiosk
check "kiosk in group gpio" in_groups gpio
check "kiosk in group video" in_groups video
check "venv at /opt/kiosk/venv with the kiosk command" test -x /opt/kiosk/venv/bin/kiosk
check "venv sees system site packages (apt's picamera2)" grep -qx 'include-system-site-packages = true' /opt/kiosk/venv/pyvenv.cfg
check "venv has numpy 2, lgpio and its own simplejpeg" /opt/kiosk/venv/bin/python -c '
import numpy, lgpio, simplejpeg, sys
assert int(numpy.__version__.split(".")[0]) >= 2, numpy.__version__
assert "/opt/kiosk/venv/" in simplejpeg.__file__, simplejpeg.__file__
print(numpy.__version__, simplejpeg.__version__)'
check "/etc/kiosk mode 750, group kiosk" eval 'mode /etc/kiosk 750 && group_of /etc/kiosk kiosk'
check "/etc/kiosk/kiosk.toml mode 640, group kiosk" eval 'mode /etc/kiosk/kiosk.toml 640 && group_of /etc/kiosk/kiosk.toml kiosk'
check "/etc/kiosk/admin-keys mode 750, group kiosk" eval 'mode /etc/kiosk/admin-keys 750 && group_of /etc/kiosk/admin-keys kiosk'
check "store key: 32 bytes, mode 600" eval '[ "$(stat -c %s /etc/kiosk/credentials/store.key)" = 32 ] && mode /etc/kiosk/credentials/store.key 600'
check "/var/lib/kiosk owned by kiosk, mode 700" eval '[ "$(stat -c %U /var/lib/kiosk)" = kiosk ] && mode /var/lib/kiosk 700'
check "models: int8 model, report, manifest and detector" test -s /var/lib/kiosk/models/facenet_int8.tflite \
    -a -s /var/lib/kiosk/models/facenet_int8.json -a -s /var/lib/kiosk/models/manifest.toml \
    -a -s /var/lib/kiosk/models/face_detection_full_range.tflite
check "unit installed" test -f /etc/systemd/system/kiosk.service
check "unit enabled (multi-user.target.wants)" test -L /etc/systemd/system/multi-user.target.wants/kiosk.service
check "systemd-analyze verify (offline)" systemd-analyze verify /etc/systemd/system/kiosk.service
check "config check as the kiosk user" runuser -u kiosk -- /opt/kiosk/venv/bin/kiosk config check --config /etc/kiosk/kiosk.toml
# The installed venv and models compare two photos (as the service's runtime would run them).
photos=/var/lib/kiosk/models/5-celebrity/val/ben_afflek
a=$(ls "$photos"/*.jpg | head -1); b=$(ls "$photos"/*.jpg | sed -n 2p)
check "installed kiosk compares two photos of one person as the same" eval \
    "KIOSK_MODELS_DIR=/var/lib/kiosk/models /opt/kiosk/venv/bin/kiosk compare '$a' '$b' --json | grep -q '\"same\": true'"
systemd-analyze verify /etc/systemd/system/kiosk.service 2>&1 | sed 's/^/     systemd-analyze: /' | head -5
exit $fail
