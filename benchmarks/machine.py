"""What machine a benchmark ran on."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# CPU features that give TFLite/XNNPACK a fast int8 dot product (x86: VNNI, AMX; ARM: dot product, i8mm):
# without one, int8 inference is barely faster than float32, so the int8 speed-up depends on them.
INT8_FEATURES = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def int8_features(cpuinfo: str | None = None) -> list[str]:
    """The ``INT8_FEATURES`` the CPU reports (the flags or Features line of /proc/cpuinfo)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as fh:
                cpuinfo = fh.read()
        except OSError:
            return []
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return [f for f in INT8_FEATURES if f in flags]


def versions(*packages: str) -> dict[str, str]:
    out = {}
    for p in packages:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "int8_dot_product": int8_features(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "packages": versions("numpy", "ai-edge-litert", "tflite-runtime", "opencv-python-headless", "tensorflow-cpu"),
    }


def timeit(fn: Callable[[], object], repeat: int, warmup: int = 2) -> dict[str, float]:
    """Median, min and max milliseconds of ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000.0)
    return {"median_ms": round(statistics.median(samples), 3), "min_ms": round(min(samples), 3),
            "max_ms": round(max(samples), 3), "n": repeat}
