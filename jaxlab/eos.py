"""Edge-of-stability analysis of tracked runs (host-side numpy): per-run summary numbers, the tracking cost and the
classic EoS plot, as one report.

    report = eos_report(results, title=..., claim=...)  # a sweep's RunResults -> summary, figures, printed text
    pngs = jaxlab.plots.draw(report.figures)            # then jaxlab.io.write_outputs(workdir, report.summary, pngs)
    s = eos_run_summary(result.records)                 # one run: sharpness vs threshold, sharpening, oscillations
    rows = eos_summary(results)["eos"]                  # a row per run

Inputs are records as ``jaxlab.train.run`` writes them: dicts with "step" and, at curvature steps, "sharpness",
"eos_threshold" and "sharpness_ratio" (see :mod:`jaxlab.curvature.tracker`); each run's numbers (lr, weight decay,
optimiser) are its coordinates or, where not swept, its own config (``Result.config``). Everything here is
host-side numpy.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

from jaxlab.curvature.quantities import compared_key
from jaxlab.optim import declaration
from jaxlab.plateau import plateau_test
from jaxlab.plots import Bands, Curves, Line, Panel, Panels
from jaxlab.stats import grid_summary, markdown_table, run_curves

LR, WD = "optim.lr", "optim.weight_decay"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _r(x, digits: int = 5):
    return None if x is None or not math.isfinite(x) else float(f"{x:.{digits}g}")


def alive_records(records: Sequence[dict], summary: dict | None = None) -> list[dict]:
    """The records before a run's divergence step (a diverged run's frozen values say nothing about it)."""
    if summary and summary.get("diverged"):
        return [r for r in records if r["step"] < summary.get("diverged_step", 0)]
    return list(records)


def record_key(records: Sequence[dict], operator: str | None = None) -> str:
    """Which recorded curvature the run's eos_threshold applies to: the declared operator's (``compared_key``), or
    without one the first recorded of the preconditioned sharpness, the ZO effective sharpness, λ1."""
    if operator is not None:
        return compared_key(operator)
    for key in ("preconditioned_sharpness", "zo_sharpness", "sharpness"):
        if any(_finite(r.get(key)) for r in records):
            return key
    return "sharpness"


def plateau(steps, values, frac: float = 0.5, tolerance: float = 0.1) -> dict:
    """The plateau test (jaxlab.plateau.plateau_test: equivalence test with power) as summary fields:
    plateaued, plateau_verdict (plateaued | drifting | undecided), plateau_change (relative change over the last
    ``frac`` of the run) with its 90% band plateau_change_ci, plateau_slope_per_1k, plateau_points."""
    r = plateau_test(steps, values, frac=frac, tolerance=tolerance)
    return {"plateaued": r["plateaued"], "plateau_verdict": r["verdict"], "plateau_change": _r(r.get("change")),
            "plateau_change_ci": [_r(x) for x in r["change_ci"]] if r.get("change_ci") else None,
            "plateau_slope_per_1k": _r(r.get("slope_per_1k")), "plateau_points": r.get("num_points"),
            "plateau_tolerance": tolerance}


def eos_run_summary(records: Sequence[dict], reach: float = 0.9, operator: str | None = None) -> dict:
    """Sharpness against the stability threshold for one run.

    records: [{"step", "sharpness", "eos_threshold", "sharpness_ratio", "train_loss", ...}] in step order; the
    sharpness read is the one the threshold applies to (``record_key``: Adam's preconditioned sharpness...).
    Returns (None where undefined):
      threshold                 the last recorded threshold (2/η for GD)
      initial_sharpness, final_sharpness, final_ratio            ratio = sharpness/threshold
      last_quarter_sharpness, last_quarter_ratio                 means over records with step ≥ 3/4 of the last
      max_ratio                 the largest ratio seen
      steps_to_reach            first step with ratio ≥ reach (0.9) after the ratio's lowest point in the first half,
                                None if never: the time progressive sharpening
                                takes to bring λ1 to the threshold
      sharpening_rate           (ratio at steps_to_reach, or at the end) − (smallest ratio before it), per 1000
                                steps between the two: how fast the top eigenvalue climbs towards the threshold
      ratio_std_last_half       std of the ratio over the last half: amplitude of sharpness around the threshold
      ratio_dev_last_half       mean |ratio − 1| over the last half
      loss_increase_frac        fraction of consecutive records (last half) where train_loss went up
      loss_osc_last_half        mean |Δ log train_loss| between consecutive records (last half)
      compared                  which recorded curvature the numbers are of (see record_key)
      plateaued, plateau_verdict, plateau_change, ...   the plateau test of the ratio over the last half (plateau)
    Loss measures compare consecutive *records* (every train.log_every steps): with log_every = 1 they are per step.
    """
    key = record_key(records, operator)
    curv = [r for r in records if _finite(r.get(key))]
    out: dict = {"num_measurements": len(curv)}
    if not curv:
        return out
    out["compared"] = key
    steps = np.asarray([r["step"] for r in curv], np.float64)
    lam = np.asarray([r[key] for r in curv], np.float64)
    ratio = np.asarray([r.get("sharpness_ratio", math.nan) for r in curv], np.float64)
    last = steps[-1]
    q4, h2 = steps >= 0.75 * last, steps >= 0.5 * last
    thr = curv[-1].get("eos_threshold")
    out.update(threshold=_r(thr), initial_sharpness=_r(lam[0]), final_sharpness=_r(lam[-1]), final_ratio=_r(ratio[-1]),
               last_quarter_sharpness=_r(lam[q4].mean()), last_quarter_ratio=_r(ratio[q4].mean()),
               max_ratio=_r(np.nanmax(ratio)) if np.isfinite(ratio).any() else None)
    # Sharpening is timed from the ratio's lowest point in the first half: Adam's first step starts far past its
    # threshold (P of the first step is (1 − β1)(|g| + ε)), then the ratio falls and sharpens back.
    first_half = np.flatnonzero(steps <= 0.5 * last)
    low = int(first_half[np.nanargmin(ratio[first_half])]) if np.isfinite(ratio[first_half]).any() else 0
    hit = low + np.nonzero(ratio[low:] >= reach)[0]
    end = int(hit[0]) if hit.size else len(ratio) - 1
    out["steps_to_reach"] = int(steps[end]) if hit.size else None
    start = low
    dt = steps[end] - steps[start]
    out["sharpening_rate"] = _r(1000.0 * (ratio[end] - ratio[start]) / dt) if dt > 0 else None
    out["ratio_std_last_half"] = _r(ratio[h2].std())
    out["ratio_dev_last_half"] = _r(np.abs(ratio[h2] - 1.0).mean())
    out.update(plateau(steps, ratio))
    loss = np.asarray([r["train_loss"] for r in records if r["step"] >= 0.5 * last and _finite(r.get("train_loss"))])
    if loss.size > 1 and (loss > 0).all():
        d = np.diff(loss)
        out["loss_increase_frac"] = _r(float((d > 0).mean()))
        out["loss_osc_last_half"] = _r(float(np.abs(np.diff(np.log(loss))).mean()))
    return out


def _value(r, path: str):
    """A run's number at config ``path``: its coordinate when swept (as the axis wrote it), else its config's."""
    if path in r.coords:
        return r.coords[path]
    section, key = path.split(".")
    return r.result.config[section][key]


def eos_summary(results, reach: float = 0.9) -> dict:
    """{"eos": [per run: seed, lr, weight_decay, diverged + eos_run_summary]} for a sweep's RunResults; the
    sharpness read is the one each run's optimiser declares its threshold on."""
    rows = []
    for r in results:
        s = r.result.summary
        row = {"seed": r.coords.get("seed"), "lr": _value(r, LR), "weight_decay": _value(r, WD),
               **{k: v for k, v in r.coords.items() if k not in ("seed", LR, WD)},
               "diverged": bool(s.get("diverged"))}
        operator = declaration(r.result.config.optim).operator
        row.update(eos_run_summary(alive_records(r.result.records, s), reach, operator))
        rows.append(row)
    return {"eos": rows}


def format_table(rows: Sequence[dict]) -> str:
    """The per-run numbers as a markdown table (what the experiment prints)."""
    cols = [("lr", "lr"), ("wd", "weight_decay"), ("seed", "seed"), ("threshold", "threshold"),
            ("λ1 last¼", "last_quarter_sharpness"), ("λ1/threshold last¼", "last_quarter_ratio"),
            ("final", "final_ratio"), ("steps→90%", "steps_to_reach"), ("osc(λ1)", "ratio_std_last_half"),
            ("loss↑frac", "loss_increase_frac"), ("mean abs Δlog L", "loss_osc_last_half")]
    return markdown_table([{k: "-" if r.get(k) is None else r[k] for _, k in cols} for r in rows], cols)


def tracking_cost(timing: Sequence[dict] | None) -> dict:
    """What curvature tracking cost a run, from its own timings (``Result.timing``: per fetched record the seconds
    of its chunk's steps and of its measurement, with the chunk length and the measurement's flags).

    t_chunk: median seconds of a chunk's steps; extra: median seconds of a measurement with curvature, less the
    median of one without (both without the test set; without any plain measurement the whole measurement counts,
    a slight overestimate). Medians leave out the calls that compiled. With n_curv the run's curvature measurements,
    S its steps and n the chunk length,
      curvature_time_fraction = n_curv·extra / (S/n·t_chunk + n_curv·extra).
    {} when nothing measured curvature. A vmapped sweep times its runs together, so the ratio stands for each.
    """
    rows = [t for t in timing or () if t["steps"] > 0]
    curv = [t["measure_s"] for t in rows if t["curvature"] and not t["test"]] or [
        t["measure_s"] for t in rows if t["curvature"]]
    if not curv:
        return {}
    plain = [t["measure_s"] for t in rows if not (t["curvature"] or t["test"])]
    n_curv = sum(1 for t in timing if t["curvature"])
    n = max(t["steps"] for t in rows)
    t_chunk = max(float(np.median([t["advance_s"] for t in rows])), 1e-9)
    extra = max(float(np.median(curv)) - (float(np.median(plain)) if plain else 0.0), 0.0)
    train = rows[-1]["step"] / n * t_chunk
    return {"curvature_time_fraction": _r(n_curv * extra / (train + n_curv * extra), 3),
            "curvature_s_per_measurement": _r(extra, 3), "train_s_per_step": _r(t_chunk / n, 3),
            "curvature_measurements_per_run": n_curv, "curvature_cost_in_steps": _r(extra / (t_chunk / n), 3)}


# ------------------------------------------------------------------------------------------------ plots

LABELS = {"sharpness": "sharpness λ1", "preconditioned_sharpness": "preconditioned sharpness λ1(P⁻¹H)",
          "zo_sharpness": "ZO effective sharpness 2/η*(H)", "ntk_max": "top NTK eigenvalue (GN λ1)"}


def eos_panels(results, name: str, key: str = "sharpness", logy: bool = False, title: str = "") -> Panels:
    """One panel per weight decay; per lr a line of ``key`` vs step (one colour per lr, every seed) and, for a
    curvature key (LABELS), the run's dashed eos_threshold in the same colour (2/η for GD, 38/η for Adam...)."""
    groups: dict = {}
    for r in results:  # in the sweep's order
        groups.setdefault(_value(r, WD), []).append((_value(r, LR), alive_records(r.result.records, r.result.summary)))
    lrs = sorted({lr for runs in groups.values() for lr, _ in runs})
    panels = []
    for wd, runs in groups.items():
        lines, levels, drawn = [], [], set()
        for lr, recs in runs:
            color = f"C{lrs.index(lr) % 10}"
            pts = [(r["step"], r[key]) for r in recs if _finite(r.get(key))]
            if pts:
                lines.append(Line(*zip(*pts), color=color, label=None if lr in drawn else f"η={lr:g}"))
            thr = [r["eos_threshold"] for r in recs if _finite(r.get("eos_threshold"))]
            if key in LABELS and thr and lr not in drawn:
                levels.append((thr[-1], color))
            drawn.add(lr)
        panels.append(Panel(f"weight decay {wd:g}", lines, levels))
    ylabel = f"{LABELS[key]} (dashed: threshold)" if key in LABELS else key
    return Panels(name, panels, ylabel, logy=logy, title=title)


# ------------------------------------------------------------------------------------------------ the report

class EosReport(NamedTuple):
    summary: dict     # summary.json: the sweep's grid summary, "eos" rows, ["claim"], the tracking cost
    figures: list     # jaxlab.plots figures: eos_sharpness, eos_loss, [eos_ntk], loss_curves, loss_bands
    text: str         # what the experiment prints: the per-run table, the tracking cost, [the claim]


OPERATOR_TITLES = {"preconditioned": "preconditioned sharpness vs its threshold",
                   "zo_mean_square": "ZO effective sharpness vs 2/η"}


def eos_report(results, title: str = "", claim=None) -> EosReport:
    """A sweep's edge-of-stability outputs in one pass: per-run summaries, then the figures to draw, then the text.

    results: RunResults of one sweep (``results.summary`` holds its grid statistics, else they are computed).
    title: eos_sharpness.png's title (default: the model and what is compared with the threshold).
    claim(eos rows) -> dict: an experiment's verdict on its claim, stored in the summary under "claim".
    """
    config = results[0].result.config
    eos = eos_summary(results)
    if claim is not None:
        eos["claim"] = claim(eos["eos"])
    runs = [rec for r in results for rec in r.result.records]
    cost = tracking_cost(results[0].result.timing)
    base = getattr(results, "summary", None) or grid_summary(results)
    summary = {**base, **eos, **cost}

    operator = declaration(config.optim).operator
    key, model = compared_key(operator), config.model.name
    what = OPERATOR_TITLES.get(operator, "sharpness vs its threshold")
    keys = ("train_loss", key, "test_accuracy")
    per_run, per_point = run_curves(results, keys)
    figures = [eos_panels(results, "eos_sharpness.png", key, title=title or f"{model}: {what} per weight decay"),
               eos_panels(results, "eos_loss.png", "train_loss", logy=True,
                          title=f"{model}: train loss per weight decay")]
    if any(_finite(rec.get("ntk_max")) for rec in runs):
        figures.append(eos_panels(results, "eos_ntk.png", "ntk_max",
                                  title=f"{model}: function-space curvature vs the threshold"))
    figures += [Curves("loss_curves.png", per_run, keys), Bands("loss_bands.png", per_point, keys)]

    text = [format_table(eos["eos"])]
    if cost:
        text.append(f"curvature tracking: {cost['curvature_time_fraction']:.1%} of the time "
                    f"({cost['curvature_cost_in_steps']:.3g} training steps per measurement)")
    if claim is not None:
        text.append(f"claim: {eos['claim']}")
    return EosReport(summary, figures, "\n".join(text))
