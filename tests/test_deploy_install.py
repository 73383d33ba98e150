"""deploy/install.sh into a temporary root: the tree it makes, a second run that changes
nothing, the installed facepro running doctor and migrate, model pack verification.

The install is real: a venv, a wheel built from a snapshot of this source tree, and its
dependencies from the package index (about 25 s once per module)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MODELS_DIR, REPO, subprocess_env

INSTALL = REPO / "deploy" / "install.sh"
OFFLINE_SIGNS = ("Failed to establish a new connection", "Temporary failure in name resolution",
                 "Network is unreachable", "NewConnectionError")
SNAPSHOT_IGNORE = shutil.ignore_patterns(".git", ".venv", "tests", "__pycache__", "*.egg-info", "build", "dist",
                                         ".demo-data", "test-artifacts", ".pytest_cache")


def install(root: Path, *args: str, check: bool = True, script: Path = INSTALL) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["bash", str(script), "--root", str(root), *args], env=subprocess_env(),
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"install.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def tree(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every path under root with its type, mode, mtime and content hash (or link target)."""
    entries: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                entries[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                entries[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                entries[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_mtime_ns, digest)
    return entries


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    shutil.copytree(REPO, source, ignore=SNAPSHOT_IGNORE, symlinks=True)
    root = base / "root"
    # Everything (script, unit, docs, package) from one snapshot: others edit the live tree.
    script = source / "deploy" / "install.sh"
    args = ("--source", str(source), "--models", str(MODELS_DIR), "--flavour", "auto")
    first = install(root, *args, script=script, check=False)
    if first.returncode != 0 and any(sign in first.stdout + first.stderr for sign in OFFLINE_SIGNS):
        pytest.skip("the package index is unreachable: install.sh needs it for the dependencies")
    assert first.returncode == 0, f"install.sh failed ({first.returncode}):\n{first.stdout}\n{first.stderr}"
    before = tree(root)
    second = install(root, *args, script=script)
    after = tree(root)
    return {"root": root, "source": source, "script": script, "first": first, "second": second,
            "before": before, "after": after}


def installed_env(root: Path) -> dict[str, str]:
    return subprocess_env(FACEPRO_CONFIG=str(root / "etc/facepro/settings.json"),
                          FACEPRO_DATA_DIR=str(root / "var/lib/facepro"),
                          FACEPRO_MODELS_DIR=str(root / "var/lib/facepro/models/face"))


def test_install_produces_the_expected_tree(installed: dict[str, Any]) -> None:
    root: Path = installed["root"]
    out = installed["first"].stdout
    assert "onnxruntime flavour: cpu" in out
    assert os.access(root / "opt/facepro/venv/bin/facepro", os.X_OK)
    wrapper = (root / "usr/local/bin/facepro").read_text()
    assert "/opt/facepro/venv/bin/facepro" in wrapper and "/etc/facepro/settings.json" in wrapper
    data = root / "var/lib/facepro"
    assert stat.S_IMODE(data.stat().st_mode) == 0o750
    settings = root / "etc/facepro/settings.json"
    assert stat.S_IMODE(settings.stat().st_mode) == 0o640
    assert json.loads(settings.read_text())["paths"]["data_dir"] == "/var/lib/facepro"
    unit = root / "etc/systemd/system/facepro.service"
    assert unit.read_bytes() == (installed["source"] / "deploy/systemd/facepro.service").read_bytes()
    wants = root / "etc/systemd/system/multi-user.target.wants/facepro.service"
    assert os.readlink(wants) == "/etc/systemd/system/facepro.service"
    # the model pack with a manifest that matches every file
    pack = data / "models/face"
    sums = dict(reversed(line.split("  ", 1)) for line in (pack / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"scrfd_2.5g_bnkps.onnx", "mobilefacenet.onnx", "README.md"}
    for name, digest in sums.items():
        assert hashlib.sha256((pack / name).read_bytes()).hexdigest() == digest
    # nothing per device: no id, no database, no password in the image
    assert sorted(p.name for p in data.iterdir()) == ["models"]
    # what --root leaves to a real install is written down
    actions = (root / "opt/facepro/install-actions.txt").read_text()
    assert "useradd --system" in actions and "video" in actions and "systemctl enable facepro.service" in actions
    # the onnxruntime flavour is the CPU build, alone
    pip_list = subprocess.run([str(root / "opt/facepro/venv/bin/python"), "-m", "pip", "list", "--format=json"],
                              capture_output=True, text=True, check=True, env=subprocess_env()).stdout
    names = {p["name"].lower() for p in json.loads(pip_list)}
    assert "onnxruntime" in names and "onnxruntime-gpu" not in names and "opencv-python" not in names


def test_second_install_changes_nothing(installed: dict[str, Any]) -> None:
    assert installed["after"] == installed["before"]
    out = installed["second"].stdout
    assert "already installed" in out and "unchanged" in out and "no changes" in out


def test_installed_facepro_runs_doctor_and_migrate(installed: dict[str, Any]) -> None:
    root: Path = installed["root"]
    facepro = str(root / "opt/facepro/venv/bin/facepro")
    env = installed_env(root)
    doctor = subprocess.run([facepro, "--log-level", "warning", "doctor", "--json"], env=env, capture_output=True,
                            text=True, timeout=120, cwd=root)
    report = json.loads(doctor.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert doctor.returncode == 0, report
    assert checks["model pack"]["status"] == "PASS" and "scrfd" in checks["model pack"]["detail"]
    assert checks["database"]["status"] == "WARN"  # created on first boot, not by the installer
    status = subprocess.run([facepro, "migrate", "status", "--json"], env=env, capture_output=True, text=True,
                            timeout=60, cwd=root)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["latest_version"] >= 8
    subprocess.run([facepro, "migrate", "up"], env=env, check=True, capture_output=True, timeout=60, cwd=root)
    doctor = subprocess.run([facepro, "--log-level", "warning", "doctor", "--json"], env=env, capture_output=True,
                            text=True, timeout=120, cwd=root)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["database"]["status"] == "PASS", checks["database"]


def test_model_pack_with_wrong_checksum_is_refused(installed: dict[str, Any], tmp_path: Path) -> None:
    root: Path = installed["root"]
    pack = tmp_path / "pack"
    pack.mkdir()
    shutil.copy(MODELS_DIR / "mobilefacenet.onnx", pack)
    shutil.copy(MODELS_DIR / "scrfd_2.5g_bnkps.onnx", pack)
    good = hashlib.sha256((pack / "scrfd_2.5g_bnkps.onnx").read_bytes()).hexdigest()
    (pack / "SHA256SUMS").write_text(f"{good}  scrfd_2.5g_bnkps.onnx\n{'ab' * 32}  mobilefacenet.onnx\n")
    installed_pack = root / "var/lib/facepro/models/face"
    before = tree(installed_pack)
    proc = install(root, "--source", str(installed["source"]), "--models", str(pack), check=False,
                   script=installed["script"])
    assert proc.returncode == 1
    assert "checksum mismatch" in proc.stderr and "mobilefacenet.onnx" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert tree(installed_pack) == before


def test_zip_pack_with_a_matching_manifest_is_accepted(installed: dict[str, Any], tmp_path: Path) -> None:
    root: Path = installed["root"]
    archive = tmp_path / "pack.zip"
    names = ["scrfd_2.5g_bnkps.onnx", "mobilefacenet.onnx", "README.md"]
    lines = [f"{hashlib.sha256((MODELS_DIR / n).read_bytes()).hexdigest()}  {n}" for n in names]
    with zipfile.ZipFile(archive, "w") as zf:  # nested one level down, like InsightFace's zips
        for name in names:
            zf.write(MODELS_DIR / name, f"facepro_dev/{name}")
        zf.writestr("facepro_dev/SHA256SUMS", "\n".join(lines) + "\n")
    before = tree(root / "var/lib/facepro/models/face")
    wheel = next((root / "opt/facepro/dist").glob("facepro_edge-*.whl"))  # the installed one, kept
    proc = install(root, "--wheel", str(wheel), "--models", str(archive), script=installed["script"])
    assert "3 file(s) match its SHA256SUMS" in proc.stdout
    assert "unchanged" in proc.stdout and "no changes" in proc.stdout  # same files, same wheel
    assert tree(root / "var/lib/facepro/models/face") == before


def test_flavour_detection_and_bad_arguments(tmp_path: Path) -> None:
    jetson_root = tmp_path / "jetson"
    (jetson_root / "etc").mkdir(parents=True)
    (jetson_root / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 3.0, GCID: 36923193\n")
    proc = install(jetson_root, "--detect-only")
    assert "onnxruntime flavour: jetson" in proc.stdout
    assert "onnxruntime flavour: cpu" in install(tmp_path / "plain", "--detect-only").stdout
    assert "gpu (chosen with --flavour)" in install(tmp_path / "plain", "--detect-only", "--flavour", "gpu").stdout
    assert "--models PATH" in subprocess.run(["bash", str(INSTALL), "--help"], capture_output=True, text=True,
                                             check=True).stdout
    bad = install(tmp_path / "plain", "--flavour", "tpu", check=False)
    assert bad.returncode == 2 and "--flavour" in bad.stderr
    missing = install(tmp_path / "plain", "--models", str(tmp_path / "nope"), check=False)
    assert missing.returncode == 2 and "nope" in missing.stderr


def test_existing_settings_are_kept_and_checked(installed: dict[str, Any]) -> None:
    root: Path = installed["root"]
    settings = root / "etc/facepro/settings.json"
    original = settings.read_bytes()
    wheel = next((root / "opt/facepro/dist").glob("facepro_edge-*.whl"))
    try:
        edited = json.loads(original)
        edited["device"]["name"] = "Front door"
        settings.write_text(json.dumps(edited))
        proc = install(root, "--wheel", str(wheel), script=installed["script"])
        assert json.loads(settings.read_text())["device"]["name"] == "Front door"  # never overwritten
        assert "warning" not in proc.stdout
        settings.write_text('{"mqtt": {"port": "x"}}')
        proc = install(root, "--wheel", str(wheel), script=installed["script"])
        assert "settings do not load" in proc.stdout and "mqtt.port" in proc.stdout
        assert settings.read_text() == '{"mqtt": {"port": "x"}}'
    finally:
        settings.write_bytes(original)


SYSTEM_PYTHON = "/usr/bin/python3"


def _system_has_opencv() -> bool:
    return os.path.exists(SYSTEM_PYTHON) and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import cv2, numpy, gi"], capture_output=True, check=False).returncode == 0


def _venv_python(root: Path, code: str) -> str:
    return subprocess.run([str(root / "opt/facepro/venv/bin/python"), "-c", code], capture_output=True, text=True,
                          check=True, env=subprocess_env()).stdout.strip()


def _local_dists(root: Path) -> set[str]:
    out = _venv_python(root, "import subprocess, sys; subprocess.run([sys.executable, '-m', 'pip', 'list', "
                             "'--local', '--format=freeze'])")
    return {line.split("==")[0].lower().replace("_", "-") for line in out.splitlines()}


@pytest.mark.skipif(not _system_has_opencv(),
                    reason="needs the distribution's OpenCV, numpy 1.x and PyGObject (python3-opencv, python3-gi), "
                           "standing in for JetPack's; scripts/setup_env.sh test installs them")
def test_jetson_flavoured_install_keeps_jetpacks_opencv_and_numpy(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A Jetson image (JetPack 6): the venv sees the system's packages, gets no OpenCV from PyPI,
    keeps numpy below 2 so the system's cv2 (built against numpy 1.x) still imports, installs no
    jetson-stats unless asked, and a rerun changes nothing, or repairs what an older install left."""
    base = tmp_path_factory.mktemp("jetson")
    source = base / "source"
    shutil.copytree(REPO, source, ignore=SNAPSHOT_IGNORE, symlinks=True)
    script = source / "deploy" / "install.sh"
    root = base / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic\n")
    wheels = base / "ort"
    download = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "pip", "download", "-q", "--no-deps",
                               "--only-binary", ":all:", "-d", str(wheels), "onnxruntime"],
                              capture_output=True, text=True, env=subprocess_env(), check=False)
    if download.returncode != 0:
        pytest.skip(f"cannot fetch an onnxruntime wheel to stand in for JetPack's: {download.stderr[-300:]}")
    ort_wheel = next(wheels.glob("onnxruntime-*.whl"))
    args = ("--source", str(source), "--ort-wheel", str(ort_wheel), "--python", SYSTEM_PYTHON)

    first = install(root, *args, script=script, check=False)
    if first.returncode != 0 and any(sign in first.stdout + first.stderr for sign in OFFLINE_SIGNS):
        pytest.skip("the package index is unreachable: install.sh needs it for the dependencies")
    assert first.returncode == 0, f"{first.stdout}\n{first.stderr}"
    assert "onnxruntime flavour: jetson" in first.stdout
    local = _local_dists(root)
    assert not local & {"opencv-python", "opencv-python-headless", "jetson-stats", "numpy"}, local
    assert "onnxruntime" in local and "facepro-edge" in local
    found = json.loads(_venv_python(root, "import json, cv2, numpy, gi; from edge.pipeline import gst; "
                                          "print(json.dumps([cv2.__file__, numpy.__version__, gst.available()]))"))
    assert found[0].startswith("/usr/lib/python3/dist-packages/") and int(found[1].split(".")[0]) < 2 and found[2]
    assert "--system-site-packages" not in first.stdout and "include-system-site-packages = true" in (
        root / "opt/facepro/venv/pyvenv.cfg").read_text()

    before = tree(root)
    second = install(root, *args, script=script)
    assert tree(root) == before and "no changes" in second.stdout, second.stdout

    # A device installed before: PyPI's OpenCV in the venv, which pulled numpy 2 and breaks cv2.
    venv_pip = [str(root / "opt/facepro/venv/bin/python"), "-m", "pip", "install", "-q", "opencv-python-headless"]
    subprocess.run(venv_pip, check=True, capture_output=True, env=subprocess_env(), timeout=600)
    assert "opencv-python-headless" in _local_dists(root)
    third = install(root, *args, script=script)
    assert "removing opencv-python-headless" in third.stdout, third.stdout
    assert not _local_dists(root) & {"opencv-python-headless", "opencv-python"}
    found = _venv_python(root, "import cv2, numpy; print(cv2.__file__, numpy.__version__)").split()
    assert found[0].startswith("/usr/lib/python3/dist-packages/") and int(found[1].split(".")[0]) < 2, found


def test_jetpack_5_is_refused_with_the_reason(tmp_path: Path) -> None:
    root = tmp_path / "jp5"
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text("# R35 (release), REVISION: 5.0, GCID: 35550185, BOARD: t186ref\n")
    proc = install(root, "--detect-only", check=False)
    assert proc.returncode == 1 and "L4T R35" in proc.stderr and "JetPack 6" in proc.stderr and "3.10" in proc.stderr
