"""The Draw tab's honest answers ("not sure", "not a digit") and the personal set (correct, undo, review, delete)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from app.gui.draw_tab import DrawTab
from app.gui.personal import PersonalSetDialog
from core.personal import PersonalSet
from core.trust import Trust, gate_features, softmax, write_trust
from tests.gui.test_draw_tab import draw, placed, quick_models  # noqa: F401 - quick_models is a fixture

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

SEVEN = [np.array([[0, 0], [40, 0], [15, 60]], dtype=np.float32)]
N_FEATURES = gate_features(np.zeros((1, 28, 28)), np.zeros((1, 10)), 1.0).shape[1]


def constant_trust(flag_everything: bool, unsure_below: float, temperature: float = 2.0) -> Trust:
    """A calibration whose gate scores every input 0: threshold -1 flags everything, +1 nothing."""
    gate = {
        "mean": np.zeros(N_FEATURES),
        "scale": np.ones(N_FEATURES),
        "w1": np.zeros((N_FEATURES, 1)),
        "b1": np.zeros(1),
        "w2": np.zeros(1),
        "b2": 0.0,
    }
    return Trust(temperature, unsure_below, gate, -1.0 if flag_everything else 1.0)


def make_tab(qtbot, models, tmp_path) -> DrawTab:
    tab = DrawTab(
        models_dir=models, runs_root=tmp_path / "runs", personal_set=PersonalSet(tmp_path / "me.npz")
    )
    qtbot.addWidget(tab)
    tab.resize(1100, 760)
    tab.show()
    qtbot.waitExposed(tab)
    return tab


@pytest.fixture()
def models_with(quick_models, tmp_path):  # noqa: F811
    def make(trust: Trust):
        folder = tmp_path / "models"
        shutil.copytree(quick_models, folder, dirs_exist_ok=True)
        write_trust(folder / "student.onnx", trust)
        return folder

    return make


def test_not_a_digit_replaces_the_digit(qtbot, models_with, tmp_path):
    tab = make_tab(qtbot, models_with(constant_trust(flag_everything=True, unsure_below=0.0)), tmp_path)
    draw(qtbot, tab, placed(SEVEN))
    panel = tab.student_panel
    assert panel.digit_label.text() == "×" and panel.confidence_label.text() == "not a digit"
    assert panel.digit() is None
    assert tab.verdicts["student"].not_a_digit
    assert tab.verdicts["teacher"] is None  # the teacher has no calibration: a plain answer
    assert tab.teacher_panel.digit() is not None


def test_not_sure_names_the_top_two_calibrated_digits(qtbot, models_with, tmp_path):
    tab = make_tab(qtbot, models_with(constant_trust(flag_everything=False, unsure_below=1.01)), tmp_path)
    draw(qtbot, tab, placed(SEVEN))
    x = tab.current_input().reshape(1, 1, 28, 28)
    p = softmax(tab.student_picker.classifier().logits(x)[0], 2.0)
    first, second = np.argsort(p)[::-1][:2]
    panel = tab.student_panel
    assert panel.confidence_label.text() == f"not sure: {first} or {second}?"
    assert panel.digit_label.text() == "?"
    np.testing.assert_allclose(panel.chart.heights(), p, rtol=1e-6)


def test_a_sure_answer_shows_the_calibrated_confidence(qtbot, models_with, tmp_path):
    tab = make_tab(qtbot, models_with(constant_trust(flag_everything=False, unsure_below=0.0)), tmp_path)
    draw(qtbot, tab, placed(SEVEN))
    verdict = tab.verdicts["student"]
    assert tab.student_panel.digit() == verdict.digit
    assert tab.student_panel.confidence_label.text() == f"confidence {verdict.confidence:.1%}"


def test_correcting_saves_the_strokes_with_the_digit_and_undo_removes_them(qtbot, quick_models, tmp_path):  # noqa: F811
    tab = make_tab(qtbot, quick_models, tmp_path)
    draw(qtbot, tab, placed(SEVEN))
    strokes = tab.canvas.strokes()
    with qtbot.waitSignal(tab.personal_panel.saved) as saved:
        tab.personal_panel.digit_buttons[7].click()
    assert saved.args == [7]
    store = PersonalSet(tmp_path / "me.npz")
    (sample,) = store.samples()
    assert sample.label == 7
    assert len(sample.strokes) == len(strokes)
    assert all(np.array_equal(a, b) for a, b in zip(sample.strokes, strokes))
    assert "Saved as a 7" in tab.message()
    assert tab.personal_panel.review_button.text() == "Review (1)…"
    tab.personal_panel.undo_button.click()
    assert store.samples() == []
    assert not tab.personal_panel.undo_button.isEnabled()
    assert tab.personal_panel.review_button.text() == "Review (0)…"


def test_typing_a_digit_corrects_too(qtbot, quick_models, tmp_path):  # noqa: F811
    tab = make_tab(qtbot, quick_models, tmp_path)
    draw(qtbot, tab, placed(SEVEN))
    tab.canvas.setFocus()
    QTest.keyClick(tab.canvas, Qt.Key.Key_3)
    assert [s.label for s in PersonalSet(tmp_path / "me.npz").samples()] == [3]


def test_only_drawings_go_into_the_personal_set(qtbot, quick_models, tmp_path):  # noqa: F811
    tab = make_tab(qtbot, quick_models, tmp_path)
    assert not tab.personal_panel.correct(5)  # nothing drawn
    assert "Draw a digit first" in tab.message()
    image = QImage(100, 100, QImage.Format.Format_Grayscale8)
    image.fill(255)
    for x in range(30, 70):
        image.setPixel(x, 50, 0)
    tab.canvas.set_image(image)  # an opened image has no strokes
    assert not tab.personal_panel.correct(5)
    assert not (tmp_path / "me.npz").exists()


def test_review_dialog_shows_and_deletes_selected(qtbot, tmp_path):
    store = PersonalSet(tmp_path / "me.npz")
    for label in (1, 2, 3):
        store.add(SEVEN, label)
    dialog = PersonalSetDialog(store)
    qtbot.addWidget(dialog)
    assert dialog.list.count() == 3
    assert [dialog.list.item(i).text() for i in range(3)] == ["1", "2", "3"]
    assert not dialog.delete_button.isEnabled()
    dialog.list.item(0).setSelected(True)
    dialog.list.item(2).setSelected(True)
    assert dialog.delete_button.isEnabled()
    assert dialog.delete_selected() == 2
    assert [s.label for s in store.samples()] == [2]
    assert dialog.list.count() == 1 and dialog.summary.text() == "1 drawings (2: 1)"


def test_personalize_runs_in_the_background_and_becomes_the_student(qtbot, quick_models, tmp_path, mnist):  # noqa: F811
    from core.bundled import bundled_model
    from core.strokes import load_drawn
    from tests.conftest import DRAWN_DIGITS

    store = PersonalSet(tmp_path / "me.npz")
    tab = DrawTab(models_dir=quick_models, runs_root=tmp_path / "runs", personal_set=store)
    qtbot.addWidget(tab)
    panel = tab.personal_panel
    assert not panel.start_personalize(tmp_path / "model")  # nothing saved yet
    assert "at least 4" in panel.status.text()
    samples = [s for s in load_drawn(DRAWN_DIGITS) if s.writer == "IanFelix"][:8]
    for sample in samples:
        store.add(sample.strokes, sample.label)
    panel.refresh()
    epochs = []
    panel.runner.epoch.connect(epochs.append)
    with qtbot.waitSignal(panel.personalized, timeout=300_000) as done:
        assert panel.start_personalize(
            tmp_path / "model",
            base=bundled_model("student"),
            teacher=bundled_model("teacher"),
            data=mnist.subset(1000, 300),
            runs_root=tmp_path / "runs",
            calibrate=False,
        )
        assert not panel.progress.isHidden() and not panel.personalize_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.runner.is_running())
    model = tmp_path / "model" / "model.onnx"
    assert done.args == [model]
    assert len(epochs) == 3 and epochs[-1]["epoch"] == 3
    assert tab.student_picker.source().path == model  # the personal model is now the student in Draw
    assert "Your personal model:" in panel.status.text() and "MNIST test" in panel.status.text()
    report = panel.last_report
    assert report["status"] == "complete" and report["fit"] + report["test"] == 8
    assert panel.personalize_button.isEnabled() and panel.progress.isHidden()


def test_gallery_shows_per_digit_accuracy_and_the_misread_drawings(qtbot, quick_models, tmp_path):  # noqa: F811
    from app.gui.gallery import FailureGallery
    from core.strokes import load_drawn, render_inputs
    from tests.conftest import DRAWN_DIGITS

    samples = load_drawn(DRAWN_DIGITS)[::40]
    tab = make_tab(qtbot, quick_models, tmp_path)
    for sample in samples[:5]:
        tab.personal_panel.personal_set.add(sample.strokes, sample.label)
    gallery = tab.failure_gallery()
    qtbot.addWidget(gallery)
    assert [gallery.source_combo.itemText(i) for i in range(gallery.source_combo.count())] == [
        "Dev set (drawn-digits-dev)",
        "My personal set",
    ]
    gallery.source_combo.setCurrentText("My personal set")
    with qtbot.waitSignal(gallery.checked, timeout=60_000):
        assert gallery.check()
    assert len(gallery.samples) == 5

    # The same computation on a chosen list, checked against the model directly.
    student = tab.student_picker.classifier()
    gallery = FailureGallery({"some": lambda: samples}, {"Student": lambda: student})
    qtbot.addWidget(gallery)
    with qtbot.waitSignal(gallery.checked, timeout=120_000) as done:
        gallery.check()
    predictions = student.predict(render_inputs(samples))
    labels = np.array([s.label for s in samples])
    result = done.args[0]
    np.testing.assert_array_equal(result["predictions"], predictions)
    for digit in range(10):
        mine = labels == digit
        if mine.any():
            assert result["per_digit"][digit] == pytest.approx((predictions[mine] == digit).mean())
    np.testing.assert_allclose(gallery.chart.heights(), np.nan_to_num(result["per_digit"]))
    wrong = np.flatnonzero(predictions != labels)
    assert gallery.gallery.count() == len(wrong)
    assert [gallery.gallery.item(k).text() for k in range(len(wrong))] == [
        f"{labels[i]} → {predictions[i]}" for i in wrong
    ]
    assert f"{len(wrong)} wrong" in gallery.summary.text()
    assert result["confusion"].sum() == len(samples)
