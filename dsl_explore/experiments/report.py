r"""Summaries and tables of a reproduction suite's runs.

:func:`summarise` turns the runs into

- ``summary``: one row per (data kind, dimensionality, objective): mean and standard deviation
  over seeds of every table metric of the registry
  (:func:`~dsl_explore.training.metrics.table_metrics`), the bootstrap interval of the mean of
  the Betti error and of the MSE (the Pareto figure's error bars), and the mean-signal MSE;
- ``changes``: per (data kind, dimensionality, objective other than the baseline) the relative
  change of the mean Betti error (total) and of the mean MSE against the baseline, paired by
  seed, with a 95 % bootstrap interval over seeds
  (:func:`~dsl_explore.experiments.stats.relative_change`).

:func:`table_md` and :func:`table_csv` render them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from dsl_explore.experiments.stats import bootstrap_mean, relative_change
from dsl_explore.experiments.suites import Suite
from dsl_explore.experiments.summary import fmt_mean_std, fmt_number, mean_std
from dsl_explore.training.metrics import Metric, table_metrics

__all__ = [
    "CHANGE_METRICS", "column_key", "groups", "summarise", "table_columns", "table_csv", "table_md",
]

CHANGE_METRICS = ("betti_total", "mse")
"""Metrics whose relative change against the baseline is reported with an interval."""


def column_key(m: Metric, q: int) -> str:
    """The summary key of homology dimension ``q`` of a per-dimension metric."""
    return f"{m.key.removesuffix('_per_dim')}_h{q}"  # betti_per_dim -> betti_h0, betti_h1, ...


def groups(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """The (data kind, dimensionality) pairs of runs or summary rows, in first-seen order."""
    seen: dict[tuple[str, int], None] = {}
    for r in rows:
        seen.setdefault((str(r["data_kind"]), int(r["dims"])), None)
    return list(seen)


def summarise(
    runs: Sequence[Mapping[str, Any]], suite: Suite
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(summary, changes)`` of the runs of ``suite`` (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    base_name = suite.baseline.name
    for kind, d in groups(runs):
        here = [r for r in runs if r["data_kind"] == kind and r["dims"] == d]
        for s in suite.settings:
            sel = sorted((r for r in here if r["setting"] == s.name), key=lambda r: r["seed"])
            if not sel:
                continue
            row: dict[str, Any] = {
                "data_kind": kind, "dims": d, "setting": s.name, "n_seeds": len(sel),
            }
            for m in table_metrics():
                if m.per_dim:
                    for q in range(d):
                        row[column_key(m, q)] = mean_std([r[m.key][q] for r in sel])
                else:
                    row[m.key] = mean_std([r[m.key] for r in sel])
            row["mean_signal_mse"] = mean_std([r.get("mean_signal_mse") for r in sel])
            for key in CHANGE_METRICS:
                row[f"{key}_interval"] = bootstrap_mean([r[key] for r in sel]).to_dict()
            cfg = sel[0]["config"]
            row.update(
                steps=sel[0]["steps"], batch_size=cfg["batch_size"], size=cfg["size"],
                data=cfg["data"], compression=cfg["compression"], lr=cfg["lr"],
                ph_samples=cfg.get("ph_samples"),
            )
            rows.append(row)
            if s.name == base_name:
                continue
            base = {r["seed"]: r for r in here if r["setting"] == base_name}
            paired = [r for r in sel if r["seed"] in base]
            if not paired:
                continue
            entry: dict[str, Any] = {"data_kind": kind, "dims": d, "setting": s.name,
                                     "baseline": base_name}
            for key in CHANGE_METRICS:
                entry[key] = relative_change(
                    [base[r["seed"]][key] for r in paired], [r[key] for r in paired]
                ).to_dict()
            changes.append(entry)
    return rows, changes


def table_columns(summary: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, Metric]]:
    """``(summary key, title, metric)`` of every metric column, from the metric registry."""
    max_d = max((int(r["dims"]) for r in summary), default=1)
    cols: list[tuple[str, str, Metric]] = []
    for m in table_metrics():
        if m.per_dim:
            cols += [(column_key(m, q), m.label.format(q=q), m) for q in range(max_d)]
        else:
            cols.append((m.key, m.label, m))
    return cols


def table_csv(result: Mapping[str, Any]) -> str:
    """One CSV line per summary row: means and standard deviations of every metric."""
    summary = result["summary"]
    cols = table_columns(summary)
    header = ["data_kind", "dims", "setting", "n_seeds", "steps"]
    for key, _, _ in cols:
        header += [f"{key}_mean", f"{key}_std"]
    header += ["mean_signal_mse_mean"]
    lines = [",".join(header)]
    for r in summary:
        cells = [r["data_kind"], str(r["dims"]), f'"{r["setting"]}"', str(r["n_seeds"]),
                 str(r["steps"])]
        for key, _, _ in cols:
            mean, std = r.get(key, (math.nan, math.nan))
            cells += [fmt_number(mean), fmt_number(std)]
        cells.append(fmt_number(r["mean_signal_mse"][0]))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def fmt_change(c: Mapping[str, Any]) -> str:
    """``"-53% [-61, -44] *"``: a change with its interval, starred when it excludes 0."""
    v, lo, hi = c["value"], c["low"], c["high"]
    if not math.isfinite(v):
        return "—"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{v:+.0f}% (no interval: {c['n']} seed)"
    return f"{v:+.0f}% [{lo:+.0f}, {hi:+.0f}]" + (" *" if c["excludes_zero"] else "")


def _claim_table(result: Mapping[str, Any]) -> list[str]:
    changes = result["changes"]
    names: list[str] = []
    for c in changes:
        if c["setting"] not in names:
            names.append(c["setting"])
    if not names:
        return []
    n = result["settings"]["seeds"]
    lines = [
        f"Relative change of the Betti error (total) against {changes[0]['baseline']}, mean "
        f"over {n} seeds, with the 95 % bootstrap interval over seeds (paired); * = the "
        "interval excludes 0. Negative is better.",
        "",
    ]
    lines += _change_rows(result, names, "betti_total")
    lines += ["", "The same for the validation MSE:", ""]
    lines += _change_rows(result, names, "mse")
    return [*lines, ""]


def _change_rows(result: Mapping[str, Any], names: Sequence[str], metric: str) -> list[str]:
    """A table of ``metric``'s relative change: one row per group, one column per objective."""
    changes = result["changes"]
    lines = ["| data | dims | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for kind, d in groups(result["runs"]):
        cells = []
        for name in names:
            c = next((c for c in changes if c["data_kind"] == kind and c["dims"] == d
                      and c["setting"] == name), None)
            cells.append(fmt_change(c[metric]) if c else "—")
        lines.append(f"| {kind} | {d}D | " + " | ".join(cells) + " |")
    return lines


def _plateau_table(result: Mapping[str, Any]) -> list[str]:
    lines = [
        "Validation MSE of each objective against predicting the training split's mean signal "
        "(a model that learned nothing):",
        "",
        "| data | dims | objective | MSE | mean-signal MSE | mean-signal MSE / MSE |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["summary"]:
        mse, ref = r["mse"][0], r["mean_signal_mse"][0]
        ratio = f"{ref / mse:.2g}" if mse > 0 and math.isfinite(ref) else "—"
        lines.append(f"| {r['data_kind']} | {r['dims']}D | {r['setting']} | {mse:.3g} | "
                     f"{ref:.3g} | {ratio} |")
    return [*lines, ""]


def _cost_table(cost: Mapping[str, Any] | None) -> list[str]:
    if not cost:
        return []
    names: list[str] = []
    for per in cost.values():
        names += [n for n in per if n not in names]
    lines = [
        "Seconds per training step at the default sizes, measured interleaved in one run "
        "(median over rounds), and the ratio to MSE:",
        "",
        "| dims | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for d, per in cost.items():
        cells = []
        for n in names:
            e = per.get(n)
            cells.append(f"{1e3 * e['seconds_per_step']:.1f} ms ({e['ratio_to_mse']:.2f}x)"
                         if e else "—")
        lines.append(f"| {d}D | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _load_note(result: Mapping[str, Any]) -> str:
    """The CPU time the runs used and the load average at start and end (a shared machine's
    wall time is an upper bound of the idle one)."""
    cpu = [r.get("cpu_seconds") for r in result["runs"]]
    note = ""
    if cpu and all(isinstance(c, (int, float)) for c in cpu):
        note += f"; the training runs used {sum(cpu):.0f} CPU-seconds"
    loads = [m.get("load_average") for m in (result.get("machine_start"), result.get("machine"))
             if isinstance(m, Mapping)]
    start, end = ([*loads, None, None])[:2]
    if start and end:
        note += f"; 1-minute load average {start[0]:.1f} at the start, {end[0]:.1f} at the end"
    return note


def table_md(result: Mapping[str, Any]) -> str:
    """The Markdown report: the claim table, the full metric table, plateau check and cost."""
    s = result["settings"]
    summary = result["summary"]
    cols = table_columns(summary)
    lines = [
        f"Suite `{result['suite']}`: {s['seeds']} seed(s) on held-out samples"
        + (" (quick mode: tiny sizes, not meaningful)" if s["quick"] else "")
        + f"; device {s['device']}; {s['jobs']} job(s) x {s['threads']} thread(s); "
        f"wall time {result['wall_seconds']:.0f} s{_load_note(result)}.",
        "",
    ]
    lines += _claim_table(result)
    lines += [
        "Mean ± std over seeds:",
        "",
        "| data | dims | objective | " + " | ".join(t for _, t, _ in cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for r in summary:
        cells = []
        for key, _, m in cols:
            mean, std = r.get(key, (math.nan, math.nan))
            cells.append(fmt_mean_std(mean, std, m.fmt))
        lines.append(f"| {r['data_kind']} | {r['dims']}D | {r['setting']} | "
                     + " | ".join(cells) + " |")
    lines.append("")
    lines += _plateau_table(result)
    lines += _cost_table(result.get("cost"))
    seen: dict[tuple[str, int], str] = {}
    for r in summary:
        size = "x".join(str(v) for v in r["size"])
        seen.setdefault(
            (r["data_kind"], r["dims"]),
            f"{r['data_kind']} {r['dims']}D: '{r['data']}' {size}, compression "
            f"{r['compression']}, {r['steps']} steps, batch {r['batch_size']}, lr {r['lr']}",
        )
    objs = "; ".join(
        f"{o['name']}: " + ", ".join(f"{k}={v}" for k, v in o["fields"].items() if k != "loss")
        for o in s["objectives"] if len(o["fields"]) > 1
    )
    lines += [
        "Settings: " + "; ".join(seen.values()) + f". Objectives: {objs} (k for data in "
        "[0, 1]; ph_samples: the PH loss on the first n samples of each batch, None = all). "
        "s/step in the metric table is measured during training (with parallel jobs, under "
        "each other's load); the cost table is the fair comparison. CP = mismatched axis-wise "
        "critical points per sample; Betti error = mean over 16 target-quantile thresholds of "
        "|beta_q(x) - beta_q(y)| (V-construction).",
        "",
    ]
    return "\n".join(lines)
