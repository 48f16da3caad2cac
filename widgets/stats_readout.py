"""A large-font readout of the distribution's statistics, next to the chart.

Entropy (nats and bits), perplexity, max probability, margin (top-1 − top-2),
the argmax class, the sum of the probabilities and the class count, all read
from ``session.analysis.result.stats`` (the readout computes nothing except
adding up the probabilities it shows as a check).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from softmax_lab.app.session import Session
from softmax_lab.widgets import style

_NONE = "—"

# (objectName, caption, tooltip)
_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("entropyLabel", "entropy H", "H = −Σ p log p: 0 for a one-hot, log N for uniform."),
    ("perplexityLabel", "perplexity", "exp(H): how many equally likely classes this is worth."),
    ("maxProbabilityLabel", "max p", "The largest probability (the model's confidence)."),
    ("marginLabel", "margin", "Top-1 minus top-2 probability: how clear the winner is."),
    ("argmaxLabel", "argmax", "The most probable class."),
    ("sumLabel", "Σ p", "The probabilities add up to 1 (up to rounding in the dtype)."),
    ("classCountLabel", "classes", "Number of classes N."),
)
_COLUMNS = 4  # two rows above the chart: fits a 1280-pixel projector


class StatsReadout(QWidget):
    """Entropy, perplexity, max p, margin, argmax, Σ p and N of row 0 of the analysis.

    Parameters
    ----------
    session
        The session whose ``analysis`` (and ``class_names``) it shows.
    parent
        Qt parent.
    """

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statsReadout")
        self.session = session
        self.labels: dict[str, QLabel] = {}

        value_font = QFont()
        value_font.setPointSize(16)
        value_font.setBold(True)
        caption_font = QFont()
        caption_font.setPointSize(10)

        grid = QGridLayout()
        grid.setHorizontalSpacing(24)
        grid.setVerticalSpacing(6)
        for i, (name, caption, tip) in enumerate(_FIELDS):
            cell = QVBoxLayout()
            cell.setSpacing(0)
            title = QLabel(caption, self)
            title.setFont(caption_font)
            title.setStyleSheet("color: #555555;")
            value = QLabel(_NONE, self)
            value.setObjectName(name)
            value.setFont(value_font)
            value.setToolTip(tip)
            title.setToolTip(tip)
            cell.addWidget(title)
            cell.addWidget(value)
            grid.addLayout(cell, i // _COLUMNS, i % _COLUMNS)
            self.labels[name] = value
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(grid)
        layout.addStretch(1)

        session.events["analysis"].connect(self.set_analysis)
        session.events["class_names"].connect(lambda _names: self.set_analysis(session.analysis))
        self.set_analysis(session.analysis)

    def set_analysis(self, analysis: Any) -> None:
        """Show the statistics of ``analysis`` (a VectorAnalysis, or None for "—")."""
        if analysis is None:
            for label in self.labels.values():
                self._show(label, _NONE, ok=True)
            return
        result = analysis.result
        stats = result.stats
        fmt = style.format_number
        nats = float(stats.entropy_nats[0])
        bits = float(stats.entropy_bits[0])
        self._show(
            self.labels["entropyLabel"], f"{fmt(nats)} nats ({fmt(bits)} bits)", math.isfinite(nats)
        )
        perplexity = float(stats.perplexity[0])
        self._show(self.labels["perplexityLabel"], fmt(perplexity), math.isfinite(perplexity))
        top = float(stats.max_probability[0])
        self._show(self.labels["maxProbabilityLabel"], fmt(top), math.isfinite(top))
        margin = float(stats.margin[0])
        self._show(self.labels["marginLabel"], fmt(margin), math.isfinite(margin))

        index = int(stats.argmax[0])
        names = self.session.class_names
        if index < 0:
            self._show(self.labels["argmaxLabel"], "none (NaN)", ok=False)
        else:
            name = names[index] if index < len(names) else f"class {index}"
            self._show(self.labels["argmaxLabel"], name, ok=True)
            self.labels["argmaxLabel"].setToolTip(f"The most probable class: index {index}.")

        with np.errstate(all="ignore"):
            total = float(np.sum(result.probabilities[0], dtype=np.float64))
        self._show(self.labels["sumLabel"], fmt(total), math.isfinite(total))
        self._show(self.labels["classCountLabel"], f"{result.num_classes:,}", ok=True)

    @staticmethod
    def _show(label: QLabel, text: str, ok: bool) -> None:
        label.setText(text)
        # Restyling re-polishes the widget: only when the colour really changes.
        if label.property("bad") != (not ok):
            label.setProperty("bad", not ok)
            label.setStyleSheet(f"color: {style.TEXT if ok else style.BAD};")
