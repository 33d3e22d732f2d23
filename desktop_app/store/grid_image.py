"""A comparison grid drawn as Automatic1111 draws its X/Y/Z plot: the cells in rows
and columns, the X values as column titles, the Y values as row titles, one block per
Z value under its title. A cell that failed is a grey tile saying why.
"""

from __future__ import annotations

import dataclasses
import io
import textwrap

from PIL import Image, ImageDraw, ImageFont

from desktop_app.domain.grid import GridAxis

MAX_CELL_SIDE = 1024  # cells are shown at most this large, so a grid stays a sane size
BACKGROUND = (255, 255, 255)
FAILED = (200, 200, 200)
INK = (0, 0, 0)


@dataclasses.dataclass(frozen=True)
class DrawnCell:
    coords: tuple[int, ...]
    image: bytes | None  # encoded; None when the cell's job failed
    note: str = ""  # why it failed
    caption: str = ""  # under a made image: who made it, how long it took, what it cost


def draw_grid(axes: list[GridAxis], cells: list[DrawnCell]) -> bytes:
    """The grid as PNG bytes."""
    sizes = [Image.open(io.BytesIO(c.image)).size for c in cells if c.image is not None]
    width, height = sizes[0] if sizes else (256, 256)
    scale = min(1.0, MAX_CELL_SIDE / max(width, height))
    cell_w, cell_h = max(1, round(width * scale)), max(1, round(height * scale))
    font = ImageFont.load_default(size=max(12, cell_h // 16))
    label_h = int(font.size * 3) if isinstance(font, ImageFont.FreeTypeFont) else 36
    small = ImageFont.load_default(size=max(10, cell_h // 20))
    x_axis = axes[0]
    y_axis = axes[1] if len(axes) > 1 else None
    z_axis = axes[2] if len(axes) > 2 else None
    columns = len(x_axis.values)
    rows = len(y_axis.values) if y_axis else 1
    blocks = len(z_axis.values) if z_axis else 1
    left = cell_w // 2 if y_axis else 0
    block_w = left + columns * cell_w
    block_h = label_h + rows * cell_h + (label_h if z_axis else 0)
    canvas = Image.new("RGB", (block_w, block_h * blocks), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    by_coords = {c.coords: c for c in cells}
    for z in range(blocks):
        top = z * block_h
        if z_axis:
            _text(draw, (0, top, block_w, top + label_h), f"{z_axis.title}: {z_axis.values[z]}",
                  font)
            top += label_h
        for x, value in enumerate(x_axis.values):
            _text(draw, (left + x * cell_w, top, left + (x + 1) * cell_w, top + label_h),
                  f"{x_axis.title}: {value}", font)
        for y in range(rows):
            row_top = top + label_h + y * cell_h
            if y_axis:
                _text(draw, (0, row_top, left, row_top + cell_h),
                      f"{y_axis.title}: {y_axis.values[y]}", font)
            for x in range(columns):
                coords = tuple([x, y, z][:len(axes)])
                box = (left + x * cell_w, row_top)
                cell = by_coords.get(coords)
                if cell is not None and cell.image is not None:
                    with Image.open(io.BytesIO(cell.image)) as image:
                        canvas.paste(image.convert("RGB").resize((cell_w, cell_h)), box)
                    if cell.caption:
                        strip = (box[0], box[1] + cell_h - label_h // 2, box[0] + cell_w,
                                 box[1] + cell_h)
                        draw.rectangle(strip, BACKGROUND)
                        _text(draw, strip, cell.caption, small)
                else:
                    draw.rectangle((*box, box[0] + cell_w - 1, box[1] + cell_h - 1), FAILED)
                    note = cell.note if cell is not None else "not made"
                    _text(draw, (*box, box[0] + cell_w, box[1] + cell_h),
                          f"failed: {note}", font)
    out = io.BytesIO()
    canvas.save(out, "PNG")
    return out.getvalue()


def _text(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], text: str,
          font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> None:
    """``text`` wrapped and centred in ``box``."""
    left, top, right, bottom = box
    chars = max(4, int((right - left) / max(1.0, draw.textlength("n", font=font))))
    lines = textwrap.wrap(text, chars)[:4] or [""]
    wrapped = "\n".join(lines)
    _, _, w, h = draw.multiline_textbbox((0, 0), wrapped, font=font, align="center")
    draw.multiline_text((left + (right - left - w) / 2, top + (bottom - top - h) / 2),
                        wrapped, fill=INK, font=font, align="center")
