"""Personalisation: a job through the one runner (recipe "personal"), the report, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from app.cli import main
from core import jobs, runs
from core.bundled import bundled_model
from core.inference import OnnxClassifier
from core.personalize import PersonalizeError, personalize, split_halves
from core.strokes import load_drawn, save_drawn
from core.weights import MODEL_CONFIG_KEY, WeightsError, load_state, model_config_of
from tests.training_recorder import Recorder


@pytest.fixture(scope="module")
def writer_digits(drawn_digits_path, tmp_path_factory):
    """Twenty digits of one dev writer (two of each) as a personal set."""
    samples = [s for s in load_drawn(drawn_digits_path) if s.writer == "IanFelix"]
    picked = []
    for digit in range(10):
        picked += [s for s in samples if s.label == digit][:2]
    path = tmp_path_factory.mktemp("personal") / "strokes.npz"
    save_drawn(picked, path)
    return path


@pytest.fixture(scope="module")
def small(mnist):
    return mnist.subset(1500, 500)


def test_split_is_balanced_per_digit_and_fixed(writer_digits):
    samples = load_drawn(writer_digits)
    fit, test = split_halves(samples)
    assert sorted(fit + test) == list(range(len(samples)))
    assert sorted(samples[i].label for i in fit) == sorted(samples[i].label for i in test)
    assert (fit, test) == split_halves(samples)


def test_onnx_weights_load_into_the_same_architecture():
    cfg, state = load_state(bundled_model("student"))
    from core.models import build_model

    model = build_model(cfg).eval()
    model.load_state_dict(state)
    x = torch.rand(5, 1, 28, 28)
    expected = OnnxClassifier(bundled_model("student")).logits(x.numpy())
    np.testing.assert_allclose(model(x).detach().numpy(), expected, rtol=1e-4, atol=1e-4)


def test_unknown_architecture_is_named(tmp_path):
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(bundled_model("student").read_bytes())
    with pytest.raises(WeightsError, match="architecture is unknown"):
        model_config_of(lone)


def test_a_job_starting_from_weights_starts_from_them(tmp_path, small, writer_digits):
    """With a vanishing learning rate the fine-tuned weights stay the base's: the job really starts from them."""
    spec = jobs.JobSpec(
        recipe="personal",
        role="distilled",
        teacher_run=bundled_model("teacher"),
        init_weights=bundled_model("student"),
        personal=writer_digits,
        personal_indices=(0, 1, 2),
        overrides={"lr": 1e-12, "epochs": 1},
        device="cpu",
        runs_root=tmp_path / "runs",
        export=False,
    )
    result = jobs.run_job(spec, data=small)
    assert result.status == "complete"
    _, base = load_state(bundled_model("student"))
    for name, tensor in result.model.state_dict().items():
        torch.testing.assert_close(tensor, base[name], rtol=0, atol=1e-6)
    config = json.loads((result.run_dir / runs.CONFIG).read_text())
    assert config["recipe"] == "personal" and config["role"] == "distilled"
    assert config["init"]["path"] == str(bundled_model("student").resolve())
    assert config["teacher"]["onnx"] == str(bundled_model("teacher").resolve())
    assert config["data"]["personal"] == str(writer_digits.resolve())
    assert config["data"]["personal_indices"] == [0, 1, 2]
    assert config["data"]["personal_copies"] == 30
    assert config["train"]["max_train_samples"] == 6000  # the recipe's MNIST share


def test_personalize_writes_a_model_like_the_bundled_one_and_a_report(tmp_path, small, writer_digits):
    out = tmp_path / "me"
    progress = Recorder()
    report = personalize(
        writer_digits, out, runs_root=tmp_path / "runs", data=small, calibrate=False, progress=progress
    )
    assert report["status"] == "complete"
    # The notes before and after go to the progress's status lines, with the job's own lines between them.
    notes = [line for line in progress.lines if line.startswith(("before: ", "after: "))]
    assert [n.split(":")[0] for n in notes] == ["before", "after"] and progress.epochs
    assert f"{report['after']['personal']:.1%} on 10 held-out personal digits" in notes[1]
    assert (report["fit"], report["test"]) == (10, 10)
    saved = json.loads((out / "report.json").read_text())
    assert saved["before"] == report["before"] and saved["after"] == report["after"]
    for key in ("personal", "mnist"):
        assert 0 <= report["after"][key] <= 1
    model = OnnxClassifier(out / "model.onnx")
    bundled = OnnxClassifier(bundled_model("student"))
    assert model.input_name == bundled.input_name and model.output_name == bundled.output_name
    assert model.session.get_inputs()[0].shape == bundled.session.get_inputs()[0].shape
    assert json.loads(model.metadata[MODEL_CONFIG_KEY]) == json.loads(
        json.dumps(model_config_of(bundled_model("student")).to_dict())
    )
    # The digits used are kept beside the model; the run went through the job runner and is complete.
    assert len(load_drawn(out / "strokes.npz")) == 20
    info = runs.read_run(report["run"])
    assert info.status == "complete" and info.role == "distilled"
    # The personal model can itself be personalised again (its architecture travels in its metadata).
    assert model_config_of(out / "model.onnx") == model_config_of(bundled_model("student"))
    assert onnx.load(str(out / "model.onnx")).opset_import[0].version == 11


def test_too_few_digits_is_a_clear_error(tmp_path, writer_digits):
    few = tmp_path / "few.npz"
    save_drawn(load_drawn(writer_digits)[:3], few)
    with pytest.raises(PersonalizeError, match="at least 4"):
        personalize(few, tmp_path / "out", calibrate=False)


def test_cli_personalize(tmp_path, writer_digits, small, monkeypatch, capsys):
    # The command's MNIST comes through app.commands.common.load_data (the data options every command shares,
    # tests/test_cli.py); here it hands over the small subset of the tests above, so that the job checks the
    # command, not a fine-tuning on the recipe's 6,000 images and a measure on 10,000.
    loaded = []
    monkeypatch.setattr("app.commands.personalize.load_data", lambda args: loaded.append(args) or small)
    code = main(
        [
            "personalize",
            "--strokes",
            str(writer_digits),
            "--out",
            str(tmp_path / "out"),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--no-calibrate",
            "--json",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    assert [args.no_download for args in loaded] == [False]  # the command asked for its data once
    report = json.loads(out)
    assert report["status"] == "complete"
    assert "command" in report  # the command line when run as `digit-distill personalize ...`
    assert (tmp_path / "out" / "model.onnx").is_file()
    assert json.loads((tmp_path / "out" / "report.json").read_text())["command"] == report["command"]
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses a missing file before anything runs
        main(["personalize", "--strokes", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "o")])
    _, err = capsys.readouterr()
    assert exit_info.value.code != 0 and "does not exist" in err
