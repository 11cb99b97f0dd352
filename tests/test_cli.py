"""Tests of the command line (dsl_explore.cli), run in-process."""

from __future__ import annotations

import json

import pytest

from dsl_explore import cli
from dsl_explore.training import TrainingConfig, load_checkpoint

TINY = ["--spatial-dims", "1", "--n-samples", "20", "--batch-size", "4",
        "--base-channels", "4", "--eval-every", "2", "--eval-samples", "2", "--device", "cpu",
        "--no-progress"]
TINY64 = ["--size", "64", *TINY]


def test_help_works(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("train", "reproduce", "proxy"):
        assert cmd in out
    for cmd in ("train", "reproduce", "proxy"):
        assert cli.main([cmd, "--help"]) == 0


def test_train_writes_the_run_directory(tmp_path, capsys):
    run_dir = tmp_path / "run"
    rc = cli.main(["train", "--run-dir", str(run_dir), "--steps", "4", "--loss", "mse+dsl",
                   "--lam", "0.3", "--weights", "0.5", "--data", "bumps",
                   "--data-option", "n_extrema=4", *TINY64])
    assert rc == 0
    assert "done: 4 steps" in capsys.readouterr().out
    cfg = TrainingConfig.from_toml(run_dir / "config.toml")
    assert cfg.lam == 0.3 and cfg.weights == (0.5,) and cfg.data_options == {"n_extrema": 4}
    assert cfg.size == (64,)
    for name in ("history.json", "history.csv", "metrics.json"):
        assert (run_dir / name).is_file()
    assert json.loads((run_dir / "metrics.json").read_text())["step"] == 4
    # the file is written as the run ends: it says how it ended, not "running"
    assert json.loads((run_dir / "metrics.json").read_text())["state"] == "finished"
    assert load_checkpoint(run_dir)["step"] == 4
    # resume in place for more steps
    rc = cli.main(["train", "--run-dir", str(run_dir), "--resume", str(run_dir), "--steps", "6",
                   "--no-progress"])
    assert rc == 0
    assert load_checkpoint(run_dir)["step"] == 6


def test_train_from_toml_config(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text(
        TrainingConfig(spatial_dims=2, size=16, n_samples=12, batch_size=4, base_channels=4,
                       steps=2, eval_every=1, device="cpu", loss="mse").to_toml()
    )
    assert cli.main(["train", "--config", str(conf), "--run-dir", str(tmp_path / "r"),
                     "--steps", "1", "--no-progress"]) == 0
    assert TrainingConfig.from_toml(tmp_path / "r" / "config.toml").steps == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--lam", "-1", "--size", "64"], "lam"),
        (["train", "--loss", "mse+dsl", "--size", "40"], "not valid for this model"),
        (["train", "--config", "missing.toml", "--size", "64"], "does not exist"),
        (["train", "--resume", "nothing-here.pt"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    argv = [*argv, "--run-dir", str(tmp_path / "r"), "--steps", "1", *TINY]
    if "--resume" in argv:
        argv = [*argv[:5], "--no-progress"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dsl-explore: error:") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_existing_run_dir_and_debug(tmp_path, capsys):
    d = tmp_path / "r"
    d.mkdir()
    (d / "x").write_text("keep")
    assert cli.main(["train", "--run-dir", str(d), "--steps", "1", *TINY64]) == 2
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(FileExistsError):
        cli.main(["--debug", "train", "--run-dir", str(d), "--steps", "1", *TINY64])
    assert cli.main(["train", "--run-dir", str(d), "--steps", "1", "--overwrite", *TINY64]) == 0
    assert (d / "x").read_text() == "keep"


def test_argparse_errors_exit_2(capsys):
    assert cli.main(["train"]) == 2  # --run-dir is required
    assert cli.main(["nonsense"]) == 2
    capsys.readouterr()


def test_reproduce_and_proxy_commands(tmp_path, capsys):
    assert cli.main(["reproduce", "--quick", "--dims", "2", "--seeds", "1", "--steps", "3",
                     "--data", "synthetic", "--no-cost", "--out", str(tmp_path / "rep"),
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| synthetic | 2D | mse |" in out
    assert (tmp_path / "rep" / "pareto-synthetic-2d.html").is_file()
    assert cli.main(["reproduce", "--suite", "nope", "--out", str(tmp_path / "x")]) == 2
    assert cli.main(["proxy", "--out", str(tmp_path / "px"), "--n-targets", "1", "--size", "8",
                     "--dims", "1", "--data", "sinusoids"]) == 0
    assert "Spearman" in capsys.readouterr().out


def test_registrar_hook():
    calls = []

    def add_parser(subparsers):
        p = subparsers.add_parser("hello")
        p.set_defaults(func=lambda args: calls.append("hi") or 0)

    cli.register(add_parser)
    try:
        assert cli.main(["hello"]) == 0
        assert calls == ["hi"]
    finally:
        cli.REGISTRARS.remove(add_parser)


def test_export_subcommand_is_registered(capsys):
    from dsl_explore.cli import main

    assert main(["export", "--help"]) == 0
    assert "RUN_DIR" in capsys.readouterr().out


def test_resume_refuses_fields_other_than_the_overridable_ones(tmp_path, capsys):
    from dsl_explore.training import RESUME_OVERRIDABLE

    assert cli.main(["train", "--run-dir", str(tmp_path / "r"), "--resume", str(tmp_path),
                     "--lam", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "with --resume only" in err and "--lam" in err
    assert all("--" + f.replace("_", "-") in err for f in RESUME_OVERRIDABLE)
