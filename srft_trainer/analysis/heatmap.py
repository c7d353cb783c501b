# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Token heatmaps (Fig. 2a of the paper): a response's tokens as text, each coloured by its probability change."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import matplotlib


matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize, to_hex  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402


CMAP = "RdBu_r"  # red: the token became more likely; blue: less likely
_FONT_SIZE = 9
_CHAR_IN = 0.6 * _FONT_SIZE / 72  # width of one monospace character, inches
_LINE_IN = 1.6 * _FONT_SIZE / 72


def display_token(token: str) -> tuple[str, bool]:
    """A token's visible form (newlines as `↵`, tabs as `→`) and whether it ends a line."""
    ends_line = token.endswith("\n")
    shown = token.replace("\n", "↵").replace("\t", "→").replace("\r", "")
    return (shown or "∅"), ends_line


def layout(tokens: Sequence[str], width: int) -> list[tuple[int, int, str]]:
    """Places tokens in a text flow `width` characters wide; returns `(line, column, shown text)` per token."""
    placed, line, col = [], 0, 0
    for token in tokens:
        shown, ends_line = display_token(token)
        if col > 0 and col + len(shown) > width:
            line, col = line + 1, 0
        placed.append((line, col, shown))
        col += len(shown)
        if ends_line:
            line, col = line + 1, 0
    return placed


def plot_token_heatmap(
    tokens: Sequence[str],
    deltas: Sequence[float],
    path: Path,
    title: str,
    vmax: float = 1.0,
    width: int = 90,
) -> None:
    """
    Draws the tokens as monospace text on cells coloured by their probability change.

    Args:
        tokens (`Sequence[str]`):
            The response's tokens, decoded one by one.
        deltas (`Sequence[float]`):
            `p_finetuned - p_base` per token.
        path (`Path`):
            The PNG to write.
        title (`str`):
            The figure's title.
        vmax (`float`, *optional*, defaults to `1.0`):
            Colour scale limit: changes of `±vmax` get the strongest colours.
        width (`int`, *optional*, defaults to `90`):
            Characters per line.
    """
    placed = layout(tokens, width)
    n_lines = (placed[-1][0] + 1) if placed else 1
    norm, cmap = Normalize(-vmax, vmax), plt.get_cmap(CMAP)
    # Fixed margins in inches: title above, a horizontal colour bar below the text.
    left, top, bottom = 0.3, 0.45, 0.75
    text_w, text_h = width * _CHAR_IN, n_lines * _LINE_IN
    fig_w, fig_h = text_w + 2 * left, text_h + top + bottom
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=110)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, text_w / fig_w, text_h / fig_h))
    ax.set_xlim(0, width)
    ax.set_ylim(n_lines, 0)
    ax.axis("off")
    for (line, col, shown), delta in zip(placed, deltas, strict=True):
        strength = abs(norm(delta) - 0.5) * 2
        ax.add_patch(Rectangle((col, line), len(shown), 1, facecolor=cmap(norm(delta)), edgecolor="none"))
        ax.text(
            col,
            line + 0.55,
            shown,
            family="monospace",
            fontsize=_FONT_SIZE,
            va="center",
            ha="left",
            color="white" if strength > 0.65 else "black",
        )
    cax = fig.add_axes((left / fig_w, 0.4 / fig_h, min(3.0, text_w) / fig_w, 0.1 / fig_h))
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, orientation="horizontal")
    cax.tick_params(labelsize=7)
    cax.set_xlabel("Δp = p_finetuned − p_base", fontsize=7, labelpad=1)
    fig.text(left / fig_w, 1 - 0.15 / fig_h, title, fontsize=10, ha="left", va="top")
    fig.savefig(path)
    plt.close(fig)


def write_html(
    path: Path,
    responses: Sequence[dict],
    labels: Sequence[str],
    vmax: float = 1.0,
) -> None:
    """
    Writes one HTML page with every response's tokens coloured by their change, per fine-tuned model; hovering a
    token shows its probabilities under each model.

    Args:
        path (`Path`):
            The HTML file to write.
        responses (`Sequence[dict]`):
            Rows with `index`, `tokens`, `p_base` and `p` (label -> probabilities), as in `tokens.jsonl`.
        labels (`Sequence[str]`):
            The fine-tuned models' labels.
        vmax (`float`, *optional*, defaults to `1.0`):
            Colour scale limit, as in the PNG heatmaps.
    """
    norm, cmap = Normalize(-vmax, vmax), plt.get_cmap(CMAP)
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Token probability change</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}"
        ".r{font-family:monospace;white-space:pre-wrap;line-height:1.6;border:1px solid #ccc;padding:.5em}"
        "span{border-radius:2px}</style>",
        f"<h1>Token probability change (fine-tuned − base)</h1><p>Red: more likely after fine-tuning; blue: less "
        f"likely; full colour at |Δp| = {vmax:g}. Hover a token for its probabilities.</p>",
    ]
    for label in labels:
        parts.append(f"<h2>{html.escape(label)}</h2>")
        for row in responses:
            p_base, p_ft = np.asarray(row["p_base"]), np.asarray(row["p"][label])
            deltas = p_ft - p_base
            parts.append(f"<h3>response {row['index']} (mean |Δp| {np.abs(deltas).mean():.3f})</h3><div class='r'>")
            for token, pb, pf, d in zip(row["tokens"], p_base, p_ft, deltas):
                shown, ends_line = display_token(token)
                tip = f"{token!r}  base {pb:.3f} → {label} {pf:.3f}  (Δp {d:+.3f})"
                ink = "#fff" if abs(norm(d) - 0.5) * 2 > 0.65 else "#000"  # as in the PNG
                parts.append(
                    f"<span style='background:{to_hex(cmap(norm(d)))};color:{ink}' "
                    f"title='{html.escape(tip, quote=True)}'>"
                    f"{html.escape(shown)}</span>" + ("\n" if ends_line else "")
                )
            parts.append("</div>")
    path.write_text("".join(parts), encoding="utf-8")
