#!/usr/bin/env bash
# Install or update the kiosk as a systemd service on Raspberry Pi OS (bookworm).
# Idempotent: run it again after `git pull`; keys and config are never overwritten.
#
#   sudo systemd/install.sh              install, enable and (re)start
#   sudo systemd/install.sh --no-start   install and enable only
#   systemd/install.sh --root DIR --skip-venv --no-systemctl   stage the files under DIR (tests)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=""
START=1
VENV=1
SYSTEMCTL=1
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=$2; shift 2 ;;
        --no-start) START=0; shift ;;
        --skip-venv) VENV=0; shift ;;
        --no-systemctl) SYSTEMCTL=0; START=0; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

PREFIX=$ROOT/opt/kiosk
ETC=$ROOT/etc/kiosk
STATE=$ROOT/var/lib/kiosk
UNIT_DIR=$ROOT/etc/systemd/system

if [ -z "$ROOT" ]; then
    [ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }
    apt-get install -y -qq python3-venv python3-picamera2 >/dev/null
    for g in gpio video; do getent group "$g" >/dev/null || groupadd --system "$g"; done
    if ! id kiosk >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/kiosk --no-create-home --shell /usr/sbin/nologin kiosk
    fi
    usermod -a -G gpio,video kiosk
fi

install -d -m 0755 "$PREFIX" "$UNIT_DIR"
install -d -m 0750 "$ETC"
install -d -m 0700 "$ETC/credentials" "$STATE" "$STATE/models"

if [ "$VENV" -eq 1 ]; then
    # --system-site-packages: picamera2 and libcamera come from apt, not PyPI.
    [ -x "$PREFIX/venv/bin/python" ] || python3 -m venv --system-site-packages "$PREFIX/venv"
    "$PREFIX/venv/bin/pip" install -q --upgrade "$SRC"
    KIOSK_MODELS_DIR=$STATE/models "$PREFIX/venv/bin/kiosk" models fetch
fi

install -m 0644 "$SRC/models/manifest.toml" "$STATE/models/manifest.toml"
# The int8 model is built on a workstation (kiosk-convert) and copied with its manifest.
for f in facenet_int8.tflite facenet_int8.json; do
    if [ -f "$SRC/models/$f" ]; then install -m 0644 "$SRC/models/$f" "$STATE/models/$f"; fi
done
[ -f "$STATE/models/facenet_int8.tflite" ] || echo "note: copy facenet_int8.tflite and .json (from kiosk-convert) to $STATE/models" >&2

[ -f "$ETC/kiosk.toml" ] || install -m 0640 "$SRC/docs/kiosk.example.toml" "$ETC/kiosk.toml"
if [ ! -f "$ETC/credentials/store.key" ]; then
    (umask 077 && head -c 32 /dev/urandom > "$ETC/credentials/store.key")
fi
install -m 0644 "$SRC/systemd/kiosk.service" "$UNIT_DIR/kiosk.service"

if [ -z "$ROOT" ]; then
    chown -R kiosk:kiosk "$STATE"
    chgrp kiosk "$ETC" "$ETC/kiosk.toml"
fi
if [ "$SYSTEMCTL" -eq 1 ]; then
    systemctl daemon-reload
    systemctl enable kiosk.service
    [ "$START" -eq 1 ] && systemctl restart kiosk.service
fi
echo "installed: unit $UNIT_DIR/kiosk.service, config $ETC/kiosk.toml, state $STATE"
