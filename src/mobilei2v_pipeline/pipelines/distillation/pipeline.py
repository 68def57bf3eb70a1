"""Wiring of the distillation pipeline. Tags split it into the DVC stages distillation_trajectories,
distillation_stage1 and distillation_stage2, so changing stage 2 remakes neither the trajectories nor
the stage-1 student."""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from mobilei2v_pipeline.pipelines.distillation import nodes
from mobilei2v_pipeline.training.curves import plot_training_curves

LATENTS = ["clip_latents", "latent_table", "latent_stats", "vae"]


def create_pipeline(**kwargs) -> Pipeline:
    trajectories = pipeline(
        [
            node(
                nodes.make_teacher_trajectories,
                [
                    "teacher_model",
                    "clip_latents",
                    "latent_table",
                    "latent_stats",
                    "params:teacher.sampling",
                    "params:distillation",
                ],
                [
                    "teacher_trajectories",
                    "distillation_trajectories_metrics",
                    "distillation_trajectories_measured",
                ],
                name="make_teacher_trajectories",
            ),
        ],
        tags="trajectories",
    )
    stages = [
        _stage("stage1", nodes.distill_stage1, ["teacher_model", "teacher_trajectories"], "student1_model"),
        _stage(
            "stage2",
            nodes.distill_stage2,
            ["teacher_model", "student1_model", "teacher_trajectories"],
            "student2_model",
        ),
    ]
    return pipeline([trajectories, *stages], tags="distillation")


def _stage(stage: str, train_node, inputs: list[str], model: str) -> Pipeline:
    history = f"{stage}_training_history"
    return pipeline(
        [
            node(
                train_node,
                [*inputs, *LATENTS, f"{stage}_checkpoints", "params:distillation"],
                [model, history],
                name=f"distill_{stage}",
            ),
            node(plot_training_curves, history, f"{stage}_training_curves", name=f"plot_{stage}_curves"),
            node(
                update_wrapper(partial(nodes.summarize_stage, stage=stage), nodes.summarize_stage),
                history,
                f"distillation_{stage}_metrics",
                name=f"summarize_{stage}",
            ),
        ],
        tags=stage,
    )
