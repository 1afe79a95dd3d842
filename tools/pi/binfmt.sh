#!/usr/bin/env bash
# Make this (x86_64) kernel run aarch64 programs through qemu-user-static (binfmt_misc).
# Idempotent; needs root and the Debian packages qemu-user-static and binfmt-support.
set -euo pipefail
BINFMT=/proc/sys/fs/binfmt_misc
[ -e "$BINFMT/status" ] || mount -t binfmt_misc binfmt_misc "$BINFMT"
if [ ! -e "$BINFMT/qemu-aarch64" ]; then
    update-binfmts --enable qemu-aarch64 2>/dev/null || { update-binfmts --import qemu-aarch64 && update-binfmts --enable qemu-aarch64; }
fi
grep -q '^enabled' "$BINFMT/qemu-aarch64" || { echo "binfmt_misc: qemu-aarch64 is registered but disabled" >&2; exit 1; }
# F (fix binary): the kernel opens the interpreter now, so it works inside any chroot.
grep -q '^flags: .*F' "$BINFMT/qemu-aarch64" || echo "warning: qemu-aarch64 lacks the F flag; copy qemu-aarch64-static into the root file system" >&2
