"""Training curves as a figure for MLflow: every logged quantity against the step."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure  # not pyplot: no backend is chosen for the process that imports this


def plot_training_curves(history: pd.DataFrame) -> Figure:
    """One panel per quantity (losses, learning rate, validation figures), log-scaled where positive."""
    columns = [c for c in history.columns if c != "step" and history[c].notna().any()]
    figure = Figure(figsize=(7, 2.2 * max(1, len(columns))))
    axes = figure.subplots(len(columns) or 1, 1, squeeze=False)
    for axis, column in zip(axes[:, 0], columns, strict=False):
        values = history[["step", column]].dropna()
        axis.plot(values["step"], values[column], marker="." if len(values) < 30 else None)
        axis.set_ylabel(column)
        if (values[column] > 0).all() and "psnr" not in column:
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    figure.tight_layout()
    return figure
