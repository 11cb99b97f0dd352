"""Notebook 06's cost table: warm-up, repeats and median; ratios below 1 are not "0x"."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gudhi")

from dsl_explore import notebook  # noqa: E402
from dsl_explore.bench import _f  # noqa: E402


def test_median_seconds_warms_up_then_takes_the_median_of_several_runs():
    calls: list[int] = []
    notebook._median_seconds(lambda: calls.append(1), min_runs=5, budget_s=0.0)
    assert len(calls) == 6  # one untimed warm-up + 5 timed runs
    calls.clear()
    notebook._median_seconds(lambda: calls.append(1), min_runs=5, budget_s=10.0, max_runs=12)
    assert len(calls) == 13


def test_cost_comparison_times_with_one_thread_and_restores_the_setting(monkeypatch):
    seen: list[int] = []
    real = notebook._median_seconds

    def spy(fn, **kw):
        seen.append(torch.get_num_threads())
        return real(fn, min_runs=1, budget_s=0.0)

    monkeypatch.setattr(notebook, "_median_seconds", spy)
    before = torch.get_num_threads()
    rows = notebook.cost_comparison((4, 6))
    assert [r["side"] for r in rows] == [4, 6]
    assert seen and set(seen) == {1}  # OpenMP fork-join stalls made the table jump
    assert torch.get_num_threads() == before
    assert all(r["dsl_cpu_s"] > 0 and r["gudhi_s"] > 0 for r in rows)


def test_small_ratios_keep_two_digits():
    assert _f(0.41, "{:.0f}x") == "0.41x"  # printed "0x" before
    assert _f(12.4, "{:.0f}x") == "12x"
    assert _f(None, "{:.0f}x") == "-"
