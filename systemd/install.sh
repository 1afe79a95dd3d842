#!/usr/bin/env bash
# Install or update the kiosk as a systemd service on Raspberry Pi OS (bookworm, 64-bit).
# Idempotent: run it again after `git pull`; keys and config are never overwritten.
#
#   sudo systemd/install.sh                 install, enable and (re)start
#   sudo systemd/install.sh --no-start      install and enable only
#   sudo systemd/install.sh --no-picamera2  without Raspberry Pi's archive (plain Debian; camera.type = "opencv")
#   systemd/install.sh --root DIR --skip-venv --no-systemctl   stage the files under DIR (tests)
#
# The camera stack (docs/deploy-pi.md): picamera2 and libcamera from apt
# (python3-picamera2, Raspberry Pi's archive) reach the venv through
# --system-site-packages; the venv keeps numpy 2 and installs its own
# simplejpeg and lgpio from PyPI (pyproject.toml, aarch64 markers), so apt's
# numpy-1 build of simplejpeg is shadowed (picamera2 issues #1088, #1211).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=""
START=1
VENV=1
SYSTEMCTL=1
PICAMERA2=1
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=$2; shift 2 ;;
        --no-start) START=0; shift ;;
        --skip-venv) VENV=0; shift ;;
        --no-systemctl) SYSTEMCTL=0; START=0; shift ;;
        --no-picamera2) PICAMERA2=0; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

PREFIX=$ROOT/opt/kiosk
ETC=$ROOT/etc/kiosk
STATE=$ROOT/var/lib/kiosk
UNIT_DIR=$ROOT/etc/systemd/system

picamera2_available() {
    # A candidate version means Raspberry Pi's archive is among the apt sources.
    apt-cache policy python3-picamera2 2>/dev/null | grep -q 'Candidate: [0-9]'
}

if [ -z "$ROOT" ]; then
    [ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }
    apt-get update -qq || echo "warning: apt-get update failed; using the package lists already here" >&2
    if [ "$PICAMERA2" -eq 1 ] && ! picamera2_available; then
        cat >&2 <<'MSG'
error: python3-picamera2 is not in this system's apt sources, so the Raspberry Pi camera cannot be used.
  It comes from Raspberry Pi's archive (archive.raspberrypi.com, listed in
  /etc/apt/sources.list.d/raspi.list on Raspberry Pi OS); plain Debian does not carry it.
  - On a Raspberry Pi 4 or 5: flash Raspberry Pi OS Lite (64-bit, bookworm) and run this again.
  - With a USB or network camera instead: run `sudo systemd/install.sh --no-picamera2`, then set
    [camera] type = "opencv" in /etc/kiosk/kiosk.toml.
Nothing was changed.
MSG
        exit 3
    fi
    pkgs=(python3-venv)
    if [ "$PICAMERA2" -eq 1 ]; then pkgs+=(python3-picamera2); fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
    for g in gpio video; do getent group "$g" >/dev/null || groupadd --system "$g"; done
    if ! id kiosk >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/kiosk --no-create-home --shell /usr/sbin/nologin kiosk
    fi
    usermod -a -G gpio,video kiosk
fi

install -d -m 0755 "$PREFIX" "$UNIT_DIR"
install -d -m 0750 "$ETC" "$ETC/admin-keys"
install -d -m 0700 "$ETC/credentials" "$STATE" "$STATE/models"

# The manifest first: an installed kiosk reads it beside the models (KIOSK_MODELS_DIR), fetch included.
install -m 0644 "$SRC/models/manifest.toml" "$STATE/models/manifest.toml"

if [ "$VENV" -eq 1 ]; then
    # --system-site-packages: picamera2 and libcamera come from apt, not PyPI.
    [ -x "$PREFIX/venv/bin/python" ] || python3 -m venv --system-site-packages "$PREFIX/venv"
    "$PREFIX/venv/bin/pip" install -q --upgrade "$SRC"
    KIOSK_MODELS_DIR=$STATE/models "$PREFIX/venv/bin/kiosk" models fetch
    if [ "$PICAMERA2" -eq 1 ]; then
        # Import picamera2 as the service will; on failure this prints what to do.
        "$PREFIX/venv/bin/python" - <<'PY' || exit 4
import sys
from kiosk.errors import KioskError
from kiosk.camera.picam import import_picamera2
try:
    import_picamera2()
except KioskError as exc:
    sys.exit(f"error: the camera stack does not import in the kiosk's venv: {exc}")
PY
    fi
fi

# The int8 model is built on a workstation (kiosk-convert) and copied with its manifest.
for f in facenet_int8.tflite facenet_int8.json; do
    if [ -f "$SRC/models/$f" ]; then install -m 0644 "$SRC/models/$f" "$STATE/models/$f"; fi
done
[ -f "$STATE/models/facenet_int8.tflite" ] || echo "note: copy facenet_int8.tflite and .json (from kiosk-convert) to $STATE/models" >&2

[ -f "$ETC/kiosk.toml" ] || install -m 0640 "$SRC/docs/kiosk.example.toml" "$ETC/kiosk.toml"
if [ ! -f "$ETC/credentials/store.key" ]; then
    (umask 077 && head -c 32 /dev/urandom > "$ETC/credentials/store.key")
fi
# the broker password, handed to the service as the credential kiosk-mqtt-password: fill it in when [mqtt] username is set
[ -f "$ETC/credentials/mqtt.password" ] || (umask 077 && : > "$ETC/credentials/mqtt.password")
install -m 0644 "$SRC/systemd/kiosk.service" "$UNIT_DIR/kiosk.service"

if [ -z "$ROOT" ]; then
    chown -R kiosk:kiosk "$STATE"
    chgrp kiosk "$ETC" "$ETC/kiosk.toml" "$ETC/admin-keys"
fi
if [ "$SYSTEMCTL" -eq 1 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl enable kiosk.service
        if [ "$START" -eq 1 ]; then systemctl restart kiosk.service; fi
    else
        # A chroot or an image being prepared: enable offline; it starts at the next boot.
        systemctl --root=/ enable kiosk.service
        echo "note: systemd is not running here; kiosk.service is enabled and starts at the next boot" >&2
    fi
fi
echo "installed: unit $UNIT_DIR/kiosk.service, config $ETC/kiosk.toml, admin keys $ETC/admin-keys, state $STATE"
