"""Reproducible installs: constraints.txt pins every dependency inside pyproject.toml's ranges."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
FAST_MOVING = ("transformers", "peft", "accelerate", "datasets", "tokenizers", "openai")


def pins() -> dict[str, Version]:
    found = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: '{line}' is not pinned with =="
            found[canonicalize_name(name)] = Version(version)
    return found


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(r) for r in listed]


def test_every_dependency_is_pinned_inside_its_range() -> None:
    pinned = pins()
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        if name == "torch":  # the Makefile installs the local CPU wheel first
            assert name not in pinned
            continue
        assert name in pinned, f"{requirement.name} is not in constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pinned[name]}, outside pyproject's {requirement.specifier}"
        )


def test_fast_moving_libraries_have_a_tested_upper_bound() -> None:
    by_name = {canonicalize_name(r.name): r for r in requirements()}
    pinned = pins()
    for name in FAST_MOVING:
        spec = by_name[name].specifier
        assert any(s.operator in ("<", "<=") for s in spec), f"{name} has no upper bound: {spec}"
        # the bound admits the tested version and is no looser than its next minor release
        tested = pinned[name]
        assert spec.contains(tested)
        assert not spec.contains(Version(f"{tested.major}.{tested.minor + 1}.0")), (
            f"{name}'s range {spec} admits releases newer than the tested {tested}"
        )


def test_every_install_in_the_makefile_reads_the_constraints() -> None:
    installs = [
        line.strip()
        for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
        if "$(PIP) install" in line and "torch==" not in line
    ]
    assert installs
    for line in installs:
        assert "-c $(CONSTRAINTS)" in line, line
