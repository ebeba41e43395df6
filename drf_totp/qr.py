from __future__ import annotations

import segno


def svg_data_uri(text: str) -> str:
    """A ``data:image/svg+xml`` URI of the QR code of ``text`` (error correction M, with border)."""
    return segno.make(text, error="m", micro=False).svg_data_uri(scale=4, border=4)
