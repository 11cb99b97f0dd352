"""The torchmetrics Metrics synchronise across ranks; TensorBoard events of a run."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from dsl_explore.training.metrics import EvalBatch, compute_metrics, sign_mismatch_rate

tm = pytest.importorskip("torchmetrics")
from dsl_explore.metrics_tm import BettiError, SignMismatchRate  # noqa: E402


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 1, 12, 10, generator=g), torch.rand(6, 1, 12, 10, generator=g)


def test_one_process_matches_the_training_metrics():
    x, y = _data()
    rate, betti = SignMismatchRate(spatial_dims=2), BettiError(spatial_dims=2, thresholds=8)
    for i in (0, 2, 4):  # three batches
        rate.update(x[i:i + 2], y[i:i + 2])
        betti.update(x[i:i + 2], y[i:i + 2])
    assert float(rate.compute()) == pytest.approx(sign_mismatch_rate(x.numpy(), y.numpy()),
                                                  rel=1e-12)
    want = compute_metrics(EvalBatch(x.numpy(), y.numpy(), betti_thresholds=8), live=True)
    assert float(betti.compute()) == pytest.approx(want["betti_total"], rel=1e-12)
    np.testing.assert_allclose(betti.per_dim().numpy(), want["betti_per_dim"], rtol=1e-12)
    with pytest.raises(ValueError, match="spatial axes"):
        rate.update(x[0], y[0])


def _rank(rank: int, port: int, queue) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    x, y = _data()
    rate, betti = SignMismatchRate(spatial_dims=2), BettiError(spatial_dims=2, thresholds=8)
    rate.update(x[rank::2], y[rank::2])
    betti.update(x[rank::2], y[rank::2])
    queue.put((rank, float(rate.compute()), float(betti.compute())))
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_synchronise_to_the_whole_data_set():
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(r, port, queue)) for r in (0, 1)]
    for p in procs:
        p.start()
    try:
        got = sorted(queue.get(timeout=90) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    x, y = _data()
    want_rate = sign_mismatch_rate(x.numpy(), y.numpy())
    want_betti = compute_metrics(EvalBatch(x.numpy(), y.numpy(), betti_thresholds=8),
                                 live=True)["betti_total"]
    for _, r, b in got:
        assert r == pytest.approx(want_rate, rel=1e-12)
        assert b == pytest.approx(want_betti, rel=1e-12)


def test_tensorboard_events_of_a_run(tmp_path):
    pytest.importorskip("tensorboard")
    from _training import tiny
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dsl_explore.training import TrainingRun

    run = TrainingRun(tiny(steps=6, eval_every=3, loss="mse+dsl"), run_dir=tmp_path / "r",
                      tensorboard=True)
    run.set(k=30.0)
    run.run()
    acc = EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"loss/total", "loss/dsl", "setting/lr", "eval/count_rate", "eval/betti_h0"} <= \
        set(tags)
    assert [e.step for e in acc.Scalars("loss/total")] == list(range(1, 7))
    assert [e.value for e in acc.Scalars("loss/total")] == pytest.approx(
        run.history["steps"]["total"], rel=1e-6)
    assert [e.step for e in acc.Scalars("eval/val_mse")] == [0, 3, 6]
    assert "events/text_summary" in acc.Tags()["tensors"]
