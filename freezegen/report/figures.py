"""matplotlib figures made and saved the one way freezegen does it: optional, headless, and
byte-for-byte repeatable.

matplotlib is optional (``pip install 'freezegen[plot]'``) and imported only here, only when a
figure is asked for. Figures are drawn on the Agg canvas (no display, no pyplot state) and
saved to bytes; an SVG carries no date and a fixed hash salt, so the same data gives the same
file and a golden test can pin it.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FORMATS", "PlotError", "figure_bytes", "new_figure"]

FORMATS = ("svg", "png")
_HASH_SALT = "freezegen"


class PlotError(Exception):
    """A figure that cannot be made: matplotlib missing, or a file type it does not write."""


def new_figure(what: str, **kwargs: object) -> Figure:
    """A new matplotlib Figure on the Agg canvas; ``kwargs`` go to Figure (figsize, dpi...).

    Raises PlotError naming the extra to install when matplotlib is missing; ``what`` names
    the option or command that needs it (``--plot``, ``freezegen report``).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(
            f"{what} needs matplotlib: pip install 'freezegen[plot]' (or pip install matplotlib)"
        ) from None
    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


def figure_bytes(figure: Figure, fmt: str) -> bytes:
    """``figure`` saved as ``fmt`` (one of FORMATS); the same figure gives the same bytes.

    Raises PlotError for another format.
    """
    if fmt not in FORMATS:
        raise PlotError(f"figures are written as {' or '.join(FORMATS)}, not {fmt!r}")
    from matplotlib import rc_context

    buf = io.BytesIO()
    with rc_context({"svg.hashsalt": _HASH_SALT}):
        figure.savefig(buf, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()
