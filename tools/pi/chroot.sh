#!/usr/bin/env bash
# Run a command in an arm64 root file system as on a Raspberry Pi 5 (Cortex-A76) or 4 (Cortex-A72).
#
#   tools/pi/chroot.sh ROOTFS a76|a72 COMMAND [ARG...]
#
# qemu-user emulates the named core (QEMU_CPU) and the Pi's /proc/cpuinfo is
# bind-mounted over the host's: TFLite's XNNPACK reads it to pick kernels and
# crashes (SIGSEGV in allocate_tensors) on an x86 cpuinfo. The host's DNS, CA
# certificates and pip configuration are copied in, and pip/proxy variables
# passed through, so pip reaches PyPI as it does on the host.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 3 ] || { echo "usage: $0 ROOTFS a76|a72 COMMAND [ARG...]" >&2; exit 2; }
ROOTFS=$(cd "$1" && pwd); CPU=$2; shift 2
case "$CPU" in
    a76|cortex-a76) CPU=cortex-a76 ;;
    a72|cortex-a72) CPU=cortex-a72 ;;
    *) echo "unknown CPU $CPU: a76 (Raspberry Pi 5) or a72 (Raspberry Pi 4)" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "chroot needs root" >&2; exit 1; }
"$HERE/binfmt.sh"

mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}"
    done
}
trap cleanup EXIT
mnt() { mount "$@"; mounted+=("${*: -1}"); }

mnt -t proc proc "$ROOTFS/proc"
mnt --bind "$HERE/cpuinfo-$CPU" "$ROOTFS/proc/cpuinfo"
mnt -t sysfs sysfs "$ROOTFS/sys"
mnt --bind /dev "$ROOTFS/dev"
mnt --bind /dev/pts "$ROOTFS/dev/pts"
mnt -t tmpfs -o mode=1777 tmpfs "$ROOTFS/dev/shm"

cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
for f in /etc/ssl/certs/ca-certificates.crt /etc/pip.conf /etc/xdg/pip/pip.conf /etc/xdg/pip/constraints.txt; do
    if [ -f "$f" ]; then mkdir -p "$ROOTFS$(dirname "$f")"; cp -L "$f" "$ROOTFS$f"; fi
done

pass=()
while IFS= read -r line; do pass+=("$line"); done < <(env | grep -E '^(PIP_[A-Z_]+|https?_proxy|no_proxy|HTTPS?_PROXY|NO_PROXY|PI_CHECK_[A-Z_]+)=' || true)
chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    QEMU_CPU="$CPU" ${pass[@]+"${pass[@]}"} "$@"
