"""What a plugin adds to the HTML report: a figure it drew, stored with its row.

A metric returns figures in `MetricValues.figures`, a method in `Diagnostics.figures`; the
runner checks them, keeps each as `figures/NAME.png` in the row's folder, and the report shows
them under the row's zoo with their captions.
"""

import io
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str        # a name (letters, digits, '.', '_', '-'): its file is figures/NAME.png
    caption: str     # what it shows and how to read it, a sentence or two
    png: bytes       # the image, PNG

    @classmethod
    def from_matplotlib(cls, name: str, caption: str, fig, dpi: int = 110) -> "Figure":
        """A matplotlib figure as PNG; the figure is closed."""
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight",
                    metadata={"Software": None})
        plt.close(fig)
        return cls(name, caption, buffer.getvalue())
