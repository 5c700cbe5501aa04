"""The repository's shape: dependencies point down (no cycle, no ingredient importing a driver or an experiment,
function-level imports included), and an installed jaxlab ships no generic top-level package names."""
import ast
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INGREDIENTS = ("jaxlab.data", "jaxlab.models", "jaxlab.losses", "jaxlab.optim", "jaxlab.curvature",
               "jaxlab.checkpoint", "jaxlab.kernels", "kernels", "jaxlab.config", "jaxlab.tree", "jaxlab.io",
               "jaxlab.plots", "jaxlab.stats", "jaxlab.eos", "jaxlab.grid", "jaxlab.mesh",
               "jaxlab.distributed", "jaxlab.plateau")
DRIVERS = ("jaxlab.train", "jaxlab.sweep", "experiments")


def _modules(root: str) -> dict[str, str]:
    """{dotted module name: path} of every .py under root's jaxlab/, kernels/ and experiments/ (links not followed:
    jaxlab/kernels is kernels/ under a second name, and its imports are relative)."""
    mods = {}
    for top in ("jaxlab", "kernels", "experiments"):
        for d, dirs, files in os.walk(os.path.join(root, top)):
            dirs[:] = [x for x in dirs if not os.path.islink(os.path.join(d, x)) and x != "__pycache__"]
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(d, f), root)[:-3].replace(os.sep, ".")
                    mods[rel.removesuffix(".__init__")] = os.path.join(d, f)
    return mods


def _resolve(name: str, mods) -> str | None:
    name = "kernels" + name[len("jaxlab.kernels"):] if name.startswith("jaxlab.kernels") else name
    while name and name not in mods:
        name = name.rsplit(".", 1)[0] if "." in name else ""
    return name or None


def _is_module(name: str, mods) -> bool:
    return _resolve(name, mods) == ("kernels" + name[len("jaxlab.kernels"):] if name.startswith("jaxlab.kernels")
                                    else name)


def import_graph(root: str) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its body (ast.walk: function-level imports count)."""
    mods = _modules(root)
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        is_pkg = path.endswith("__init__.py")
        for node in ast.walk(ast.parse(open(path).read())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = m.split(".")[: len(m.split(".")) - node.level + is_pkg]
                    base = ".".join(parts + ([base] if base else []))
                # `from pkg import sub` imports the submodule; `from mod import name` imports mod
                targets = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}", mods) else base
                           for a in node.names]
            for t in targets:
                r = _resolve(t, mods)
                if r and r != m:
                    graph[m].add(r)
    return graph


def violations(graph) -> tuple[list[list[str]], list[str]]:
    """(cycles as strongly connected components of 2+ modules, upward imports 'ingredient -> driver')."""
    index, low, stack, on, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    up = sorted(f"{m} -> {t}" for m, ts in graph.items() for t in ts
                if m.startswith(INGREDIENTS) and t.startswith(DRIVERS))
    return comps, up


def test_dependencies_point_down():
    graph = import_graph(ROOT)
    assert len(graph) > 60  # the whole tree was read
    cycles, upward = violations(graph)
    assert cycles == [] and upward == [], (cycles, upward)


def test_the_check_fails_on_planted_violations(tmp_path):
    """Copy the tree, plant a function-level upward import and a cycle: the same check names both."""
    for top in ("jaxlab", "kernels", "experiments"):
        shutil.copytree(os.path.join(ROOT, top), tmp_path / top, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    hvp = tmp_path / "jaxlab" / "curvature" / "hvp.py"
    hvp.write_text(hvp.read_text() + "\n\ndef _planted():\n    from jaxlab.train import run  # upward\n")
    tree = tmp_path / "jaxlab" / "tree.py"
    tree.write_text(tree.read_text() + "\n\ndef _planted():\n    from jaxlab.optim import metrics  # cycle\n")
    cycles, upward = violations(import_graph(str(tmp_path)))
    assert "jaxlab.curvature.hvp -> jaxlab.train" in upward
    assert any("jaxlab.tree" in c and "jaxlab.optim.metrics" in c for c in cycles), cycles


def test_config_floor_imports_no_subsystem():
    graph = import_graph(ROOT)
    assert graph["jaxlab.config"] == set() and graph["jaxlab.tree"] == set(), (graph["jaxlab.config"],
                                                                                graph["jaxlab.tree"])
    assert not any(t.startswith("jaxlab") for t in graph["kernels"] | graph["kernels.linear_attention.api"])


def test_installed_distribution_has_no_generic_top_level_names(tmp_path):
    """Build the wheel, install it into an empty target and import from outside the repository: ``kernels`` and
    ``experiments`` are not importable, ``jaxlab`` and ``jaxlab.kernels`` are (jax comes from this environment)."""
    wheels = tmp_path / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), ROOT],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "setuptools" in proc.stderr and "Could not" in proc.stderr:
        pytest.skip(f"cannot build a wheel here (no package index for the build backend): {proc.stderr[-200:]}")
    assert proc.returncode == 0, proc.stderr
    (wheel,) = wheels.glob("jaxlab-*.whl")
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"jaxlab", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}, tops
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import importlib.util as u, jaxlab, jaxlab.kernels.linear_attention as la; "
            "print(u.find_spec('kernels') is None, u.find_spec('experiments') is None, "
            "jaxlab.__file__.startswith(%r), callable(la.linear_attention))" % str(target))
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.stdout.split() == ["True", "True", "True", "True"], out.stdout + out.stderr
