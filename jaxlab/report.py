"""A self-contained report of a finished run or sweep directory: config, summary tables and plots.

    write_report(workdir, fmt="html") -> path of report.html (plots embedded as base64, one file to share)
    write_report(workdir, fmt="md")   -> path of report.md (plots linked by relative path)
"""
from __future__ import annotations

import base64
import glob
import html
import json
import os

from jaxlab.config import flatten

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
.scroll{overflow-x:auto}pre{background:#f7f7f7;padding:.75rem;overflow:auto;font-size:.8rem}.muted{color:#777}
"""


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def tables(summary) -> list[tuple[str, list[str], list[list]]]:
    """Every list of records in the summary becomes a table; scalar entries make one key/value table."""
    found, scalars = [], {}
    items = summary.items() if isinstance(summary, dict) else [("runs", summary)]
    for name, value in items:
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            rows = [flatten(r) for r in value]
            cols = list(dict.fromkeys(k for r in rows for k in r))
            found.append((name, cols, [[r.get(c, "") for c in cols] for r in rows]))
        elif isinstance(value, dict):
            for k, v in flatten(value, f"{name}.").items():
                scalars[k] = v
        else:
            scalars[name] = value
    if scalars:
        found.insert(0, ("summary", ["key", "value"], [[k, v] for k, v in scalars.items()]))
    return found


def _load(workdir: str):
    def read(name):
        path = os.path.join(workdir, name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    summary, config = read("summary.json"), read("config.json")
    if summary is None:
        raise FileNotFoundError(f"{workdir} has no summary.json: is the run finished?")
    # In the order the experiment wrote them (its headline figure first), then by name.
    plots = sorted(glob.glob(os.path.join(workdir, "*.png")), key=lambda p: (os.path.getmtime(p), p))
    n_records = 0
    metrics = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(metrics):
        with open(metrics) as f:
            n_records = sum(1 for _ in f)
    return summary, config, plots, n_records


def _html(workdir, summary, config, plots, n_records) -> str:
    title = os.path.basename(os.path.normpath(workdir))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>jaxlab report: {html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>jaxlab report: {html.escape(title)}</h1>",
             f"<p class='muted'>{html.escape(os.path.abspath(workdir))} · {n_records} metric records</p>"]
    if plots:
        parts.append("<h2>Plots</h2>")
        for p in plots:
            with open(p, "rb") as f:
                data = base64.b64encode(f.read()).decode()
            parts.append(f"<h3>{html.escape(os.path.basename(p))}</h3><img alt='{html.escape(os.path.basename(p))}' "
                         f"src='data:image/png;base64,{data}'>")
    for name, cols, rows in tables(summary):
        parts.append(f"<h2>{html.escape(name)}</h2><div class='scroll'><table><tr>"
                     + "".join(f"<th class='l'>{html.escape(c)}</th>" for c in cols) + "</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(
                f"<td class='{'' if isinstance(v, (int, float)) else 'l'}'>{html.escape(_fmt(v))}</td>" for v in row)
                + "</tr>")
        parts.append("</table></div>")
    if config is not None:
        parts.append(f"<h2>Config</h2><pre>{html.escape(json.dumps(config, indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _markdown(workdir, summary, config, plots, n_records) -> str:
    title = os.path.basename(os.path.normpath(workdir))
    lines = [f"# jaxlab report: {title}", "", f"`{os.path.abspath(workdir)}` · {n_records} metric records", ""]
    for p in plots:
        lines += [f"![{os.path.basename(p)}]({os.path.basename(p)})", ""]
    for name, cols, rows in tables(summary):
        lines += [f"## {name}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
        lines.append("")
    if config is not None:
        lines += ["## Config", "", "```json", json.dumps(config, indent=2), "```", ""]
    return "\n".join(lines)


def write_report(workdir: str, fmt: str = "html") -> str:
    if fmt not in ("html", "md"):
        raise ValueError(f"--format={fmt!r}: must be 'html' or 'md'")
    loaded = _load(workdir)
    text = (_html if fmt == "html" else _markdown)(workdir, *loaded)
    path = os.path.join(workdir, f"report.{fmt}")
    with open(path, "w") as f:
        f.write(text)
    return path
