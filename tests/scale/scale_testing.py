"""Shared by the scale tests: scripts run in a subprocess with N forced host devices (XLA reads the flag once,
when the backend starts, so the main test process cannot change its own device count)."""
import json
import os
import subprocess
import sys

from jaxlab.mesh import host_devices_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def env(devices: int) -> dict:
    return host_devices_env(devices, ROOT, HERE)


def run_script(script: str, devices: int = 8, timeout: int = 600):
    """Run ``script`` (Python source printing one JSON document last on stdout) -> the parsed document."""
    proc = subprocess.run([sys.executable, "-c", script], env=env(devices), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def eos_config(steps: int = 50):
    """The default EoS experiment's config (experiments/configs/eos_weight_decay.py: MSE, full-batch GD on 1000
    MNIST-1D examples, curvature every 50 steps), cut to ``steps`` steps, with a 40-64-64-10 MLP (what the mesh
    splits is the same at any width) and λ1, λ2 by 10 fixed Lanczos steps: the adaptive tracker and the NTK on a
    data mesh are test_curvature_sharded's."""
    sys.path.insert(0, os.path.join(ROOT, "experiments", "configs"))
    from eos_weight_decay import get_config

    c = get_config()
    c.train.steps = steps
    c.train.progress = False
    c.curvature.quantities, c.curvature.num_iters, c.curvature.tol = ("sharpness", "eig_gap"), 10, 0.0
    c.model.widths = (64, 64)
    return c


def rel(a, b) -> float:
    """max |a - b| / max |b| over arrays (a relative error that zero entries cannot blow up)."""
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
