"""Declared lower bounds (issue 13, item 8): every runtime requirement and every requirement of
an install flavour says the oldest release it works with (``>=``), so that
scripts/check_min_versions.sh (run by .ci/run) can install exactly those and prove them.
Reads pyproject.toml only: no network, no install."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (JetPack 6): pytest itself depends on tomli there
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
BOUNDED_EXTRAS = ("cpu", "gpu", "openvino", "jtop")  # what an installer puts on a device
EMPTY_EXTRAS = ("jetson",)  # JetPack brings onnxruntime-gpu and OpenCV itself (deploy/JETSON.md)
# Test tools: bounded too, except these helpers whose every release the tests can use.
DEV_UNBOUNDED = {"tqdm", "requests"}


def project() -> dict[str, Any]:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


def has_lower_bound(text: str) -> bool:
    return any(spec.operator == ">=" for spec in Requirement(text).specifier)


def bounded_requirements() -> list[tuple[str, str]]:
    proj = project()
    found = [("dependencies", text) for text in proj["dependencies"]]
    for extra in BOUNDED_EXTRAS:
        found += [(f"optional-dependencies.{extra}", text) for text in proj["optional-dependencies"][extra]]
    return found


@pytest.mark.parametrize("where,text", bounded_requirements())
def test_every_runtime_requirement_has_a_lower_bound(where: str, text: str) -> None:
    assert has_lower_bound(text), f"pyproject.toml {where}: {text!r} has no lower bound (>=)"


def test_every_extra_is_classified_and_dev_tools_are_bounded() -> None:
    extras = project()["optional-dependencies"]
    unknown = set(extras) - set(BOUNDED_EXTRAS) - set(EMPTY_EXTRAS) - {"dev"}
    assert not unknown, f"pyproject.toml: new extra(s) {sorted(unknown)}: add them to BOUNDED_EXTRAS here"
    for extra in EMPTY_EXTRAS:
        assert extras[extra] == [], f"optional-dependencies.{extra} is meant to be empty"
    unbounded = [text for text in extras["dev"]
                 if not has_lower_bound(text) and Requirement(text).name not in DEV_UNBOUNDED]
    assert not unbounded, f"pyproject.toml optional-dependencies.dev: no lower bound (>=) on {unbounded}"


def test_the_minimum_versions_check_covers_the_cpu_flavour_and_runs_in_ci() -> None:
    """check_min_versions.sh pins the runtime requirements plus the cpu extra, which is where
    opencv-python-headless lives since it left the core requirements."""
    script = (REPO / "scripts" / "check_min_versions.sh").read_text()
    assert 'list(project["dependencies"]) + list(project["optional-dependencies"]["cpu"])' in script
    assert '".[cpu]"' in script
    cpu = [Requirement(text).name for text in project()["optional-dependencies"]["cpu"]]
    assert "opencv-python-headless" in cpu and "onnxruntime" in cpu
    assert "scripts/check_min_versions.sh" in (REPO / ".ci" / "run").read_text()
