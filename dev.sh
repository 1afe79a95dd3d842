#!/usr/bin/env bash
# One entry point for people and CI.
#   ./dev.sh demo   set everything up, then run the main job on embedded defaults
#   ./dev.sh test   set everything up, then lint, type-check and run the whole suite
#                   (also on the numpy 1.26 + tflite-runtime 2.14 set)
#   ./dev.sh setup  only set up (.venv, models fetched and converted)
#   ./dev.sh pi-check  (root) demo + suite in an emulated arm64 Raspberry Pi OS root
#                   file system, Cortex-A76 then A72 (slow: not part of CI; docs/deploy-pi.md)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
LEGACY_VENV=${LEGACY_VENV:-.venv-tflite}
OUT=${OUT:-out}

say() { printf '\n== %s\n' "$*" >&2; }

apt_install() {
    # Install the Debian packages named, if any is missing (root or sudo).
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || { echo "please install: ${missing[*]}" >&2; return 1; }
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    say "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_python() {
    if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
        echo "Python 3.11 or newer is needed as '$PYTHON' (set PYTHON=...)" >&2; exit 1
    fi
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
}

setup() {
    ensure_python
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    say "installing the kiosk and the test tools into $VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -e ".[plot,test]"
    say "fetching model artifacts (pinned sha256)"
    "$VENV/bin/kiosk" models fetch
    # Rebuild when the model is missing or the code that shapes it has changed;
    # only then is the converter (TensorFlow, about 600 MB) installed.
    local stamp
    stamp=$(convert_stamp)
    if [ ! -f models/facenet_int8.tflite ] || [ ! -f models/facenet_int8.json ] \
        || [ "$(cat models/.convert-stamp 2>/dev/null)" != "$stamp" ]; then
        install_converter
        say "converting FaceNet to int8 (about a minute)"
        "$VENV/bin/kiosk-convert"
        echo "$stamp" > models/.convert-stamp
    fi
}

convert_stamp() {
    # What the int8 model depends on: the converter, the kiosk's crops, the pinned sources.
    cat converter/*.py kiosk/vision/*.py models/manifest.toml | sha256sum | cut -c1-64
}

install_converter() {
    # tensorflow-cpu on x86_64, tensorflow on aarch64 (pyproject.toml's markers).
    say "installing the converter (TensorFlow) into $VENV"
    "$VENV/bin/pip" install -q -e ".[convert,plot,test]"
}

demo() {
    setup
    mkdir -p "$OUT"
    local celeb=models/5-celebrity/val
    local a b c
    a=$(ls "$celeb"/ben_afflek/*.jpg | head -1)
    b=$(ls "$celeb"/ben_afflek/*.jpg | sed -n 2p)
    c=$(ls "$celeb"/madonna/*.jpg | head -1)
    say "kiosk compare: two photos of one person"
    "$VENV/bin/kiosk" compare "$a" "$b" --out "$OUT/compare_same.jpg"
    say "kiosk compare: two different people"
    "$VENV/bin/kiosk" compare "$a" "$c" --out "$OUT/compare_different.jpg"
    say "kiosk eval: every pair of the 5-celebrity set"
    "$VENV/bin/kiosk" eval --identities models/5-celebrity --plot "$OUT/roc_5celebrity.png"
    say "kiosk demo: two enrolled and two unknown people walk up to the door (real loop, mock relay)"
    "$VENV/bin/kiosk" demo --out "$OUT"
    say "pictures, video and logs written to $OUT/"
}

legacy_env() {
    # The other supported set: numpy 1.26 + tflite-runtime 2.14 (+ ai-edge-litert
    # with ml_dtypes < 0.6) + opencv 4.11. No TensorFlow: converter tests skip.
    if [ ! -x "$LEGACY_VENV/bin/python" ]; then "$PYTHON" -m venv "$LEGACY_VENV"; fi
    "$LEGACY_VENV/bin/pip" install -q "numpy>=1.26,<2" "opencv-python-headless>=4.11,<4.12" \
        "tflite-runtime==2.14.*" ai-edge-litert "ml_dtypes<0.6" "gpiozero>=2.0" "pydantic-settings>=2.3" "cryptography>=41" "paho-mqtt>=2.0" \
        "pytest>=8" "hypothesis>=6" "matplotlib>=3.7"
    "$LEGACY_VENV/bin/pip" install -q --no-deps -e .
}

run_tests() {
    setup
    install_converter  # the converter's own tests need TensorFlow
    apt_install mosquitto systemd
    say "ruff"
    "$VENV/bin/ruff" check kiosk converter tests benchmarks
    say "mypy"
    "$VENV/bin/mypy"
    say "pytest: numpy 2 + ai-edge-litert + TensorFlow"
    "$VENV/bin/python" -m pytest -q
    say "benchmarks, quick mode (keeps the scripts working; figures in docs/performance.md come from a full run)"
    "$VENV/bin/python" -m benchmarks.run --quick --skip-reference > /dev/null
    say "pytest: numpy 1.26 + tflite-runtime 2.14"
    legacy_env
    KIOSK_TFLITE_RUNTIME=tflite_runtime "$LEGACY_VENV/bin/python" -m pytest -q
}

case "${1:-}" in
    demo) demo ;;
    test) run_tests ;;
    setup) setup ;;
    pi-check) shift; exec tools/pi/check.sh "$@" ;;
    *) echo "usage: $0 demo|test|setup|pi-check" >&2; exit 2 ;;
esac
