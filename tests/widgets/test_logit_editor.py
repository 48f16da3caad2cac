"""LogitEditor driven through real Qt events: typing in cells, clicks, keys, the clipboard."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QAbstractItemView, QApplication, QLineEdit, QToolButton

from softmax_lab.app.controller import Controller
from softmax_lab.app.presets import PRESETS, preset
from softmax_lab.app.session import Session
from softmax_lab.widgets import style
from softmax_lab.widgets.logit_editor import LogitEditor, parse_pasted_table

NAME, LOGIT = 0, 1


def _colours(widget) -> int:
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert not image.isNull()
    pixels = np.frombuffer(image.constBits(), dtype=np.uint32, count=image.width() * image.height())
    return len(np.unique(pixels))


@pytest.fixture
def editor(qtbot, session: Session) -> LogitEditor:
    Controller(session).start()
    w = LogitEditor(session)
    qtbot.addWidget(w)
    w.resize(380, 420)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    w.view.setFocus()
    qtbot.waitUntil(w.view.hasFocus)
    return w


def _index(w: LogitEditor, row: int, column: int) -> QModelIndex:
    return w.model.index(row, column)


def _shown(w: LogitEditor, column: int = LOGIT) -> list[str]:
    """What the table displays in ``column``, row by row."""
    return [_index(w, r, column).data() for r in range(w.model.rowCount())]


def _open_editor(qtbot, w: LogitEditor, row: int, column: int) -> QLineEdit:
    w.view.setFocus()
    w.view.setCurrentIndex(_index(w, row, column))
    qtbot.keyClick(w.view, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit), editor
    return editor


def _type_in_cell(qtbot, w: LogitEditor, row: int, column: int, text: str) -> QLineEdit:
    editor = _open_editor(qtbot, w, row, column)
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    return editor


def _wait_editing_done(qtbot, w: LogitEditor) -> None:
    # Qt commits an Enter in a cell editor through a queued call.
    qtbot.waitUntil(lambda: w.view.state() != QAbstractItemView.State.EditingState)


def _click_row(qtbot, w: LogitEditor, row: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    rect = w.view.visualRect(_index(w, row, NAME))
    qtbot.mouseClick(w.view.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def _softmax64(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x))
    return e / e.sum()


# -- contract and rendering -------------------------------------------------------


def test_contract(editor: LogitEditor) -> None:
    hint = editor.minimumSizeHint()
    assert 150 < hint.width() < 1000 and 60 < hint.height() < 800
    assert _colours(editor) > 1
    assert editor.objectName() == "logitEditor"
    for name in ("addClassButton", "removeClassButton", "moveUpButton", "moveDownButton",
                 "pasteButton", "presetsButton"):
        button = editor.findChild(QToolButton, name)
        assert button is not None, name
        assert button.toolTip(), f"{name} has no tooltip"
    assert editor.error_label.objectName() == "logitEditorError"
    assert editor.error_label.isHidden()


def test_shows_the_session_vector(editor: LogitEditor) -> None:
    assert _shown(editor, NAME) == ["class 0", "class 1", "class 2"]
    assert _shown(editor) == ["2.0", "1.0", "0.1"]
    header = editor.model.headerData
    assert [header(r, Qt.Orientation.Vertical) for r in range(3)] == ["0", "1", "2"]


def test_follows_session_changes_from_elsewhere(editor, session) -> None:
    session.set_vector([5.0, -2.5], ("yes", "no"))  # e.g. a batch row loaded by the controller
    assert _shown(editor, NAME) == ["yes", "no"]
    assert _shown(editor) == ["5.0", "-2.5"]
    session.set_vector([1e-10, np.inf])  # same length: updated in place
    assert _shown(editor) == ["1e-10", "inf"]


# -- editing cells ----------------------------------------------------------------


def test_typing_a_logit_writes_the_session(qtbot, editor, session) -> None:
    _type_in_cell(qtbot, editor, 1, LOGIT, "5.5")
    _wait_editing_done(qtbot, editor)
    np.testing.assert_array_equal(session.logits, [2.0, 5.5, 0.1])
    assert _shown(editor) == ["2.0", "5.5", "0.1"]
    assert editor.error_label.isHidden()
    # The controller recomputed: the analysis matches the float64 formula.
    np.testing.assert_allclose(
        session.analysis.result.probabilities[0], _softmax64(np.array([2.0, 5.5, 0.1])), rtol=1e-6
    )


def test_a_logit_edit_keeps_the_names_and_a_name_edit_only_that_name(qtbot, editor, session) -> None:
    names = session.class_names
    _type_in_cell(qtbot, editor, 1, LOGIT, "-2")
    _wait_editing_done(qtbot, editor)
    assert session.logits[1] == -2.0
    assert session.class_names is names
    _type_in_cell(qtbot, editor, 2, NAME, "third")
    _wait_editing_done(qtbot, editor)
    assert session.class_names == (names[0], names[1], "third")


def test_typing_starts_editing_the_current_cell(qtbot, editor, session) -> None:
    editor.view.setCurrentIndex(_index(editor, 0, LOGIT))
    # No F2: the first key typed on the table opens the cell editor with that key in it.
    qtbot.keyClick(editor.view, Qt.Key.Key_Minus)
    cell_editor = QApplication.focusWidget()
    assert isinstance(cell_editor, QLineEdit) and cell_editor.text() == "-"
    qtbot.keyClicks(cell_editor, "3")
    qtbot.keyClick(cell_editor, Qt.Key.Key_Return)
    _wait_editing_done(qtbot, editor)
    assert session.logits[0] == -3.0


def test_underscore_number_is_refused_with_the_reason(qtbot, editor, session) -> None:
    before = session.logits.copy()
    cell_editor = _type_in_cell(qtbot, editor, 2, LOGIT, "1_000")
    label = editor.error_label
    assert label.isVisible()
    assert "row 2" in label.text() and "'1_000'" in label.text() and "not a number" in label.text()
    np.testing.assert_array_equal(session.logits, before)
    # The editor stays open with what was typed, so it can be fixed.
    assert editor.view.state() == QAbstractItemView.State.EditingState
    assert cell_editor.text() == "1_000"
    cell_editor.selectAll()
    qtbot.keyClicks(cell_editor, "1000")
    qtbot.keyClick(cell_editor, Qt.Key.Key_Return)
    _wait_editing_done(qtbot, editor)
    np.testing.assert_array_equal(session.logits, [2.0, 1.0, 1000.0])
    assert label.isHidden()


def test_escape_abandons_a_refused_edit(qtbot, editor, session) -> None:
    cell_editor = _type_in_cell(qtbot, editor, 0, LOGIT, "1,5")
    assert "'1,5'" in editor.error_label.text()
    qtbot.keyClick(cell_editor, Qt.Key.Key_Escape)
    _wait_editing_done(qtbot, editor)
    assert _shown(editor)[0] == "2.0"
    assert session.logits[0] == 2.0
    assert editor.error_label.isHidden()


def test_leaving_a_cell_with_bad_text_keeps_the_value_and_quotes_the_text(qtbot, editor, session) -> None:
    cell_editor = _open_editor(qtbot, editor, 0, LOGIT)
    qtbot.keyClicks(cell_editor, "abc")
    _click_row(qtbot, editor, 2)  # focus leaves the editor
    _wait_editing_done(qtbot, editor)
    assert _shown(editor)[0] == "2.0"
    assert session.logits[0] == 2.0
    assert editor.error_label.isVisible()
    assert "row 0" in editor.error_label.text() and "'abc'" in editor.error_label.text()


@pytest.mark.parametrize(("typed", "shown"), [("-inf", "-inf"), ("inf", "inf"), ("NaN", "nan"), ("-1e3", "-1000.0")])
def test_special_values_are_accepted(qtbot, editor, session, typed, shown) -> None:
    _type_in_cell(qtbot, editor, 0, LOGIT, typed)
    _wait_editing_done(qtbot, editor)
    assert _shown(editor)[0] == shown
    np.testing.assert_array_equal(session.logits[:1], [float(typed)])
    assert editor.error_label.isHidden()
    if shown != "-1000.0":
        colour = _index(editor, 0, LOGIT).data(Qt.ItemDataRole.ForegroundRole).color()
        assert colour == QColor(style.BAD)


def test_renaming_a_class_by_double_click(qtbot, editor, session) -> None:
    rect = editor.view.visualRect(_index(editor, 1, NAME))
    # A real double click: press/release, then the double-click event.
    qtbot.mouseClick(editor.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(editor.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    cell_editor = QApplication.focusWidget()
    assert isinstance(cell_editor, QLineEdit)
    cell_editor.selectAll()
    qtbot.keyClicks(cell_editor, "dog")
    qtbot.keyClick(cell_editor, Qt.Key.Key_Return)
    _wait_editing_done(qtbot, editor)
    assert session.class_names == ("class 0", "dog", "class 2")
    assert _shown(editor, NAME)[1] == "dog"


def test_an_empty_name_is_refused(qtbot, editor, session) -> None:
    cell_editor = _open_editor(qtbot, editor, 0, NAME)
    qtbot.keyClick(cell_editor, Qt.Key.Key_Delete)
    qtbot.keyClick(cell_editor, Qt.Key.Key_Return)
    assert "cannot be empty" in editor.error_label.text()
    assert session.class_names[0] == "class 0"
    qtbot.keyClick(cell_editor, Qt.Key.Key_Escape)


# -- add / remove / move --------------------------------------------------------------


def test_add_button_inserts_below_the_current_row(qtbot, editor, session) -> None:
    session.target = 2
    _click_row(qtbot, editor, 0)
    qtbot.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)
    assert _shown(editor) == ["2.0", "0.0", "1.0", "0.1"]
    assert _shown(editor, NAME) == ["class 0", "class 3", "class 1", "class 2"]
    np.testing.assert_array_equal(session.logits, [2.0, 0.0, 1.0, 0.1])
    assert session.target == 3  # the target stays on its class
    # The new logit cell is current: typing fills it in.
    assert editor.view.currentIndex() == _index(editor, 1, LOGIT)
    qtbot.keyClick(editor.view, Qt.Key.Key_4)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    _wait_editing_done(qtbot, editor)
    assert session.logits[1] == 4.0


def test_insert_key_adds_a_class(qtbot, editor, session) -> None:
    _click_row(qtbot, editor, 2)
    qtbot.keyClick(editor.view, Qt.Key.Key_Insert)
    assert session.num_classes == 4
    assert _shown(editor)[3] == "0.0"


def test_remove_button_removes_the_selected_rows(qtbot, editor, session) -> None:
    session.target = 2
    _click_row(qtbot, editor, 0)
    _click_row(qtbot, editor, 1, Qt.KeyboardModifier.ControlModifier)
    qtbot.mouseClick(editor.remove_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(session.logits, [0.1])
    assert session.class_names == ("class 2",)
    assert session.target == 0
    assert _shown(editor) == ["0.1"]


def test_delete_key_never_removes_the_last_class(qtbot, editor, session) -> None:
    editor.view.selectAll()
    assert not editor.remove_button.isEnabled()
    qtbot.keyClick(editor.view, Qt.Key.Key_Delete)
    assert session.num_classes == 3
    assert "at least one class" in editor.error_label.text()
    _click_row(qtbot, editor, 1)
    qtbot.keyClick(editor.view, Qt.Key.Key_Delete)
    np.testing.assert_array_equal(session.logits, [2.0, 0.1])
    qtbot.keyClick(editor.view, Qt.Key.Key_Delete)
    assert session.num_classes == 1
    assert not editor.remove_button.isEnabled()
    qtbot.keyClick(editor.view, Qt.Key.Key_Delete)
    assert session.num_classes == 1


def test_move_buttons_and_keys_reorder_and_the_target_follows(qtbot, editor, session) -> None:
    session.target = 2
    _click_row(qtbot, editor, 2)
    assert not editor.down_button.isEnabled()
    qtbot.mouseClick(editor.up_button, Qt.MouseButton.LeftButton)
    assert _shown(editor, NAME) == ["class 0", "class 2", "class 1"]
    np.testing.assert_array_equal(session.logits, [2.0, 0.1, 1.0])
    assert session.target == 1
    qtbot.keyClick(editor.view, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    assert _shown(editor, NAME) == ["class 2", "class 0", "class 1"]
    assert session.target == 0
    assert not editor.up_button.isEnabled()
    qtbot.keyClick(editor.view, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClick(editor.view, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    assert _shown(editor, NAME) == ["class 0", "class 1", "class 2"]
    np.testing.assert_array_equal(session.logits, [2.0, 1.0, 0.1])
    assert session.target == 2


def test_moving_a_non_contiguous_selection(qtbot, editor, session) -> None:
    session.set_vector([0.0, 1.0, 2.0, 3.0, 4.0])
    _click_row(qtbot, editor, 1)
    _click_row(qtbot, editor, 3, Qt.KeyboardModifier.ControlModifier)
    qtbot.mouseClick(editor.up_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(session.logits, [1.0, 0.0, 3.0, 2.0, 4.0])
    assert list(editor.selected_rows()) == [0, 2]


# -- clipboard ------------------------------------------------------------------------


def _paste(qtbot, w: LogitEditor, text: str) -> None:
    QApplication.clipboard().setText(text)
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)


def test_pasting_a_column_replaces_the_vector(qtbot, editor, session) -> None:
    _paste(qtbot, editor, "1\r\n2.5\r\n-inf\r\n4e2\r\n")  # as a spreadsheet copies it
    np.testing.assert_array_equal(session.logits, [1.0, 2.5, -np.inf, 400.0])
    assert _shown(editor) == ["1.0", "2.5", "-inf", "400.0"]
    assert _shown(editor, NAME) == ["class 0", "class 1", "class 2", "class 3"]


def test_pasting_two_columns_with_a_header(qtbot, editor, session) -> None:
    _paste(qtbot, editor, "name\tlogit\ncat\t3\ndog\t1.5\nbird\t-0.25\n")
    assert session.class_names == ("cat", "dog", "bird")
    np.testing.assert_array_equal(session.logits, [3.0, 1.5, -0.25])
    assert _shown(editor, NAME) == ["cat", "dog", "bird"]


def test_pasting_one_value_sets_the_current_cell(qtbot, editor, session) -> None:
    editor.view.setCurrentIndex(_index(editor, 1, LOGIT))
    _paste(qtbot, editor, "9.5\n")
    np.testing.assert_array_equal(session.logits, [2.0, 9.5, 0.1])
    editor.view.setCurrentIndex(_index(editor, 2, NAME))
    _paste(qtbot, editor, "bird")
    assert session.class_names == ("class 0", "class 1", "bird")


@pytest.mark.parametrize("column", [NAME, LOGIT])
def test_pasting_one_line_of_numbers(qtbot, editor, session, column) -> None:
    editor.view.setCurrentIndex(_index(editor, 1, column))
    _paste(qtbot, editor, "[2.0, 1.0, 0.1, -3]")
    np.testing.assert_array_equal(session.logits, [2.0, 1.0, 0.1, -3.0])
    assert session.class_names == ("class 0", "class 1", "class 2", "class 3")


def test_a_bad_paste_changes_nothing_and_says_where(qtbot, editor, session) -> None:
    _paste(qtbot, editor, "1\n1_000\n3\n")
    np.testing.assert_array_equal(session.logits, [2.0, 1.0, 0.1])
    text = editor.error_label.text()
    assert editor.error_label.isVisible()
    assert "line 2" in text and "'1_000'" in text


def test_paste_button_uses_the_clipboard(qtbot, editor, session) -> None:
    QApplication.clipboard().setText("4\n5\n")
    qtbot.mouseClick(editor.paste_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(session.logits, [4.0, 5.0])


def test_copy_then_paste_round_trips(qtbot, editor, session) -> None:
    session.set_vector([0.1 + 0.2, -np.inf, 1e-300], ("a b", "masked", "tiny"))
    editor.view.selectAll()
    qtbot.keyClick(editor.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    copied = QApplication.clipboard().text()
    assert copied.splitlines()[0] == f"a b\t{0.1 + 0.2!r}"
    session.set_vector([0.0], ("x",))
    qtbot.keyClick(editor.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(session.logits, [0.1 + 0.2, -np.inf, 1e-300])  # bit-exact
    assert session.class_names == ("a b", "masked", "tiny")


def test_parse_pasted_table_rules() -> None:
    values, names = parse_pasted_table("3\n\n4\n")
    np.testing.assert_array_equal(values, [3.0, 4.0])
    assert names is None
    with pytest.raises(ValueError, match="columns"):
        parse_pasted_table("a\t1\t2\nb\t3\t4\n")
    with pytest.raises(ValueError, match="name column"):
        parse_pasted_table("a\t1\n2\n")
    with pytest.raises(ValueError, match="no numbers"):
        parse_pasted_table("\n \n")
    with pytest.raises(ValueError, match="line 1"):
        parse_pasted_table("1_0\n2\n")  # not a header: no letters


# -- presets --------------------------------------------------------------------------


def _preset_action(w: LogitEditor, key: str):
    for action in w.presets_button.menu().actions():
        if action.data() == key:
            return action
    raise AssertionError(f"no menu entry for preset {key!r}")


def test_presets_menu_lists_every_preset(editor) -> None:
    actions = editor.presets_button.menu().actions()
    assert [a.data() for a in actions] == [p.key for p in PRESETS]
    assert all(a.toolTip() for a in actions)


def test_choosing_a_preset_replaces_the_vector(qtbot, editor, session) -> None:
    _preset_action(editor, "cifar10").trigger()
    logits, names = preset("cifar10").make()
    assert editor.model.rowCount() == 10
    assert _shown(editor, NAME) == list(names)
    assert _shown(editor) == [repr(float(v)) for v in logits]
    np.testing.assert_array_equal(session.logits, logits)


def test_vocabulary_preset_stays_editable(qtbot, editor, session) -> None:
    _preset_action(editor, "vocab50k").trigger()
    n = 50_257
    assert editor.model.rowCount() == n and session.num_classes == n
    last = _index(editor, n - 1, LOGIT)
    editor.view.scrollTo(last)
    expected = session.logits.copy()
    _type_in_cell(qtbot, editor, n - 1, LOGIT, "42")
    _wait_editing_done(qtbot, editor)
    expected[-1] = 42.0
    np.testing.assert_array_equal(session.logits, expected)
    assert last.data() == "42.0"
    assert _index(editor, n - 1, NAME).data() == f"token {n - 1}"


# -- highlights -----------------------------------------------------------------------


def _background(w: LogitEditor, row: int, column: int) -> QColor | None:
    brush = _index(w, row, column).data(Qt.ItemDataRole.BackgroundRole)
    return None if brush is None else brush.color()


def test_argmax_and_target_rows_are_tinted(qtbot, editor, session) -> None:
    session.target = 2
    assert int(np.argmax(session.logits)) == 0
    assert _background(editor, 0, LOGIT).rgb() == QColor(style.ARGMAX).rgb()
    assert _background(editor, 2, NAME).rgb() == QColor(style.TARGET).rgb()
    assert _background(editor, 1, LOGIT) is None
    _type_in_cell(qtbot, editor, 1, LOGIT, "10")
    _wait_editing_done(qtbot, editor)
    assert _background(editor, 1, LOGIT).rgb() == QColor(style.ARGMAX).rgb()
    assert _background(editor, 0, LOGIT) is None


def test_deleted_widget_stops_listening(qtbot) -> None:
    session = Session()
    w = LogitEditor(session)
    assert len(session.changed) == 1
    w.deleteLater()
    qtbot.waitUntil(lambda: len(session.changed) == 0)
    session.set_vector([1.0, 2.0])
