"""The drawing canvas: a square QWidget that records pen strokes and paints them crisply at any size and pixel ratio.

The canvas keeps the strokes as lists of points in logical coordinates (0..280), whatever its size on screen: it
grows with the window (the drawing square is the largest that fits, centred, never under 280 px) and maps
pointer positions back to 0..280. So it repaints them at the screen's size and device pixel ratio (crisp on
HiDPI) and renders them again at exactly 280x280 for classification (:meth:`DrawingCanvas.to_array`), the same
way ``core.strokes`` renders the drawn-digits set: black antialiased polylines with round caps and joins on
white. The model input does not depend on the canvas's size on screen.

Default pen width
-----------------
MNIST's median stroke is about 14% of the digit's height: for a digit drawn at a typical size, about 60% of the
canvas height (168 px), that is 0.14 * 168 ~ 23 px. The drawn-digits evaluation protocol scales each digit's
longer side to 60% of the canvas and draws it with an 18 px pen. :data:`DEFAULT_PEN_WIDTH` gives the value
chosen and the measurement behind it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QLineF, QPointF, QRect, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

CANVAS_SIZE = 280
"""Side of the square canvas in logical pixels (ten times MNIST's 28)."""

DEFAULT_PEN_WIDTH = 22.0
"""Default pen width in logical pixels: MNIST's stroke thickness for a digit drawn 60% of the canvas high.

Measured on 200 digits of the drawn-digits development set replayed on this canvas at 60% of its height and
put through ``core.preprocess.to_mnist``, the mean ink per 28x28 image (sum of pixel values) is 87.5 at 18 px
(the evaluation protocol's pen), 95.0 at 20 px and 105.0 at 23 px (the 14% rule); MNIST's training set has
102.4 (median 99.9), matched at 21-22 px. Recognition is not sensitive to it: two MLPs with 97.7% on MNIST
scored within half a point of each other on 700 such digits at every width from 16 to 26 px. So the default
is chosen for looks, the width that makes a drawing look like MNIST after preprocessing: 22 px.
``tests/gui/test_canvas.py::test_default_pen_matches_mnist_ink`` keeps it there.
"""

MIN_PEN_WIDTH = 4.0
MAX_PEN_WIDTH = 48.0


def make_pen(width: float, color: QColor | Qt.GlobalColor = Qt.GlobalColor.black) -> QPen:
    """A solid pen with round caps and joins, as used for every stroke."""
    pen = QPen(QColor(color), float(width))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def paint_stroke(painter: QPainter, points: list[QPointF]) -> None:
    """Draw one stroke with the painter's pen: a round dot at its first point, then one segment per move.

    Segment by segment, exactly as the canvas paints while the pen moves (see :meth:`DrawingCanvas._pen_move`),
    so redrawing a stroke later gives the same pixels. With round caps the union of the segments is the
    polyline with round joins that ``core.strokes`` renders.
    """
    painter.drawPoint(points[0])
    for a, b in zip(points[:-1], points[1:]):
        painter.drawLine(QLineF(a, b))


class DrawingCanvas(QWidget):
    """A square canvas for drawing digits with a mouse, a pen tablet or a finger.

    Signals
    -------
    changed()
        Emitted whenever the drawing changes (every new point, undo, clear, loaded image). Bursts are expected:
        listeners should coalesce them.
    stroke_finished()
        Emitted when the pen is lifted.
    """

    changed = Signal()
    stroke_finished = Signal()

    def __init__(self, parent: QWidget | None = None, pen_width: float = DEFAULT_PEN_WIDTH):
        super().__init__(parent)
        self.setMinimumSize(CANVAS_SIZE, CANVAS_SIZE)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setAttribute(Qt.WidgetAttribute.WA_AcceptTouchEvents)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("Draw a digit. Ctrl+Z undoes the last stroke, Esc or Delete clears.")
        self._pen_width = float(pen_width)
        # Finished strokes: (pen width, points). The width is kept per stroke so changing the pen
        # does not restyle what is already drawn.
        self._strokes: list[tuple[float, list[QPointF]]] = []
        self._current: list[QPointF] | None = None
        self._background: QImage | None = None
        # The drawing twice, kept up to date segment by segment (each pen event costs one short line):
        # at 280x280 in grey for classification, and at the canvas's size and pixel ratio for display.
        self._grey: QImage | None = None
        self._screen: QImage | None = None

    # ----------------------------------------------------------------------------------------------- state
    @property
    def pen_width(self) -> float:
        """Width of new strokes in logical pixels."""
        return self._pen_width

    def set_pen_width(self, width: float) -> None:
        """Set the width of the strokes drawn from now on (clamped to a sensible range)."""
        self._pen_width = float(min(max(width, MIN_PEN_WIDTH), MAX_PEN_WIDTH))

    def is_empty(self) -> bool:
        """True when there is neither a stroke nor a loaded image."""
        return not self._strokes and self._current is None and self._background is None

    def stroke_count(self) -> int:
        """Number of strokes, including one being drawn."""
        return len(self._strokes) + (self._current is not None)

    def strokes(self) -> list[np.ndarray]:
        """The strokes as float32 ``(n, 2)`` arrays of logical (x, y) points, y down."""
        out = [np.array([(p.x(), p.y()) for p in pts], dtype=np.float32) for _, pts in self._strokes]
        if self._current is not None:
            out.append(np.array([(p.x(), p.y()) for p in self._current], dtype=np.float32))
        return out

    def undo(self) -> bool:
        """Remove the last stroke (or, with none left, a loaded image). Returns False if nothing was removed."""
        if self._current is not None:
            self._current = None
        elif self._strokes:
            self._strokes.pop()
        elif self._background is not None:
            self._background = None
        else:
            return False
        self._invalidate()
        return True

    def clear(self) -> None:
        """Remove every stroke and any loaded image."""
        if self.is_empty():
            return
        self._strokes.clear()
        self._current = None
        self._background = None
        self._invalidate()

    def set_image(self, image: QImage) -> None:
        """Replace the drawing by ``image`` (dark ink on a light background), scaled to fit and centred.

        Strokes drawn afterwards go on top of it; :meth:`undo` removes them first, then the image.
        """
        scaled = image.scaled(
            CANVAS_SIZE,
            CANVAS_SIZE,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        background = QImage(CANVAS_SIZE, CANVAS_SIZE, QImage.Format.Format_RGB32)
        background.fill(Qt.GlobalColor.white)
        painter = QPainter(background)
        painter.drawImage(
            QPointF((CANVAS_SIZE - scaled.width()) / 2, (CANVAS_SIZE - scaled.height()) / 2), scaled
        )
        painter.end()
        self._strokes.clear()
        self._current = None
        self._background = background
        self._invalidate()

    # ----------------------------------------------------------------------------------------- rendering
    def render_image(self, scale: float = 1.0, grey: bool = False) -> QImage:
        """The drawing on white, ``280 * scale`` pixels a side (device pixel ratio ``scale``).

        ``grey=True`` paints straight into an 8-bit grey image (the same pixels, about 3x faster than RGB32).
        """
        side = round(CANVAS_SIZE * scale)
        fmt = QImage.Format.Format_Grayscale8 if grey else QImage.Format.Format_RGB32
        image = QImage(side, side, fmt)
        image.setDevicePixelRatio(scale)
        image.fill(Qt.GlobalColor.white)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self._background is not None:
            painter.drawImage(QRectF(0, 0, CANVAS_SIZE, CANVAS_SIZE), self._background)
        for width, points in self._strokes:
            painter.setPen(make_pen(width))
            paint_stroke(painter, points)
        if self._current is not None:
            painter.setPen(make_pen(self._pen_width))
            paint_stroke(painter, self._current)
        painter.end()
        return image

    def to_array(self) -> np.ndarray:
        """The drawing as a ``(280, 280)`` uint8 array, dark ink (0) on white (255), at logical resolution."""
        image = self._ensure_images()[0]
        rows = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
        return rows.reshape(CANVAS_SIZE, image.bytesPerLine())[:, :CANVAS_SIZE].copy()

    def save_png(self, path) -> None:
        """Save the drawing (at logical 280x280) as a PNG file, written atomically."""
        from core.fileio import atomic_path

        image = self.render_image(1.0)
        with atomic_path(path) as tmp:
            # PySide6's stubs want bytes for the format; at run time (6.11) only str is accepted.
            if not image.save(str(tmp), "PNG"):  # type: ignore[call-overload]
                raise OSError(f"could not write a PNG to {path}: check that the folder is writable")

    def _dpr(self) -> float:
        return max(1.0, self.devicePixelRatioF())

    def view_scale(self) -> float:
        """Widget pixels per canvas unit: the drawing square's side on screen / 280."""
        return max(1.0, min(self.width(), self.height()) / CANVAS_SIZE)

    def _view_offset(self) -> QPointF:
        side = CANVAS_SIZE * self.view_scale()
        return QPointF((self.width() - side) / 2, (self.height() - side) / 2)

    def map_to_widget(self, point: QPointF) -> QPointF:
        """A point in canvas units (0..280) in widget coordinates."""
        return QPointF(point) * self.view_scale() + self._view_offset()

    def map_from_widget(self, pos: QPointF) -> QPointF:
        """A widget position (a mouse, tablet or touch event's) in canvas units (0..280)."""
        return (QPointF(pos) - self._view_offset()) / self.view_scale()

    def drawing_rect(self) -> QRectF:
        """Where the drawing square is in the widget."""
        side = CANVAS_SIZE * self.view_scale()
        return QRectF(self._view_offset(), QSizeF(side, side))

    def resizeEvent(self, event) -> None:  # noqa: D102, N802
        self._screen = None  # rendered again at the new size on the next paint
        super().resizeEvent(event)

    def _invalidate(self) -> None:
        """Repaint everything after a change that is not the pen moving on (undo, clear, image)."""
        self._grey = None
        self._screen = None
        self.update()
        self.changed.emit()

    def _ensure_images(self) -> tuple[QImage, QImage]:
        if self._grey is None:
            self._grey = self.render_image(1.0, grey=True)
        scale = self._dpr() * self.view_scale()
        if self._screen is None or self._screen.devicePixelRatio() != scale:
            self._screen = self.render_image(scale)
        return self._grey, self._screen

    def _paint_on_images(self, draw) -> None:
        """Apply ``draw(painter)`` with the current pen to both cached images."""
        for image in self._ensure_images():
            painter = QPainter(image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(make_pen(self._pen_width))
            draw(painter)
            painter.end()

    def _dirty_rect(self, a: QPointF, b: QPointF) -> QRect:
        margin = self._pen_width / 2 + 2
        rect = QRectF(self.map_to_widget(a), self.map_to_widget(b)).normalized()
        margin *= self.view_scale()
        return rect.adjusted(-margin, -margin, margin, margin).toAlignedRect()

    def paintEvent(self, event) -> None:  # noqa: D102, N802
        screen = self._ensure_images()[1]
        square = self.drawing_rect()
        painter = QPainter(self)
        if square.size().toSize() != self.size():
            painter.fillRect(self.rect(), self.palette().window())
        painter.drawImage(square, screen)
        painter.setPen(QPen(QColor(200, 200, 200), 1))
        painter.drawRect(square.adjusted(0.5, 0.5, -0.5, -0.5))
        painter.end()

    def sizeHint(self) -> QSize:  # noqa: D102, N802
        return QSize(CANVAS_SIZE, CANVAS_SIZE)

    # ------------------------------------------------------------------------------------------- input
    def _pen_down(self, pos: QPointF) -> None:
        if self._current is not None:  # a lost release: keep what was drawn
            self._pen_up()
        pos = QPointF(pos)
        self._current = [pos]
        self._paint_on_images(lambda painter: painter.drawPoint(pos))
        self.update(self._dirty_rect(pos, pos))
        self.changed.emit()

    def _pen_move(self, pos: QPointF) -> None:
        if self._current is None:
            return
        last = self._current[-1]
        if abs(last.x() - pos.x()) < 0.25 and abs(last.y() - pos.y()) < 0.25:
            return
        # Every event is joined to the previous one by a straight segment, so fast moves stay continuous.
        pos = QPointF(pos)
        self._current.append(pos)
        self._paint_on_images(lambda painter: painter.drawLine(QLineF(last, pos)))
        self.update(self._dirty_rect(last, pos))
        self.changed.emit()

    def _pen_up(self) -> None:
        if self._current is None:
            return
        self._strokes.append((self._pen_width, self._current))
        self._current = None
        self.stroke_finished.emit()

    def mousePressEvent(self, event) -> None:  # noqa: D102, N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._pen_down(self.map_from_widget(event.position()))
            event.accept()
        else:
            super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: D102, N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._pen_move(self.map_from_widget(event.position()))
            event.accept()
        else:
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: D102, N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._pen_move(self.map_from_widget(event.position()))
            self._pen_up()
            event.accept()
        else:
            super().mouseReleaseEvent(event)

    def tabletEvent(self, event) -> None:  # noqa: D102, N802
        # Tablets give sub-pixel positions at a high rate; accepting stops Qt from also synthesising mouse events.
        kind = event.type()
        pos = self.map_from_widget(event.position())
        if kind == QEvent.Type.TabletPress:
            self._pen_down(pos)
        elif kind == QEvent.Type.TabletMove:
            self._pen_move(pos)
        elif kind == QEvent.Type.TabletRelease:
            self._pen_move(pos)
            self._pen_up()
        event.accept()

    def event(self, event) -> bool:  # noqa: D102
        kind = event.type()
        if kind in (
            QEvent.Type.TouchBegin,
            QEvent.Type.TouchUpdate,
            QEvent.Type.TouchEnd,
            QEvent.Type.TouchCancel,
        ):
            points = event.points()
            if kind == QEvent.Type.TouchCancel:
                self._current = None
                self._invalidate()
            elif points:
                pos = self.map_from_widget(points[0].position())
                if kind == QEvent.Type.TouchBegin:
                    self._pen_down(pos)
                elif kind == QEvent.Type.TouchUpdate:
                    self._pen_move(pos)
                else:
                    self._pen_move(pos)
                    self._pen_up()
            event.accept()
            return True
        return super().event(event)
