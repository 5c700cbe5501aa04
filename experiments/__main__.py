"""``python -m experiments``: every experiment with its one-line purpose and typical CPU time.

Reads each module's docstring (its first line, and a line starting "CPU time:") without importing it, so the
list appears at once. Run one with ``python -m experiments.NAME --workdir runs/NAME``.
"""
import ast
import os

HERE = os.path.dirname(os.path.abspath(__file__))
NOT_EXPERIMENTS = {"__init__", "__main__", "optim_studies"}  # shared code, not something to run


def experiments() -> list[tuple[str, str, str]]:
    """[(name, purpose, CPU time)] of the runnable modules in experiments/, sorted by name."""
    out = []
    for f in sorted(os.listdir(HERE)):
        name, ext = os.path.splitext(f)
        if ext != ".py" or name in NOT_EXPERIMENTS:
            continue
        with open(os.path.join(HERE, f)) as fh:
            doc = ast.get_docstring(ast.parse(fh.read())) or ""
        lines = doc.splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("CPU time:")), "")
        out.append((name, lines[0].split(" Config:")[0] if lines else "", cpu))
    return out


def main() -> None:
    rows = experiments()
    width = max(len(n) for n, _, _ in rows)
    print("python -m experiments.NAME --workdir runs/NAME   (--help for flags; configs in experiments/configs/)\n")
    for name, purpose, cpu in rows:
        print(f"  {name.ljust(width)}  {purpose}" + (f"  [{cpu}]" if cpu else ""))


if __name__ == "__main__":
    main()
