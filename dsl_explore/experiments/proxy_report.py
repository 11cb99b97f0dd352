"""The report of the proxy study: the findings, computed from the numbers, and the three files
(``proxy.json``, ``proxy.md``, ``proxy.csv``) of :func:`dsl_explore.experiments.proxy.proxy`.

Every sentence is built from the result's numbers (intervals, ranges, percentiles); none is
written in advance.

Examples
--------
>>> fmt_interval({"value": 0.5, "low": 0.25, "high": 0.75})
'0.50 [0.25, 0.75]'
>>> fmt_interval({"value": float("nan"), "low": float("nan"), "high": float("nan")})
'—'
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dsl_explore.experiments.summary import fmt_number, fmt_rho
from dsl_explore.io import atomic_write_json, atomic_write_text

__all__ = ["findings", "fmt_interval", "write_report"]

_TOPOLOGY = ("count", "critical_mismatch", "betti_error", "bottleneck")
_LABEL = {
    "dsl": "DSL", "count": "count", "critical_mismatch": "critical points",
    "betti_error": "Betti error", "bottleneck": "bottleneck", "mse": "MSE",
}


def fmt_interval(iv: dict[str, Any]) -> str:
    """``"rho [low, high]"`` for a table cell; an em dash when rho is undefined."""
    v = _num(iv["value"])
    if not math.isfinite(v):
        return "—"
    low, high = _num(iv["low"]), _num(iv["high"])
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{v:.2f} [—]"
    return f"{v:.2f} [{low:.2f}, {high:.2f}]"


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _names(metrics: list[str]) -> str:
    return ", ".join(_LABEL[m] for m in metrics) if metrics else "none"


def _signs(ivs: dict[str, dict[str, Any]]) -> tuple[list[str], list[str], list[str]]:
    """The topology metrics whose interval lies above 0, below 0, and the defined rest."""
    above = [m for m in _TOPOLOGY if _num(ivs[m]["low"]) > 0]
    below = [m for m in _TOPOLOGY if _num(ivs[m]["high"]) < 0]
    rest = [m for m in _TOPOLOGY if m not in above + below and math.isfinite(_num(ivs[m]["value"]))]
    return above, below, rest


def _partial_finding(corr: dict[str, Any]) -> str:
    d, m = corr["dsl_given_mse"], corr["mse_given_dsl"]
    d_above, _, _ = _signs(d)
    m_above, _, _ = _signs(m)
    beyond = [t for t in _TOPOLOGY if _num(d[t]["low"]) > _num(m[t]["high"])]
    return (
        "Pooled over the classic families, given MSE, DSL's partial rho is "
        + "; ".join(f"{fmt_interval(d[t])} with {_LABEL[t]}" for t in _TOPOLOGY)
        + ". Given DSL, MSE's is "
        + "; ".join(f"{fmt_interval(m[t])} with {_LABEL[t]}" for t in _TOPOLOGY)
        + f". DSL keeps a partial correlation above 0 with {len(d_above)} of 4 topology metrics "
        f"({_names(d_above)}), MSE with {len(m_above)} of 4 ({_names(m_above)}); DSL's interval "
        f"lies wholly above MSE's for {_names(beyond)}."
    )


def _fixed_mse_finding(corr: dict[str, Any], summ: dict[str, Any]) -> str:
    rng, ivs = summ["range"], corr["dsl"]
    above, below, rest = _signs(ivs)
    text = (
        f"With the MSE fixed at {rng['mse'][1]:.3g} in all {corr['n_pairs']} pairs (relative "
        f"spread {summ['mse_relative_spread']:.1e}), MSE cannot rank them, while the exact count "
        f"ranges {rng['count'][0]:.0f}-{rng['count'][1]:.0f} and mismatched critical points "
        f"{rng['critical_mismatch'][0]:.0f}-{rng['critical_mismatch'][1]:.0f}. DSL's rho is "
        + "; ".join(f"{fmt_interval(ivs[t])} with {_LABEL[t]}" for t in _TOPOLOGY) + "."
    )
    if above:
        text += (f" The interval lies above 0 for {_names(above)}: at equal error size DSL "
                 "still ranks perturbations by these.")
    if below:
        text += f" It lies below 0 for {_names(below)}: DSL ranks these in the opposite order."
    if rest:
        text += f" It spans 0 for {_names(rest)}: no evidence either way there."
    parts = []
    for m in ("count", "critical_mismatch"):
        ivs_m = [v["dsl_within"][m] for v in summ["by_variant"]
                 if math.isfinite(_num(v["dsl_within"][m]["value"]))]
        if ivs_m:
            vals = [_num(iv["value"]) for iv in ivs_m]
            n_above = sum(_num(iv["low"]) > 0 for iv in ivs_m)
            parts.append(f"with {_LABEL[m]} from {min(vals):.2f} to {max(vals):.2f} (interval "
                         f"above 0 for {n_above} of the {len(ivs_m)} fields where it is defined)")
    if parts:
        text += (" Within one error field, across targets, DSL's rho ranges "
                 + " and ".join(parts) + ".")
    return text


def _fixed_topology_finding(corr: dict[str, Any], summ: dict[str, Any], k: float) -> str:
    rng, pct = summ["range"], summ["classic_percentile_of_max"]
    max_count, max_cm = rng["count"][1], rng["critical_mismatch"][1]
    kept = max_count == 0 and max_cm == 0
    text = (
        f"Under the {corr['n_pairs']} monotone maps "
        + ("no sign of any difference changes (count 0 and mismatched critical points 0 in "
           "every pair)" if kept else
           f"the count reaches {max_count:.0f} and mismatched critical points {max_cm:.0f} "
           "(float rounding broke some signs)")
        + f", while MSE ranges {rng['mse'][0]:.3g}-{rng['mse'][1]:.3g} (its largest value is at "
        f"least that of {pct['mse']:.0f}% of the classic pairs). DSL ranges "
        f"{rng['dsl'][0]:.3g}-{rng['dsl'][1]:.3g} (largest at least that of {pct['dsl']:.0f}% of "
        f"the classic pairs); its rho with MSE here is {fmt_interval(corr['dsl']['mse'])}."
    )
    zero = [f"{v['variant']} {v['level']:g}" for v in summ["by_variant"] if v["dsl"] < 1e-12]
    if zero:
        text += f" DSL is 0 to rounding (below 1e-12) for {', '.join(zero)}."
    flatter = pct["dsl"] < pct["mse"]
    text += (" By this measure DSL stays flatter than MSE" if flatter else
             " By this measure DSL does not stay flatter than MSE")
    moving = sorted({v["variant"] for v in summ["by_variant"] if v["dsl"] >= 1e-12})
    text += (f"; it is not flat for {', '.join(moving)}: these change the slopes' magnitudes, "
             f"which the smooth sign s(k D) registers at k={k:g} though no sign flips."
             if moving else ".")
    moved = [m for m in ("betti_error", "bottleneck") if rng[m][1] > 0]
    if moved:
        text += (
            f" {_names(moved).capitalize()} still move (up to "
            + ", ".join(f"{rng[m][1]:.3g}" for m in moved)
            + "): they compare values (Betti numbers at the target's quantile thresholds, "
            "diagram coordinates), which a monotone map shifts."
        )
    return text


def findings(result: dict[str, Any]) -> dict[str, str]:
    """One paragraph per question: ``partial``, ``fixed_mse``, ``fixed_topology``."""
    corr, dec = result["correlations"], result["decoupling"]
    return {
        "partial": _partial_finding(corr["pooled"]),
        "fixed_mse": _fixed_mse_finding(corr["fixed_mse"], dec["fixed_mse"]),
        "fixed_topology": _fixed_topology_finding(
            corr["fixed_topology"], dec["fixed_topology"], result["settings"]["k"]),
    }


def _table(header: list[str], lines: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    return out + ["| " + " | ".join(cells) + " |" for cells in lines]


def _markdown(result: dict[str, Any]) -> str:
    s, corr, metrics = result["settings"], result["correlations"], result["metrics"]
    md = [
        "# Proxy study: does DSL measure topology, or error size?",
        "",
        f"{s['n_targets']} {s['spatial_dims']}D '{s['data']}' targets of size {s['size']}, DSL "
        f"with k={s['k']}. Classic perturbations: "
        + ", ".join(f"{f} {v}" for f, v in s["perturbations"].items())
        + f" ({result['n_pairs']} pairs). Fixed MSE (RMS {s['fixed_rms']}): "
        + ", ".join(f"{k} {v:g}" if k == "smooth" else k for k, v in s["fixed_mse_variants"])
        + ". Fixed topology: " + ", ".join(f"{k} {v:g}" for k, v in s["fixed_topology_variants"])
        + f". Intervals: {s['confidence']:.0%} percentile cluster bootstrap over targets, "
        f"{s['n_resamples']} resamples. Wall time {result['wall_seconds']:.0f} s on "
        f"{result['machine']['cpu_count']} CPUs" + (
            f" (load average {result['load_average'][0]:.2f} at the end)."
            if result.get("load_average") else "."),
        "",
        "## Spearman rank correlation, pooled over the classic families",
        "",
    ]
    md += _table(["", *metrics], [[m] + [fmt_rho(v) for v in result["spearman"][i]]
                                  for i, m in enumerate(metrics)])
    md += ["", "## DSL and MSE against each metric, rho [95% interval]", "",
           "— : undefined, a score is constant in that family (MSE in fixed_mse; count and "
           "critical points in fixed_topology).", ""]
    md += _table(["family", "pairs"] + [f"DSL~{_LABEL[m]}" for m in metrics[1:]],
                 [[f, str(corr[f]["n_pairs"])]
                  + [fmt_interval(corr[f]["dsl"][m]) for m in metrics[1:]] for f in corr])
    md += [""]
    md += _table(["family"] + [f"MSE~{_LABEL[m]}" for m in _TOPOLOGY],
                 [[f] + [fmt_interval(corr[f]["mse"][m]) for m in _TOPOLOGY] for f in corr])
    partial = [f for f in corr if "dsl_given_mse" in corr[f]]
    md += ["", "## Partial correlations: topology beyond error size?", ""]
    titles = (("dsl_given_mse", "DSL~{} given MSE"), ("mse_given_dsl", "MSE~{} given DSL"))
    for key, title in titles:
        md += _table(["family"] + [title.format(_LABEL[m]) for m in _TOPOLOGY],
                     [[f] + [fmt_interval(corr[f][key][m]) for m in _TOPOLOGY] for f in partial])
        md += [""]
    md += [result["findings"]["partial"], "",
           "A partial Spearman correlation removes only the part that is linear in the ranks of "
           "the controlled score; the fixed-MSE family below controls MSE by construction.", ""]
    for fam, title in (("fixed_mse", "Fixed MSE, topology varies"),
                       ("fixed_topology", "Fixed topology, MSE varies")):
        md += [f"## {title} (means over targets)", ""]
        within = ["count", "critical_mismatch"] if fam == "fixed_mse" else []
        md += _table(["variant", "level"] + [_LABEL[m] for m in metrics]
                     + [f"DSL~{_LABEL[m]} within variant" for m in within],
                     [[v["variant"], f"{v['level']:g}"] + [f"{v[m]:.4g}" for m in metrics]
                      + [fmt_interval(v["dsl_within"][m]) for m in within]
                      for v in result["decoupling"][fam]["by_variant"]])
        md += ["", result["findings"][fam], ""]
        if fam == "fixed_mse":
            md += ["The bottleneck distance is at most the largest pointwise error "
                   "max|x - y| (stability of persistence diagrams), and at one RMS that "
                   "maximum differs between the error fields (smallest for the checkerboard).",
                   ""]
    return "\n".join(md)


def _csv(result: dict[str, Any]) -> str:
    lines = ["family,x,y,given,rho,low,high,n_targets,n_pairs,excludes_zero"]
    for fam, c in result["correlations"].items():
        blocks = [("dsl", "dsl", ""), ("mse", "mse", ""), ("dsl_given_mse", "dsl", "mse"),
                  ("mse_given_dsl", "mse", "dsl")]
        for key, x, given in blocks:
            for y, iv in c.get(key, {}).items():
                lines.append(",".join([
                    fam, x, y, given, fmt_number(_num(iv["value"])), fmt_number(_num(iv["low"])),
                    fmt_number(_num(iv["high"])), str(c["n_targets"]), str(c["n_pairs"]),
                    str(iv["excludes_zero"]).lower(),
                ]))
    return "\n".join(lines) + "\n"


def write_report(result: dict[str, Any], out: Path) -> None:
    """Add ``result["findings"]`` and write ``proxy.json``, ``proxy.md``, ``proxy.csv`` to ``out``.

    ``proxy.csv`` has one line per correlation: family (or ``pooled``), x, y, the controlled
    score (``given``, empty for a plain rho), rho, interval, numbers of targets and pairs.
    """
    result["findings"] = findings(result)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "proxy.json", result)
    atomic_write_text(out / "proxy.csv", _csv(result))
    atomic_write_text(out / "proxy.md", _markdown(result) + "\n")
