"""The machine record says whether the CPU has a fast int8 dot product, and the report reads the ratio by it."""

from __future__ import annotations

from benchmarks.machine import int8_features
from benchmarks.run import int8_note

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512_vnni avx512_bf16
"""
HASWELL = "model name\t: Intel Xeon\nflags\t\t: fpu sse sse2 avx avx2 fma\n"
PI5 = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp " \
      "cpuid asimdrdm lrcpc dcpop asimddp\nCPU part\t: 0xd0b\n"
PI4 = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n"


def test_int8_features_read_from_the_flags_or_features_line() -> None:
    assert int8_features(ZEN4) == ["avx512_vnni"]
    assert int8_features(HASWELL) == []
    assert int8_features(PI5) == ["asimddp"]
    assert int8_features(PI4) == []
    assert int8_features("") == []


def test_the_report_says_the_goal_is_met_only_when_the_ratio_reaches_it() -> None:
    met = int8_note(3.9, ["avx512_vnni"])
    assert "3.9x faster" in met and "goal >= 1.5x" in met and "avx512_vnni" in met
    missed = int8_note(1.12, [])
    assert missed.startswith("The int8 embedder is only 1.12x") and "no int8 dot-product instruction" in missed
    assert "only" in int8_note(1.49, ["avx512_vnni"])
