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
                nodes.decode_clips,
                ["source_videos", "params:curation"],
                ["clip_frames", "clip_index", "video_quarantine"],
                name="decode_clips",
            ),
            node(
                nodes.score_clips,
                ["clip_frames", "clip_index", "params:curation"],
                "clip_scores",
                name="score_clips",
            ),
            node(
                nodes.filter_clips,
                ["clip_scores", "params:curation.filters"],
                ["kept_clips", "rejected_clips"],
                name="filter_clips",
            ),
            node(
                nodes.group_near_duplicates,
                ["clip_frames", "kept_clips", "params:curation.split"],
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
                nodes.select_curated_frames,
                ["clip_frames", "clip_table"],
                "curated_clip_frames",
                name="select_curated_frames",
            ),
            node(
                nodes.render_contact_sheet,
                ["clip_frames", "clip_scores", "rejected_clips"],
                "curation_contact_sheet",
                name="render_contact_sheet",
            ),
            node(
                nodes.select_clip_previews,
                ["clip_frames", "clip_table", "params:curation.previews"],
                "curated_clip_previews",
                name="select_clip_previews",
            ),
        ],
        tags="data_curation",
    )
