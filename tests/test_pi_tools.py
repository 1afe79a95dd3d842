"""The emulated-Pi tools, the per-architecture dependencies, and the Pi benchmark block (no emulation run here)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from benchmarks.pi_block import block, pi_model

ROOT = Path(__file__).resolve().parents[1]
PI = ROOT / "tools" / "pi"


def _cpuinfo(name: str) -> list[dict[str, str]]:
    cores = []
    for para in (PI / name).read_text().split("\n\n"):
        fields = dict(line.split(":", 1) for line in para.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        if "processor" in fields:
            cores.append(fields)
    return cores


def test_pi5_cpuinfo_is_four_cortex_a76_cores_with_dot_product() -> None:
    cores = _cpuinfo("cpuinfo-cortex-a76")
    assert [c["processor"] for c in cores] == ["0", "1", "2", "3"]
    assert {c["CPU part"] for c in cores} == {"0xd0b"} and {c["CPU implementer"] for c in cores} == {"0x41"}
    assert all("asimddp" in c["Features"].split() for c in cores)
    assert "Raspberry Pi 5" in (PI / "cpuinfo-cortex-a76").read_text()


def test_pi4_cpuinfo_is_four_cortex_a72_cores_without_dot_product_or_crypto() -> None:
    cores = _cpuinfo("cpuinfo-cortex-a72")
    assert len(cores) == 4 and {c["CPU part"] for c in cores} == {"0xd08"}
    features = set(cores[0]["Features"].split())
    assert "asimd" in features and not features & {"asimddp", "aes", "sha2"}
    assert "Raspberry Pi 4" in (PI / "cpuinfo-cortex-a72").read_text()


def _requirements(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [Requirement(s) for s in specs]


def _installed_names(reqs: list[Requirement], machine: str, system: str = "linux") -> set[str]:
    env = {"platform_machine": machine, "sys_platform": system}
    return {r.name for r in reqs if r.marker is None or r.marker.evaluate(env)}


@pytest.mark.parametrize(("machine", "tensorflow"), [("x86_64", "tensorflow-cpu"), ("aarch64", "tensorflow")])
def test_converter_extra_picks_the_tensorflow_that_has_wheels_for_the_machine(machine: str, tensorflow: str) -> None:
    names = _installed_names(_requirements("convert"), machine)
    assert tensorflow in names and {"tensorflow", "tensorflow-cpu"} - {tensorflow} & names == set()
    assert "h5py" in names


def test_lgpio_and_simplejpeg_come_only_on_arm64_linux() -> None:
    reqs = _requirements()
    assert {"lgpio", "simplejpeg"} <= _installed_names(reqs, "aarch64")
    assert not {"lgpio", "simplejpeg"} & _installed_names(reqs, "x86_64")
    assert not {"lgpio", "simplejpeg"} & _installed_names(reqs, "arm64", "darwin")
    lgpio = next(r for r in reqs if r.name == "lgpio")
    assert not lgpio.specifier.contains("0.0.0.2")  # PyPI's empty placeholder release


def test_device_tree_model_names_the_pi_without_its_trailing_nul(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    assert pi_model(model) == "Raspberry Pi 5 Model B Rev 1.0"
    model.write_bytes(b"QEMU Virtual Machine\0")
    assert pi_model(model) is None
    assert pi_model(tmp_path / "missing") is None


def _result() -> dict[str, object]:
    timing = {"median_ms": 31.5, "min_ms": 30.25, "max_ms": 40.0, "n": 25}
    return {"machine": {"cpu": "Cortex-A76", "cores": 4, "arch": "aarch64", "python": "3.11.2", "os": "Linux",
                        "packages": {"numpy": "2.2.0"}},
            "runtime": "ai_edge_litert 2.3.0", "threads": 4, "frame": "640x480",
            "stages": {"embed_int8_xnnpack": timing}, "load_ms": {"detector_short": 12.0},
            "ratios": {"float32_over_int8_xnnpack": 1.6}, "quick": False}


def test_block_on_a_pi_names_the_board_and_tabulates_every_stage() -> None:
    text = block(_result(), "Raspberry Pi 5 Model B Rev 1.0", "2026-01-01 10:00 UTC")
    assert text.startswith("### Raspberry Pi 5 Model B Rev 1.0, measured 2026-01-01 10:00 UTC")
    assert "| embed_int8_xnnpack | 31.50 | 30.25 | 40.00 | 25 |" in text
    assert "not** Pi figures" not in text and "--threads 4`" in text


def test_block_off_a_pi_says_so_before_any_figure() -> None:
    text = block(_result(), None, "2026-01-01 10:00 UTC")
    first_figure = text.index("| embed_int8_xnnpack")
    assert text.startswith("### Not a Raspberry Pi: Cortex-A76 (aarch64)")
    assert text.index("**not** Pi figures") < first_figure


@pytest.mark.parametrize("script", sorted(p.name for p in PI.glob("*.sh")))
def test_pi_scripts_parse_as_bash(script: str) -> None:
    subprocess.run(["bash", "-n", str(PI / script)], check=True)


def test_chroot_runner_refuses_an_unknown_cpu_before_mounting_anything(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(PI / "chroot.sh"), str(tmp_path), "cortex-a53", "/bin/true"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "a76 (Raspberry Pi 5) or a72 (Raspberry Pi 4)" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_pi_check_is_a_dev_sh_command_but_not_part_of_ci() -> None:
    assert "pi-check) shift; exec tools/pi/check.sh" in (ROOT / "dev.sh").read_text()
    ci = ROOT / ".ci" / "run"
    if ci.exists():
        assert "pi-check" not in ci.read_text()
