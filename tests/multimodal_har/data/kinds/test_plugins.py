"""Kinds of installed packages: the ``multimodal_har.kinds`` entry-point group. A real (if
tiny) distribution is put on ``sys.path``: its ``.dist-info`` declares the entry point and its
module is the kind of docs/kinds.md, so importlib.metadata finds it as it finds any package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from multimodal_har.data.kinds import base
from multimodal_har.data.kinds import get_kind, kind_names, load_plugins, unregister_kind
from multimodal_har.data.dataset import DataConfig

DOC = Path(__file__).resolve().parents[4] / "docs" / "kinds.md"


def _install(root: Path, module: str, source: str, entry: str = "events") -> Path:
    """A distribution ``{module}`` 0.1 at ``root``: the module and its dist-info."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{base.PLUGIN_GROUP}]\n{entry} = {module}\n")
    return root


@pytest.fixture
def fresh(monkeypatch):
    """No plugin loaded yet in this test; the events kind and the plugin module removed after."""
    monkeypatch.setattr(base, "_PLUGINS_LOADED", set())
    monkeypatch.setattr(base, "_PLUGIN_ERRORS", {})
    yield monkeypatch
    if "events" in kind_names():
        unregister_kind("events")
    for name in ("mhar_events_plugin", "mhar_broken_plugin"):
        sys.modules.pop(name, None)


def _docs_kind() -> str:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)[0]


def test_an_installed_kind_is_registered_by_its_entry_point(tmp_path, fresh):
    fresh.syspath_prepend(str(_install(tmp_path, "mhar_events_plugin", _docs_kind())))
    assert "events" not in kind_names()
    assert load_plugins() == ["events"]
    assert get_kind("events").__name__ == "EventKind"
    cfg = DataConfig(store=str(tmp_path), modalities={"ev": {"kind": "events", "frames": 16, "gain": 0.1}})
    assert type(cfg.modalities["ev"]).__name__ == "EventStreamConfig" and cfg.modalities["ev"].frames == 16
    assert load_plugins() == []  # each plugin once


def test_a_broken_plugin_warns_and_is_named_in_the_unknown_kind_error(tmp_path, fresh):
    fresh.syspath_prepend(str(_install(tmp_path, "mhar_broken_plugin", "import not_a_module_anywhere\n")))
    with pytest.warns(RuntimeWarning, match=r"'events' \(mhar_broken_plugin, from mhar_broken_plugin\) failed "
                                            r"to import: ModuleNotFoundError"):
        assert load_plugins() == []
    with pytest.raises(ValueError, match=r"unknown stream kind 'events'; valid kinds: rgb, .*mhar_broken_plugin"):
        get_kind("events")


def test_a_fresh_interpreter_has_the_kind_without_importing_it(tmp_path):
    """What `mhar train` sees: importing the package is enough."""
    _install(tmp_path, "mhar_events_plugin", _docs_kind())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", "from multimodal_har.experiment import experiment_schema\n"
                          "import json; print('events' in json.dumps(experiment_schema()))"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr
