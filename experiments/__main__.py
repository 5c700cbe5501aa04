"""``python -m experiments``: every experiment with its purpose and typical time on 2 CPU cores.

Each runnable module states both as data, ``PURPOSE = "..."`` and ``CPU_TIME = "..."``; they are read from the
module's source (literal assignments) without importing it, so the list appears at once. Run one with
``python -m experiments.NAME --workdir runs/NAME``.
"""
import ast
import os

HERE = os.path.dirname(os.path.abspath(__file__))
NOT_EXPERIMENTS = {"__init__", "__main__", "optim_studies"}  # shared code, not something to run
FIELDS = ("PURPOSE", "CPU_TIME")


def metadata(path: str) -> dict:
    """{"PURPOSE": ..., "CPU_TIME": ...}: the module's top-level literal assignments of those names."""
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign) and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name) and node.targets[0].id in FIELDS}


def experiments() -> list[tuple[str, str, str]]:
    """[(name, purpose, CPU time)] of the runnable modules in experiments/, sorted by name."""
    out = []
    for f in sorted(os.listdir(HERE)):
        name, ext = os.path.splitext(f)
        if ext == ".py" and name not in NOT_EXPERIMENTS:
            meta = metadata(os.path.join(HERE, f))
            out.append((name, meta.get("PURPOSE", ""), meta.get("CPU_TIME", "")))
    return out


def main() -> None:
    rows = experiments()
    width = max(len(n) for n, _, _ in rows)
    print("python -m experiments.NAME --workdir runs/NAME   (--help for flags; configs in experiments/configs/)\n")
    for name, purpose, cpu in rows:
        print(f"  {name.ljust(width)}  {purpose}" + (f"  [{cpu}]" if cpu else ""))


if __name__ == "__main__":
    main()
