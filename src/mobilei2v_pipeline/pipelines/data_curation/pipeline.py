"""Wiring of the data_curation pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from mobilei2v_pipeline.pipelines.data_curation import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.synthesize_raw_videos,
                ["user_videos", "params:synthetic"],
                "synthetic_videos",
                name="synthesize_raw_videos",
            ),
            node(
                nodes.select_source_videos,
                ["user_videos", "synthetic_videos"],
                "source_videos",
                name="select_source_videos",
            ),
            node(
                nodes.curate_videos,
                ["source_videos", "params:curation"],
                "curated_clips@records",
                name="curate_videos",
            ),
            node(
                nodes.collect_clips,
                "curated_clips@records",
                ["clip_scores", "video_quarantine"],
                name="collect_clips",
            ),
            node(nodes.filter_clips, "clip_scores", ["kept_clips", "rejected_clips"], name="filter_clips"),
            node(
                nodes.group_near_duplicates,
                ["curated_clips@records", "kept_clips", "params:curation.split"],
                "grouped_clips",
                name="group_near_duplicates",
            ),
            node(
                nodes.assign_splits,
                ["grouped_clips", "rejected_clips", "video_quarantine", "params:curation.split"],
                "clip_candidates",
                name="assign_splits",
            ),
            node(
                nodes.validate_clip_table,
                ["clip_candidates", "params:clip_validation", "params:curation"],
                ["clip_validation_report", "clip_validation_docs"],
                name="validate_clip_table",
            ),
            node(
                nodes.summarize_curation,
                [
                    "source_videos",
                    "video_quarantine",
                    "clip_scores",
                    "rejected_clips",
                    "clip_candidates",
                    "clip_validation_report",
                ],
                "data_curation_metrics",
                name="summarize_curation",
            ),
            node(
                nodes.publish_clip_table,
                ["clip_candidates", "clip_validation_report", "data_curation_metrics"],
                "clip_table",
                name="publish_clip_table",
            ),
            node(
                nodes.render_contact_sheet,
                ["curated_clips@records", "clip_scores"],
                "curation_contact_sheet",
                name="render_contact_sheet",
            ),
            node(
                nodes.select_clip_previews,
                ["curated_clips@frames", "clip_table", "params:curation.previews"],
                "curated_clip_previews",
                name="select_clip_previews",
            ),
        ],
        tags="data_curation",
    )
