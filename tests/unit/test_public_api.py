"""The public surface is pinned (as httpx pins its exports): adding or removing a name is a
decision, made here; and the command line starts without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tunelab

PUBLIC = [
    "ConfigError",
    "DataError",
    "ModelError",
    "OutputError",
    "RunConfig",
    "RunDirError",
    "TrainResult",
    "TrainingError",
    "TunelabError",
    "__version__",
    "create_app",
    "cross_validate",
    "evaluate",
    "export",
    "generate",
    "inspect_data",
    "load_config",
    "predict",
    "repeat_seeds",
    "search",
    "train",
]


def test_the_public_names_are_exactly_these() -> None:
    assert tunelab.__all__ == PUBLIC
    assert sorted(dir(tunelab)) == sorted(PUBLIC)


def test_every_public_name_resolves_to_the_workflow_it_names() -> None:
    from tunelab.serve.app import create_app
    from tunelab.workflows.export import export_run
    from tunelab.workflows.search import run_search
    from tunelab.workflows.train import train

    for name in PUBLIC:
        assert getattr(tunelab, name) is not None, name
    assert tunelab.train is train and tunelab.search is run_search
    assert tunelab.export is export_run and tunelab.create_app is create_app
    errors = [tunelab.ConfigError, tunelab.DataError, tunelab.ModelError, tunelab.RunDirError]
    assert all(issubclass(e, tunelab.TunelabError) for e in errors)


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    try:
        tunelab.trian  # noqa: B018
    except AttributeError as exc:
        assert "trian" in str(exc)
    else:
        raise AssertionError("tunelab.trian resolved")


def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import sys\n"
        f"sys.argv = {argv!r}\n"
        "from tunelab.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return set(done.stderr.strip().splitlines()[-1].split())


def test_help_imports_no_torch() -> None:
    loaded = _modules_after(["tunelab", "--help"])
    assert "tunelab.cli" in loaded  # the probe ran
    assert not {"torch", "transformers", "datasets"} & loaded


def test_validating_a_broken_config_imports_no_torch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: fast\n  epochz: 3\n", encoding="utf-8")
    loaded = _modules_after(["tunelab", "config", "validate", str(bad)])
    assert "tunelab.config.loading" in loaded
    assert "torch" not in loaded
