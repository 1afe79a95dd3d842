#!/usr/bin/env bash
# ./dev.sh pi-check: the README's two commands on an emulated Raspberry Pi.
#
# An arm64 Debian 12 (bookworm) root file system, built once with mmdebstrap
# and cached outside the repository, runs under qemu-user (binfmt_misc) with a
# Raspberry Pi 5 (Cortex-A76) and then a Raspberry Pi 4 (Cortex-A72) CPU and
# /proc/cpuinfo. Each run starts from the cached root file system through an
# overlay (the cache itself is never changed), with a clean `git clone` of this
# repository and a copy of ../shared, and runs:
#   Cortex-A76: ./dev.sh demo, kiosk compare next to this machine's, the converter
#               installed and started, ./dev.sh test, systemd/install.sh + its checks
#   Cortex-A72: ./dev.sh demo, kiosk compare next to this machine's
# Root only (mount, chroot). Slow: not part of CI. Environment:
#   PI_CHECK_CACHE    cache directory (default /var/cache/kiosk-pi-check)
#   PI_CHECK_REF      what to clone (default HEAD)
#   PI_CHECK_CONVERT  host (default: convert on this machine, copy the model in) | emulated
#   PI_CHECK_STEPS    steps to run (default: all), e.g. "demo-a76 compare-a76"
#   PI_CHECK_HOST_PYTHON  this machine's Python with TensorFlow (default .venv/bin/python)
#   PI_CHECK_REUSE=1  keep the previous run's system and clone (to rerun single steps)
#   PI_CHECK_RUN      name of this run's system, logs and host clone (default "run"); two runs with
#                     different names can go on side by side, e.g. the Cortex-A72 demo:
#                     PI_CHECK_RUN=a72 PI_CHECK_STEPS="demo-a72 compare-a72" ./dev.sh pi-check
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${PI_CHECK_CACHE:-/var/cache/kiosk-pi-check}
REF=${PI_CHECK_REF:-HEAD}
CONVERT=${PI_CHECK_CONVERT:-host}
STEPS=${PI_CHECK_STEPS:-all}
SHARED=${PI_CHECK_SHARED:-$REPO/../shared}
HOST_PY=${PI_CHECK_HOST_PYTHON:-$REPO/.venv/bin/python}
NAME=${PI_CHECK_RUN:-run}
RUN=$CACHE/$NAME
LOGS=$CACHE/logs-$NAME
HOST=$CACHE/host-$NAME/face-kiosk
MERGED=$RUN/merged
PROJECT=/home/pi/face-kiosk   # inside the root file system

[ "$(id -u)" -eq 0 ] || { echo "pi-check needs root (mount, chroot): sudo ./dev.sh pi-check" >&2; exit 1; }
mkdir -p "$CACHE" "$LOGS"

results=()
failed=0
T0=$(date +%s)

wanted() {
    case "$1" in host-tools|rootfs|fresh-pi|host-clone|host-convert) return 0 ;; esac  # what every step stands on
    [ "$STEPS" = all ] || [[ " $STEPS " == *" $1 "* ]]
}

step() {
    # step NAME COMMAND...: run, time, log; print PASS/FAIL and on failure the log's tail.
    local name=$1; shift
    wanted "$name" || return 0
    local log=$LOGS/$name.log t=$SECONDS rc
    printf '\n== %s: %s\n' "$name" "$*" >&2
    ( "$@" ) >"$log" 2>&1; rc=$?
    local dt=$((SECONDS - t))
    local line
    line=$(printf '%-4s %-16s %3dm%02ds  %s' "$([ $rc -eq 0 ] && echo PASS || echo FAIL)" "$name" $((dt / 60)) $((dt % 60)) "$log")
    results+=("$line")
    echo "$line" >&2
    if [ $rc -ne 0 ]; then failed=1; tail -25 "$log" >&2; fi
    return $rc
}

in_pi() {
    # in_pi a76|a72 SHELL-COMMAND: run in the project's clone inside the emulated Pi.
    local cpu=$1; shift
    "$HERE/chroot.sh" "$MERGED" "$cpu" /bin/bash -c "cd $PROJECT && $*"
}

host_tools() {
    local missing=()
    for p in mmdebstrap qemu-user-static binfmt-support; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
    "$HERE/binfmt.sh"
    cat /proc/sys/fs/binfmt_misc/qemu-aarch64
}

unmount_run() {
    if mountpoint -q "$MERGED/root/.cache/pip"; then umount "$MERGED/root/.cache/pip" || umount -l "$MERGED/root/.cache/pip"; fi
    if mountpoint -q "$MERGED"; then umount "$MERGED" || umount -l "$MERGED"; fi
}
trap unmount_run EXIT

fresh_pi() {
    # A fresh system from the cached root file system (overlay), with a clean clone and ../shared.
    local rootfs
    rootfs=$("$HERE/rootfs.sh") || return 1
    unmount_run
    local reuse=0
    if [ "${PI_CHECK_REUSE:-0}" = 1 ] && [ -d "$RUN/upper$PROJECT" ]; then reuse=1; fi
    if [ $reuse -eq 0 ]; then rm -rf "$RUN"; fi
    mkdir -p "$RUN/upper" "$RUN/work" "$MERGED" "$CACHE/pip-cache" || return 1
    mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$RUN/upper,workdir=$RUN/work" "$MERGED" || return 1
    # pip's download cache survives runs (as it would on the Pi); everything else starts clean.
    mkdir -p "$MERGED/root/.cache/pip" && mount --bind "$CACHE/pip-cache" "$MERGED/root/.cache/pip" || return 1
    if [ $reuse -eq 1 ]; then echo "reusing the previous run's system and clone"; return 0; fi
    mkdir -p "$MERGED/home/pi"
    git clone -q "$REPO" "$MERGED$PROJECT" && git -C "$MERGED$PROJECT" checkout -q "$(git -C "$REPO" rev-parse "$REF")" || return 1
    [ -d "$SHARED/data" ] || { echo "no $SHARED/data: clone the project beside shared/" >&2; return 1; }
    cp -a "$SHARED" "$MERGED/home/pi/shared" || return 1
    echo "commit $(git -C "$MERGED$PROJECT" rev-parse --short HEAD) in $MERGED$PROJECT"
    "$HERE/chroot.sh" "$MERGED" a76 /bin/sh -c 'uname -m; grep -m1 "CPU part" /proc/cpuinfo; python3 --version; . /etc/os-release; echo "$PRETTY_NAME"'
}

host_clone() {
    # The same commit on this machine, for the x86 side of the comparison (and the host conversion).
    local dir=$HOST
    rm -rf "$dir" && mkdir -p "$(dirname "$dir")" && git clone -q "$REPO" "$dir" \
        && git -C "$dir" checkout -q "$(git -C "$REPO" rev-parse "$REF")" || return 1
    # ../shared beside the clone, as in the emulated Pi: the converter evaluates on its photos too.
    ln -sfn "$(cd "$SHARED" && pwd)" "$(dirname "$dir")/shared" || return 1
    # Fetched artifacts are hash-checked by `kiosk models fetch`; reuse this checkout's to save the download.
    for f in "$REPO"/models/*; do
        case "$(basename "$f")" in manifest.toml|facenet_int8.*|facenet_float32.*) ;; *) cp -a "$f" "$dir/models/" ;; esac
    done
    cd "$dir" && host_py -m kiosk models fetch
}

host_py() { PYTHONPATH=$HOST KIOSK_MODELS_DIR=$HOST/models "$HOST_PY" "$@"; }

host_convert() {
    # Conversion under emulation takes far longer than 30 minutes, so it runs here and the
    # model, its report and stamp are copied in (the stamp tells dev.sh the model is current).
    local stamp kept
    cd "$HOST" || return 1
    stamp=$(cat converter/*.py kiosk/vision/*.py models/manifest.toml | sha256sum | cut -c1-64)
    kept=$CACHE/converted/$stamp-shared   # one conversion per stamp, shared by runs
    if [ -f "$kept/facenet_int8.tflite" ]; then
        cp -a "$kept/facenet_int8.tflite" "$kept/facenet_int8.json" "$kept/.convert-stamp" models/
    else
        host_py -c "import sys; from converter.cli import main; sys.exit(main())" || return 1
        echo "$stamp" > models/.convert-stamp
        mkdir -p "$kept" && cp -a models/facenet_int8.tflite models/facenet_int8.json models/.convert-stamp "$kept/"
    fi
    cp -a models/facenet_int8.tflite models/facenet_int8.json models/.convert-stamp "$MERGED$PROJECT/models/"
    echo "converted on $(uname -m), stamp $stamp"
}

PAIRS=("ben_afflek 1 ben_afflek 2" "ben_afflek 1 madonna 1")
photo() { ls "$1/models/5-celebrity/val/$2"/*.jpg | sed -n "$3p"; }

compare() {
    # kiosk compare --json on the emulated Pi and here, side by side; they must agree within 1e-4.
    local cpu=$1 pair a1 n1 a2 n2 rel1 rel2 arm x86 ok=0
    for pair in "${PAIRS[@]}"; do
        read -r a1 n1 a2 n2 <<<"$pair"
        rel1=$(cd "$MERGED$PROJECT" && photo . "$a1" "$n1"); rel2=$(cd "$MERGED$PROJECT" && photo . "$a2" "$n2")
        arm=$(in_pi "$cpu" ".venv/bin/kiosk compare '$rel1' '$rel2' --json") || return 1
        x86=$(cd "$HOST" && host_py -m kiosk compare "$rel1" "$rel2" --json) || return 1
        python3 - "$cpu" "$rel1" "$rel2" "$arm" "$x86" <<'PY' || ok=1
import json, sys
cpu, a, b, arm, x86 = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
d = abs(arm["similarity"] - x86["similarity"])
good = d < 1e-4 and arm["same"] == x86["same"]
print(f"compare {a.split('/')[-2]}/{a.split('/')[-1]} {b.split('/')[-2]}/{b.split('/')[-1]}: "
      f"arm64 {cpu} {arm['similarity']:.6f}  x86_64 {x86['similarity']:.6f}  |diff| {d:.1e}  "
      f"same={arm['same']}/{x86['same']}  {'agree' if good else 'DIFFER'}")
sys.exit(0 if good else 1)
PY
    done
    return $ok
}

converter_arm64() {
    # The converter installs and starts on arm64 (tensorflow, not tensorflow-cpu).
    in_pi a76 ".venv/bin/pip install -q -e '.[convert,plot,test]' && .venv/bin/pip show tensorflow | head -2 \
        && .venv/bin/kiosk-convert --help | head -3 \
        && .venv/bin/python -c 'import platform, tensorflow as tf, h5py; print(platform.machine(), \"tensorflow\", tf.__version__, \"h5py\", h5py.__version__)'"
}

installer() {
    # On plain Debian the installer must refuse, naming Raspberry Pi's archive, and change nothing.
    local out rc
    out=$(in_pi a76 "systemd/install.sh" 2>&1); rc=$?
    echo "$out"
    [ $rc -eq 3 ] && grep -q "archive.raspberrypi.com" <<<"$out" && [ ! -e "$MERGED/etc/kiosk" ] || {
        echo "expected exit 3 with a message naming Raspberry Pi's archive and no /etc/kiosk; got $rc"; return 1; }
    # Without picamera2 it goes as far as it can without systemd running; then check what it laid down.
    in_pi a76 "systemd/install.sh --no-picamera2 --no-start && tools/pi/verify_install.sh"
}

echo "pi-check: cache $CACHE, run $NAME, ref $REF, conversion on $CONVERT" >&2
step host-tools host_tools
step rootfs "$HERE/rootfs.sh"
step fresh-pi fresh_pi || { echo "no root file system to run in" >&2; exit 1; }
if [ "${PI_CHECK_REUSE:-0}" = 1 ] && [ -d "$HOST/models" ]; then :; else step host-clone host_clone; fi
if [ "$CONVERT" = host ]; then step host-convert host_convert; fi
step demo-a76 in_pi a76 ./dev.sh demo
step compare-a76 compare a76
step converter-a76 converter_arm64
# The suite as the README runs it, but for the two tests that convert the whole model again:
# conversion under emulation takes hours, so it runs on this machine (host-convert) and the
# converter-a76 step proves that it installs and starts on arm64.
step test-a76 in_pi a76 "PYTEST_ADDOPTS='-m \"not conversion\"' ./dev.sh test"
step install-a76 installer
step demo-a72 in_pi a72 ./dev.sh demo
step compare-a72 compare a72

printf '\npi-check results (%s, %dm total; logs in %s):\n' "$(git -C "$REPO" rev-parse --short "$REF")" $((($(date +%s) - T0) / 60)) "$LOGS"
printf '%s\n' "${results[@]}"
grep -h "^compare " "$LOGS"/compare-*.log 2>/dev/null
exit $failed
