#!/usr/bin/env bash
# Build (once) and cache an arm64 Debian 12 (bookworm) root file system for the
# emulated Raspberry Pi check. Prints the path of the root file system.
#
#   tools/pi/rootfs.sh            build if missing, print the path
#   tools/pi/rootfs.sh --rebuild  build anew
#
# The cache lives outside the repository: $PI_CHECK_CACHE, default /var/cache/kiosk-pi-check.
set -euo pipefail

CACHE=${PI_CHECK_CACHE:-/var/cache/kiosk-pi-check}
SUITE=${PI_CHECK_SUITE:-bookworm}
MIRROR=${PI_CHECK_MIRROR:-http://deb.debian.org/debian}
ROOTFS=$CACHE/rootfs-$SUITE-arm64
# What a fresh Raspberry Pi OS Lite brings that dev.sh relies on, plus git to clone.
PACKAGES=python3,python3-venv,python3-pip,git,ca-certificates,sudo,procps,mosquitto,systemd,systemd-sysv,passwd,adduser

if [ "${1:-}" = "--rebuild" ]; then rm -rf "$ROOTFS"; fi
if [ -x "$ROOTFS/usr/bin/python3" ] && [ -f "$ROOTFS/.kiosk-rootfs-complete" ]; then
    echo "$ROOTFS"; exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "building the root file system needs root" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing: apt-get install mmdebstrap" >&2; exit 1; }

mkdir -p "$CACHE"
tmp=$CACHE/.building-$$
rm -rf "$tmp"
echo "building an arm64 $SUITE root file system in $ROOTFS (a few minutes under emulation)" >&2
mmdebstrap --mode=root --arch=arm64 --variant=minbase --include="$PACKAGES" \
    --components=main "$SUITE" "$tmp" "$MIRROR" >&2
touch "$tmp/.kiosk-rootfs-complete"
rm -rf "$ROOTFS"
mv "$tmp" "$ROOTFS"
echo "$ROOTFS"
