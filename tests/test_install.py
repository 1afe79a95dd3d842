"""systemd/install.sh: what it lays down, and how it refuses a system without Raspberry Pi's archive.

The full install (user, groups, venv, enabled unit, `systemd-analyze verify`) is run and checked
in an emulated arm64 root file system by `./dev.sh pi-check` (tools/pi/verify_install.sh).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "systemd" / "install.sh"


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_staged_install_creates_the_admin_keys_folder_and_keeps_secrets_private(tmp_path: Path) -> None:
    subprocess.run(["bash", str(INSTALL), "--root", str(tmp_path), "--skip-venv", "--no-systemctl"],
                   check=True, capture_output=True)
    etc = tmp_path / "etc" / "kiosk"
    assert (etc / "admin-keys").is_dir() and _mode(etc / "admin-keys") == 0o750
    assert _mode(etc) == 0o750 and _mode(etc / "credentials") == 0o700
    assert _mode(etc / "credentials" / "store.key") == 0o600
    assert _mode(tmp_path / "var" / "lib" / "kiosk") == 0o700
    (etc / "admin-keys" / "alice.pub").write_text("kept")
    subprocess.run(["bash", str(INSTALL), "--root", str(tmp_path), "--skip-venv", "--no-systemctl"],
                   check=True, capture_output=True)
    assert (etc / "admin-keys" / "alice.pub").read_text() == "kept"


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.mark.skipif(os.geteuid() != 0, reason="the installer checks for root before anything else")
def test_on_plain_debian_the_installer_names_raspberry_pis_archive_and_changes_nothing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    # apt as on plain Debian: no candidate for python3-picamera2. Every command that would
    # change the system records its call instead, so the test can assert none ran.
    _stub(bin_dir, "apt-get", f'echo "apt-get $*" >> {calls}; [ "$1" = update ]')
    _stub(bin_dir, "apt-cache", "printf 'python3-picamera2:\\n  Installed: (none)\\n  Candidate: (none)\\n'")
    for cmd in ("groupadd", "useradd", "usermod", "systemctl", "install", "chown", "chgrp", "python3"):
        _stub(bin_dir, cmd, f'echo "{cmd} $*" >> {calls}; exit 99')
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(INSTALL)], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 3, proc.stderr
    assert "python3-picamera2 is not in this system's apt sources" in proc.stderr
    assert "archive.raspberrypi.com" in proc.stderr and "--no-picamera2" in proc.stderr
    assert calls.read_text().splitlines() == ["apt-get update -qq"]
