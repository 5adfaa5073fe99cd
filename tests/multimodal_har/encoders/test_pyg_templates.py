"""The code torch-geometric generates for our MessagePassing layers (ST-GCN, CTR-GCN) lives in a
folder of the process under the user cache, not in the temp folder, and goes with the process;
a killed process's folder is removed by the next one. Real processes, real encoders."""

import os
import signal
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

CHILD = textwrap.dedent("""
    import os, signal, sys, torch
    from multimodal_har.encoders import build_encoder
    from multimodal_har.encoders.skeleton_gcn import SpatialGraphConv
    from multimodal_har.encoders.ctr_gcn import RefinedGraphAggregation
    x = torch.randn(2, 8, 1, 20, 3)  # (B, T, M, V, C)
    for name in ("skeleton_gcn", "ctr_gcn"):
        enc = build_encoder(name, layout="kinect_v1_20", channels=[[8, 1]])
        assert enc(x).pooled.shape[0] == 2
    for cls in (SpatialGraphConv, RefinedGraphAggregation):
        print(sys.modules[cls.propagate.__module__].__file__)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
""")


def _run(mode, env):
    return subprocess.run([sys.executable, "-c", CHILD, mode], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_generated_propagate_modules_stay_out_of_tmp_and_go_with_their_process(tmp_path):
    tmp, cache = tmp_path / "tmp", tmp_path / "cache"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": "1"}
    killed = _run("kill", env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    files = killed.stdout.split()
    assert len(files) == 2 and all(f.startswith(str(cache / "multimodal_har" / "pyg")) for f in files), files
    assert all(os.path.isfile(f) for f in files)  # a SIGKILL cleans nothing up...
    ok = _run("exit", env)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert not any(os.path.exists(f) for f in files)  # ...the next process does
    assert not any(os.path.exists(f) for f in ok.stdout.split())  # and its own go when it exits
    assert os.listdir(cache / "multimodal_har" / "pyg") == []
    assert not [f for f in os.listdir(tmp) if "_propagate_" in f]  # (torch itself makes torchinductor_<user>)
