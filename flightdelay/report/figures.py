"""What every chart of the run report is: a matplotlib figure inlined as SVG, with its title and caption."""

from __future__ import annotations

import io
from dataclasses import dataclass

MODEL_COLOR = "#1f77b4"
BASELINE_COLOR = "#ff7f0e"


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    caption: str
    svg: str


def svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prologue: the SVG is inlined in HTML
