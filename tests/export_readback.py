"""Reading exported charts back, independently of the code that wrote them.

PNG: size and DPI straight from the file's IHDR and pHYs chunks (struct, no Qt);
pixels through QImage. SVG: parsed as XML (ElementTree), then rendered by
QSvgRenderer into a QImage. PDF: the header and the number of page objects.
Bars: found by their colour in the image and measured in pixels.
"""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
METRES_PER_INCH = 0.0254
DPI_TOLERANCE = 0.013
"""pHYs stores whole dots per metre: a DPI reads back to within 0.5 * 0.0254."""
SVG_NS = "{http://www.w3.org/2000/svg}"

BAR = (0x00, 0x72, 0xB2)  # widgets/style.py BAR, written out: the test must not trust the code
ARGMAX = (0xE6, 0x9F, 0x00)
GRADIENT_POS = (0xD5, 0x5E, 0x00)
VIRIDIS_LOW = (0x44, 0x01, 0x54)  # viridis at 0 and 1
VIRIDIS_HIGH = (0xFD, 0xE7, 0x25)


# -- PNG ---------------------------------------------------------------------------


def png_chunks(data: bytes) -> dict[bytes, bytes]:
    """The chunks of a PNG file (type -> payload; CRCs checked)."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG file"
    chunks: dict[bytes, bytes] = {}
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + payload) == crc, f"bad CRC in chunk {kind!r}"
        chunks.setdefault(kind, payload)
        pos += 12 + length
    return chunks


def png_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png_chunks(data)[b"IHDR"][:8])
    return width, height


def png_dpi(data: bytes) -> tuple[float, float]:
    """Dots per inch from the pHYs chunk (which stores dots per metre)."""
    chunks = png_chunks(data)
    assert b"pHYs" in chunks, "the PNG records no physical size"
    x, y, unit = struct.unpack(">IIB", chunks[b"pHYs"])
    assert unit == 1, "pHYs unit is not the metre"
    return x * METRES_PER_INCH, y * METRES_PER_INCH


# -- pixels --------------------------------------------------------------------------


def qimage_rgb(image) -> np.ndarray:
    """(H, W, 3) uint8 RGB copy of a QImage."""
    from PySide6.QtGui import QImage

    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * h)
    return buffer.reshape(h, stride)[:, : 3 * w].reshape(h, w, 3).copy()


def png_pixels(data: bytes) -> np.ndarray:
    from PySide6.QtGui import QImage

    image = QImage()
    assert image.loadFromData(data, "PNG"), "Qt cannot decode the PNG"
    return qimage_rgb(image)


def colour_mask(rgb: np.ndarray, colour: tuple[int, int, int], tolerance: int = 12) -> np.ndarray:
    diff = rgb.astype(np.int16) - np.array(colour, dtype=np.int16)
    np.abs(diff, out=diff)
    return (diff <= tolerance).all(axis=2)


def _segment(column: np.ndarray, start: int, step: int, gap: int) -> int:
    """From ``start``, in direction ``step``, the last pixel of the colour before a gap wider than ``gap``."""
    rows = np.flatnonzero(column)
    if step < 0:
        rows = rows[rows <= start][::-1]
        jumps = -np.diff(rows)
    else:
        rows = rows[rows >= start]
        jumps = np.diff(rows)
    breaks = np.flatnonzero(jumps > gap + 1)
    return int(rows[breaks[0]] if breaks.size else rows[-1])


def bars(mask: np.ndarray, anchor: str = "bottom", min_width: int = 4, gap: int = 4):
    """Vertical bars of one colour: (left, right, top, bottom) per bar, left to right.

    Each column's segment is the run of the colour that starts at the column's
    lowest (``anchor="bottom"``) or highest (``"top"``) pixel of that colour,
    bridging gaps of up to ``gap`` px (a dashed line drawn across a bar). Only
    segments that end on the common baseline (the lowest bottom, or the highest
    top, within 3 px) count: legend swatches float above the axis. Adjacent
    columns form a bar; its top and bottom are the medians over its columns.
    """
    height, width = mask.shape
    tops = np.full(width, -1)
    bottoms = np.full(width, -1)
    for col in np.flatnonzero(mask.any(axis=0)):
        rows = np.flatnonzero(mask[:, col])
        if anchor == "bottom":
            bottoms[col] = rows.max()
            tops[col] = _segment(mask[:, col], int(rows.max()), -1, gap)
        else:
            tops[col] = rows.min()
            bottoms[col] = _segment(mask[:, col], int(rows.min()), 1, gap)
    present = bottoms >= 0
    if not present.any():
        return []
    if anchor == "bottom":
        base = bottoms[present].max()
        on_base = present & (np.abs(bottoms - base) <= 3)
    else:
        base = tops[present].min()
        on_base = present & (np.abs(tops - base) <= 3)
    # A tick mark at the foot of a bar interrupts it for a column or two: bridge that.
    found = []
    x = 0
    while x < width:
        if not on_base[x]:
            x += 1
            continue
        start = end = x
        while x < width and (on_base[x] or on_base[x : x + 4].any()):
            if on_base[x]:
                end = x
            x += 1
        columns = np.flatnonzero(on_base[start : end + 1]) + start
        if end - start + 1 >= min_width:
            found.append(
                (
                    start,
                    end,
                    int(np.median(tops[columns])),
                    int(np.median(bottoms[columns])),
                )
            )
    return found


def background(rgb: np.ndarray) -> tuple[int, int, int]:
    """The most common colour of the image's border (its background)."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    colours, counts = np.unique(border, axis=0, return_counts=True)
    return tuple(int(v) for v in colours[counts.argmax()])


# -- SVG -------------------------------------------------------------------------------


def svg_root(data: bytes) -> ET.Element:
    root = ET.fromstring(data)
    assert root.tag == f"{SVG_NS}svg", root.tag
    return root


def svg_texts(data: bytes) -> list[str]:
    """Every text the SVG draws, in document order."""
    return [(t.text or "").strip() for t in svg_root(data).iter(f"{SVG_NS}text")]


def svg_physical_inches(data: bytes) -> tuple[float, float]:
    root = svg_root(data)
    sizes = []
    for name in ("width", "height"):
        value = root.get(name, "")
        assert value.endswith("mm"), f"SVG {name} {value!r} is not in mm"
        sizes.append(float(value[:-2]) / 25.4)
    return sizes[0], sizes[1]


def render_svg(data: bytes, width: int, height: int) -> np.ndarray:
    """The SVG drawn by QSvgRenderer into a white ``width`` x ``height`` image (RGB)."""
    from PySide6.QtCore import QByteArray, QRectF
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(data))
    assert renderer.isValid(), "QSvgRenderer rejects the SVG"
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    renderer.render(painter, QRectF(0, 0, width, height))
    painter.end()
    return qimage_rgb(image)


# -- PDF -------------------------------------------------------------------------------


_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def pdf_page_count(data: bytes) -> int:
    """Page objects (``/Type /Page``, not ``/Pages``) in an uncompressed-xref PDF."""
    return len(_PAGE.findall(data))


def pdf_media_box_inches(data: bytes) -> tuple[float, float]:
    match = re.search(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", data)
    assert match, "no /MediaBox"
    x0, y0, x1, y1 = (float(v) for v in match.groups())
    return (x1 - x0) / 72.0, (y1 - y0) / 72.0


def check_pdf(data: bytes) -> None:
    assert data.startswith(b"%PDF-"), data[:16]
    assert data.rstrip().endswith(b"%%EOF")
    assert pdf_page_count(data) == 1


def check_file(path: Path, fmt: str, size: tuple[int, int] | None, dpi: float) -> None:
    """The format-level checks every exported file must pass."""
    data = path.read_bytes()
    if fmt == "png":
        if size is not None:
            assert png_size(data) == size
        dpi_x, dpi_y = png_dpi(data)
        # pHYs holds whole dots per metre: half a dot per metre is 0.0127 DPI.
        assert abs(dpi_x - dpi) < DPI_TOLERANCE and abs(dpi_y - dpi) < DPI_TOLERANCE
    elif fmt == "svg":
        svg_root(data)
        w, h = render_svg(data, 64, 40).shape[1::-1]
        assert (w, h) == (64, 40)
        if size is not None:
            inches = svg_physical_inches(data)
            assert abs(inches[0] - size[0] / dpi) < 0.02 and abs(inches[1] - size[1] / dpi) < 0.02
    else:
        check_pdf(data)
        if size is not None:
            inches = pdf_media_box_inches(data)
            assert abs(inches[0] - size[0] / dpi) < 0.02 and abs(inches[1] - size[1] / dpi) < 0.02
