import pandas as pd

from mobilei2v_pipeline.training.curves import plot_training_curves


def test_one_panel_per_logged_quantity(tmp_path):
    history = pd.DataFrame({"step": [0, 1, 2], "loss": [1.0, 0.5, 0.2], "val_loss": [1.0, None, 0.3]})
    figure = plot_training_curves(history)
    assert [axis.get_ylabel() for axis in figure.axes] == ["loss", "val_loss"]
    figure.savefig(tmp_path / "curves.png")  # no pyplot backend needed
    assert (tmp_path / "curves.png").stat().st_size > 1000
