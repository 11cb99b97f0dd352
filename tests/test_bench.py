"""``dsl_explore.bench.bench_kernels`` on tiny shapes: the documented keys, positive ratios, and the
argparse wiring. No timing assertions (the numbers depend on the machine)."""

from __future__ import annotations

import argparse
import json

import pytest

from dsl_explore import bench

TINY = {"1D": (2, 1, 33), "2D": (2, 1, 9, 10), "3D": (1, 1, 5, 6, 7)}


@pytest.fixture(scope="module")
def result():
    return bench.bench_kernels(device="cpu", quick=True, repeats=1, shapes=TINY, ph=True,
                               ph_side=8, compile=False)


def test_documented_keys(result):
    assert {"device", "machine", "copy_GBps", "backend", "quick", "cases", "ph",
            "skipped"} <= set(result)
    assert result["device"] == "cpu" and result["copy_GBps"] > 0
    assert [c["name"] for c in result["cases"]] == list(TINY)
    for case in result["cases"]:
        assert {"name", "shape", "numel", "dtype", "floor_ms", "ms", "compile_s", "ratios",
                "check"} <= set(case)
        assert set(case["floor_ms"]) == {"single_pass", "two_pass", "count"}
        assert {"ours_single_pass", "ours_two_pass", "eager", "compile", "count_ours",
                "count_eager", "critical"} == set(case["ms"])
        assert case["check"]["count_equal"]
        assert case["check"]["loss_rel_err"] < 1e-5 and case["check"]["grad_rel_err"] < 1e-4


def test_ratios_positive(result):
    for case in result["cases"]:
        for key in ("ours_single_pass/floor", "ours_two_pass/two_pass_floor", "eager/floor",
                    "eager/ours", "count_ours/floor", "count_eager/floor", "count_eager/ours"):
            assert case["ratios"][key] > 0, key
        assert case["ratios"]["compile/floor"] is None  # compile=False
    ph = result["ph"]
    assert ph["shape"] == [8, 8, 8] and ph["gudhi_s"] > 0 and ph["ratio"] > 0
    assert 0 < ph["gudhi_cpu_s"]  # the per-core PH/DSL ratio divides CPU time by CPU time


def test_json_and_table(result):
    assert json.loads(json.dumps(result)) == result
    table = bench.format_table(result)
    assert "ours 1-pass" in table and "persistent homology" in table


def test_parser_registers_bench_kernels(monkeypatch):
    parser = argparse.ArgumentParser(prog="dsl-explore")
    bench.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "kernels", "--device", "cpu", "--json", "--quick",
                              "--no-ph"])
    assert args.func is bench.run and args.json and args.quick and args.no_ph
    seen = {}
    monkeypatch.setattr(bench, "bench_kernels", lambda **kw: seen.update(kw) or {})
    assert bench.run(args) == 0
    assert seen["device"] == "cpu" and seen["ph"] is False and seen["echo"] is True


def test_bad_device():
    with pytest.raises(ValueError):
        bench.bench_kernels(device="tpu")


def test_cli_registers_every_bench(capsys):
    from dsl_explore.cli import main

    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    for name in ("kernels", "core", "ui"):
        assert name in out


def test_cores_section(result):
    """Per-core ratios and the 2-thread speedup, measured in one interleaved run, with the load
    average (CPU runs only)."""
    cores = result["cores"]
    assert cores["copy_GBps_1thread"] > 0 and len(cores["load_average"]) == 2
    assert [c["name"] for c in cores["cases"]] == list(TINY)
    for c in cores["cases"]:
        assert {"ours_1t", "ours_2t", "eager_1t", "copy_1t"} == set(c["ms"])
        for t in c["ms"].values():
            assert {"wall_min", "wall_median", "thread_cpu_min", "process_cpu_min"} <= set(t)
        assert c["per_core"]["ours/floor"] > 0 and c["per_core"]["eager/ours"] > 0
        assert c["two_threads"]["speedup_wall_min"] > 0
        assert c["two_threads"]["cpu_2t_over_1t"] > 0
        assert set(c["two_threads"]["cpu_blocks"]) == {"1t", "2t"}
    assert result["ph"]["ratio_1core"] > 0
    assert "2-thread speedup" in bench.format_table(result)


def test_targets_section(result):
    """The per-core ratios, 2-thread speedups (wall, with the CPU-time ratio) and PH/DSL beside
    issue 16's targets, in the result and the table."""
    tg = result["targets"]
    assert tg["load_average"] == result["cores"]["load_average"]
    assert set(tg["per_core"]) == set(TINY) == set(tg["two_threads"])
    assert tg["per_core"]["1D"]["target"] is None and tg["per_core"]["1D"]["met"] is None
    for name in ("2D", "3D"):
        t = tg["per_core"][name]
        assert t["target"] == 4.0 and t["met"] == (t["value"] <= 4.0)
        assert t["value"] == result["cores"]["cases"][list(TINY).index(name)]["per_core"][
            "ours/floor"]
    for t in tg["two_threads"].values():
        assert t["target"] == 1.7 and t["met"] == (t["value"] >= 1.7) and t["cpu_2t_over_1t"] > 0
    assert tg["ph"]["target"] == 5000.0 and tg["ph"]["value"] == result["ph"]["ratio_1core"]
    assert "targets: 2D" in bench.format_table(result)


def test_cpu_per_call_block():
    """The CPU time per call comes from a block of back-to-back calls (at least 3, at least
    ``min_s`` of wall time), and the thread count is restored afterwards."""
    import torch

    calls = []
    before = torch.get_num_threads()
    b = bench._cpu_per_call(lambda: calls.append(torch.get_num_threads()), 1, min_s=0.01)
    assert set(calls) == {1} and len(calls) == b["calls"] + 1 and b["calls"] >= 3
    assert b["wall_ms"] > 0 and b["process_cpu_ms"] >= 0
    assert torch.get_num_threads() == before
