"""Calibration, "not sure", "not a digit" (core.trust), generated non-digits, the personal set, and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from app.cli import main
from core.bundled import bundled_model
from core.inference import OnnxClassifier
from core.nondigits import FAMILIES, FIT_FAMILIES, HELDOUT_FAMILIES, generate
from core.personal import PersonalSet
from core.strokes import DrawnSample, load_drawn, render_strokes, save_drawn
from core.trust import (
    TRUST_KEY,
    Trust,
    TrustError,
    TrustSettings,
    Verdict,
    expected_calibration_error,
    fit_data,
    fit_temperature,
    fit_trust,
    ink_features,
    mnist_as_drawing,
    read_trust,
    render_drawings,
    softmax,
    styled_digits,
    write_trust,
)

REPORT = Path(__file__).resolve().parents[1] / "docs" / "results" / "trust" / "calibration.json"
TINY = TrustSettings(holdout=(59700, 60000), nondigits=180, steps=150)


# ----------------------------------------------------------------------------------- non-digit drawings
def test_generator_is_reproducible_and_families_are_split():
    a, fa = generate(30, list(FAMILIES), seed=5)
    b, fb = generate(30, list(FAMILIES), seed=5)
    c, _ = generate(30, list(FAMILIES), seed=6)
    assert fa == fb and all(np.array_equal(x, y) for da, db in zip(a, b) for x, y in zip(da, db))
    assert not all(np.array_equal(da[0], dc[0]) for da, dc in zip(a, c))
    assert set(FIT_FAMILIES).isdisjoint(HELDOUT_FAMILIES)
    assert set(FIT_FAMILIES) | set(HELDOUT_FAMILIES) == set(FAMILIES)
    for drawing in a:
        assert all(s.dtype == np.float32 and s.ndim == 2 and s.shape[1] == 2 for s in drawing)
        image = render_strokes(drawing)
        assert image.shape == (280, 280) and image.min() == 0  # something is inked
    with pytest.raises(ValueError, match="unknown non-digit families"):
        generate(3, ["doodles"])


def test_mnist_redrawn_as_strokes_still_reads_as_the_digit(mnist):
    student = OnnxClassifier(bundled_model("student"))
    x, y = mnist.test_images[:60].numpy(), mnist.test_labels[:60].numpy()
    drawn = mnist_as_drawing(x)
    assert drawn.shape == (60, 1, 28, 28) and drawn.dtype == np.float32
    assert (student.predict(drawn) == y).mean() >= 0.9
    assert not np.allclose(drawn, x, atol=0.1)  # really re-drawn, with the canvas pen


def test_styled_digits_are_the_zeros_ones_and_sevens_in_european_styles(mnist):
    x, y = mnist.test_images[:200].numpy(), mnist.test_labels[:200].numpy()
    styled, index = styled_digits(x, y, seed=3)
    assert set(y[index].tolist()) == {0, 1, 7} and len(index) == int(np.isin(y, [0, 1, 7]).sum())
    assert styled.shape == (len(index), 1, 28, 28) and styled.dtype == np.float32
    assert 0 <= styled.min() and styled.max() <= 1
    again, _ = styled_digits(x, y, seed=3)
    assert np.array_equal(styled, again)  # reproducible
    student = OnnxClassifier(bundled_model("student"))
    assert (student.predict(styled) == y[index]).mean() >= 0.85  # still read as their digits
    # A slash splits a zero's hole in two.
    zeros = index[y[index] == 0]
    holes_plain = ink_features(x[zeros])[:, 3].mean()
    holes_styled = ink_features(styled[y[index] == 0])[:, 3].mean()
    assert holes_styled > holes_plain + 0.5


# --------------------------------------------------------------------------------- calibration maths
def test_fit_temperature_recovers_the_temperature_labels_were_drawn_at():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, size=(20000, 10))
    true_t = 2.5
    p = softmax(logits, true_t)
    labels = np.array([rng.choice(10, p=row) for row in p])
    assert fit_temperature(logits, labels) == pytest.approx(true_t, rel=0.05)


def test_ece_is_small_when_calibrated_and_large_when_overconfident():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, size=(20000, 10))
    p = softmax(logits)
    labels = np.array([rng.choice(10, p=row) for row in p])
    assert expected_calibration_error(p, labels) < 0.02
    assert expected_calibration_error(softmax(logits, 0.3), labels) > 0.1


def test_verdict_texts():
    p = np.full(10, 0.01)
    sure = Verdict(4, 9, p, 0.9, unsure=False, not_a_digit=False)
    unsure = Verdict(4, 9, p, 0.5, unsure=True, not_a_digit=False)
    scribble = Verdict(4, 9, p, 0.99, unsure=False, not_a_digit=True)
    assert (sure.text, unsure.text, scribble.text) == ("4", "not sure: 4 or 9?", "not a digit")


# ---------------------------------------------------------------------------------- storage in ONNX
@pytest.fixture(scope="module")
def tiny_fit(mnist):
    return fit_data(mnist, TINY)


@pytest.fixture(scope="module")
def calibrated_copy(tmp_path_factory, tiny_fit):
    """A copy of the bundled student with a calibration fitted on a tiny sample."""
    path = tmp_path_factory.mktemp("calibrated") / "student.onnx"
    shutil.copy(bundled_model("student"), path)
    trust = fit_trust(OnnxClassifier(path), tiny_fit, TINY)
    write_trust(path, trust)
    return path, trust


def test_calibration_travels_in_the_onnx_file(calibrated_copy):
    path, trust = calibrated_copy
    before = {p.key: p.value for p in onnx.load(str(bundled_model("student"))).metadata_props}
    after = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert {k: v for k, v in after.items() if k != TRUST_KEY} == {
        k: v for k, v in before.items() if k != TRUST_KEY
    }  # other metadata kept
    again = read_trust(path)
    assert again.temperature == pytest.approx(trust.temperature, rel=1e-6)
    assert again.gate_threshold == trust.gate_threshold
    assert again.fitted["mnist_train_slice"] == list(TINY.holdout)
    assert again.fitted["nondigit_families"] == sorted(FAMILIES)
    classifier = OnnxClassifier(path)  # still a valid digit model, same answers
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    assert np.allclose(classifier.logits(x), OnnxClassifier(bundled_model("student")).logits(x))
    # Rounded to 6 digits in the file: the verdicts agree with the fitted object's.
    verdicts = [(v.digit, v.not_a_digit, v.unsure) for v in trust.assess(x, classifier.logits(x))]
    assert verdicts == [(v.digit, v.not_a_digit, v.unsure) for v in again.assess(x, classifier.logits(x))]


def test_the_gate_threshold_holds_for_every_rendering_of_digits(calibrated_copy):
    """Scanned, re-drawn and European-styled held-out digits each flagged at most at the fitted rate."""
    _, trust = calibrated_copy
    views = trust.fitted["digit_views"]
    assert set(views) == {"scanned", "drawn", "styled"}
    rate = trust.fitted["digit_flag_rate"]
    # The threshold is the strictest view's quantile: no view has more than its share flagged.
    for view in views.values():
        assert view["threshold_digits"] > 0
        assert view["flagged"] <= rate + 1 / view["threshold_digits"]
    assert trust.fitted["threshold_digits"] == sum(v["threshold_digits"] for v in views.values())


def test_unreadable_calibration_is_refused_by_name():
    with pytest.raises(TrustError, match="format"):
        Trust.from_json(json.dumps({"version": 99}))
    with pytest.raises(TrustError, match="unreadable"):
        Trust.from_json("{not json")
    assert Trust.from_metadata({"role": "student"}) is None


def test_bundled_calibration_separates_digits_from_scribbles(mnist):
    """The fitted gate of the bundled student: held-out-seed scribbles flagged, MNIST test digits let through."""
    classifier = OnnxClassifier(bundled_model("student"))
    trust = read_trust(bundled_model("student"))
    assert trust is not None
    digits = mnist.test_images[:500].numpy()
    drawings, _ = generate(90, list(FAMILIES), seed=11)
    scribbles = render_drawings(drawings)
    flagged_digits = np.mean([v.not_a_digit for v in trust.assess(digits, classifier.logits(digits))])
    flagged_scribbles = np.mean(
        [v.not_a_digit for v in trust.assess(scribbles, classifier.logits(scribbles))]
    )
    assert flagged_digits < 0.03
    assert flagged_scribbles > 0.7


def test_bundled_student_carries_a_calibration_and_flags_a_scribble(mnist, tmp_path, capsys):
    """The contract for whoever replaces the bundled models: re-run `digit-distill calibrate` on them."""
    trust = read_trust(bundled_model("student"))
    assert trust is not None, (
        "re-run: digit-distill calibrate core/bundled/student.onnx core/bundled/teacher.onnx"
    )
    assert read_trust(bundled_model("teacher")) is not None
    hatch, _ = generate(1, ["hatch"], seed=2)
    Image.fromarray(render_strokes(hatch[0])).save(tmp_path / "hatch.png")
    digit = (1 - mnist.test_images[0, 0].numpy()) * 255
    Image.fromarray(digit.astype(np.uint8)).resize((200, 200)).save(tmp_path / "seven.png")
    assert main(["predict", "--json", str(tmp_path / "hatch.png"), str(tmp_path / "seven.png")]) == 0
    out, err = capsys.readouterr()
    scribble, seven = (json.loads(line) for line in out.splitlines())
    assert err == ""
    assert scribble["not_a_digit"] is True
    assert seven["digit"] == 7 and seven["not_a_digit"] is False and seven["unsure"] is False
    assert 0.5 < seven["confidence"] <= 1


def test_the_trust_report_measures_the_calibration_in_the_bundled_models():
    """docs/results/trust/calibration.json (and so docs/RESULTS.md) describes what the bundled files hold."""
    rerun = (
        "the bundled models changed: digit-distill calibrate core/bundled/student.onnx core/bundled/teacher.onnx "
        "--report /tmp/calibration.json, copy it to docs/results/trust/calibration.json, "
        "python scripts/make_report.py"
    )
    report = json.loads(REPORT.read_text())
    assert sorted(Path(m["model"]).name for m in report["models"]) == ["student.onnx", "teacher.onnx"]
    for entry in report["models"]:
        stored = read_trust(bundled_model(Path(entry["model"]).stem))
        assert entry["temperature"] == pytest.approx(stored.temperature, rel=1e-9), rerun
        assert entry["gate_threshold"] == pytest.approx(stored.gate_threshold, rel=1e-9), rerun


def test_calibrate_command_writes_the_model_and_a_report(tmp_path, capsys):
    model = tmp_path / "in.onnx"
    shutil.copy(bundled_model("student"), model)
    code = main(["calibrate", str(model), "--out", str(tmp_path / "out.onnx"), "--quick", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    report = json.loads(out)
    assert report["models"][0]["written"] == str(tmp_path / "out.onnx")
    assert read_trust(tmp_path / "out.onnx") is not None
    assert model.read_bytes() == bundled_model("student").read_bytes()  # --out leaves the input alone
    code = main(["calibrate", str(model), str(model), "--out", str(tmp_path / "x.onnx")])
    _, err = capsys.readouterr()
    assert code != 0 and "--out needs exactly one model" in err


# ----------------------------------------------------------------------------------- personal set
def test_drawn_npz_round_trip_and_personal_set(tmp_path):
    strokes = [np.array([[0, 0], [10, 5], [20, 30]], np.float32), np.array([[5, 5]], np.float32)]
    path = tmp_path / "p" / "strokes.npz"
    store = PersonalSet(path)
    assert store.samples() == [] and len(store) == 0
    assert store.add(strokes, 7) == 0
    assert store.add(strokes[:1], 1) == 1
    assert store.add(strokes, 7) == 2
    loaded = load_drawn(path)  # the drawn-digits format, readable like the dev set
    assert [s.label for s in loaded] == [7, 1, 7]
    assert all(np.array_equal(a, b) for a, b in zip(loaded[0].strokes, strokes))
    assert loaded[0].writer == "me"
    with np.load(path) as data:
        assert set(data.files) == {
            "points",
            "stroke_offsets",
            "sample_stroke_offsets",
            "labels",
            "institution",
            "writer",
        }
        assert data["labels"].dtype == np.uint8
    assert store.counts() == [0, 1, 0, 0, 0, 0, 0, 2, 0, 0]
    assert store.delete([0, 2]) == 2
    assert [s.label for s in store.samples()] == [1]
    with pytest.raises(ValueError, match="0-9"):
        store.add(strokes, 10)
    with pytest.raises(ValueError, match="nothing drawn"):
        store.add([], 3)
    assert [p.name for p in path.parent.iterdir()] == ["strokes.npz"]  # no temporary files left


def test_save_drawn_refuses_bad_samples(tmp_path):
    with pytest.raises(ValueError, match="label"):
        save_drawn([DrawnSample([np.zeros((2, 2), np.float32)], 12)], tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_personal_set_lives_in_the_user_data_folder(isolated_home, monkeypatch):
    from core.personal import default_personal_path

    monkeypatch.delenv("DIGIT_DISTILL_PERSONAL", raising=False)
    assert default_personal_path() == isolated_home / "data" / "digit-distill" / "personal" / "strokes.npz"
    monkeypatch.setenv("DIGIT_DISTILL_PERSONAL", str(isolated_home / "mine.npz"))
    assert default_personal_path() == isolated_home / "mine.npz"
