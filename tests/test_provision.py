"""`make test` on a bare machine: Chromium is provisioned by one script, used by make and CI alike,
and where it cannot be installed the script says what to run and stops before any test runs."""

import subprocess
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
SCRIPT = BASE_DIR / "scripts" / "provision-browser"


def fake_bin(tmp_path, *, uid, with_apt):
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    if with_apt:
        (folder / "apt-get").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/apt.log\n")
    for tool in folder.iterdir():
        tool.chmod(0o755)
    return folder


def run(tmp_path, path, chromium):
    return subprocess.run(["/bin/bash", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={"PATH": str(path), "PROVISION_CHROMIUM": str(chromium)})


def test_without_root_it_says_what_to_run_and_fails(tmp_path):
    result = run(tmp_path, fake_bin(tmp_path, uid=1000, with_apt=True), tmp_path / "no-chromium")
    assert result.returncode != 0
    assert "apt-get install chromium" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "apt.log").exists()


def test_as_root_with_apt_it_installs_chromium_only(tmp_path):
    result = run(tmp_path, fake_bin(tmp_path, uid=0, with_apt=True), tmp_path / "no-chromium")
    # the fake apt-get installs nothing, so the script must notice Chromium still does not run
    assert result.returncode != 0
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls[0] == "update -qq"
    assert calls[1].split()[-1] == "chromium" and "chromium-driver" not in calls[1]


def test_a_working_chromium_needs_nothing(tmp_path):
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\necho Chromium 1.0\n")
    chromium.chmod(0o755)
    result = run(tmp_path, fake_bin(tmp_path, uid=1000, with_apt=False), chromium)
    assert result.returncode == 0, result.stderr


def test_make_test_and_ci_share_the_script():
    makefile = (BASE_DIR / "Makefile").read_text()
    ci = (BASE_DIR / ".ci" / "run").read_text()
    assert "scripts/provision-browser" in makefile
    test_rule = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert test_rule.split(":", 1)[1].split()[0] == "browser", "Chromium is provisioned before anything runs"
    assert "make test" in ci and "make faults" in ci
    assert "apt-get" not in ci and "chromium-driver" not in ci


@pytest.mark.parametrize("path", ["pos/tests/test_browser.py", "reporting/tests/test_browser.py"])
def test_both_browser_test_files_use_the_shared_chromium_and_screenshot_folder(path):
    source = (BASE_DIR / path).read_text()
    assert "chromium_launch" in source and "screenshot_dir" in source
    assert "pytest.skip" not in source and "importorskip" not in source and "BASE_DIR" not in source


def test_screenshots_go_to_an_ignored_folder(monkeypatch, request):
    monkeypatch.delenv("O2O_SCREENSHOT_DIR", raising=False)
    folder = request.getfixturevalue("screenshot_dir")
    probe = (folder / "probe.png").relative_to(BASE_DIR)
    assert subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=BASE_DIR).returncode == 0
