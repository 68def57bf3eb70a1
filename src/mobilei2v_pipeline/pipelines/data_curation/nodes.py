"""Nodes of the data_curation pipeline: raw videos in, scored and validated training clips out."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from mobilei2v_pipeline.errors import NoUsableClipsError, ValidationFailedError
from mobilei2v_pipeline.pipelines.data_curation import validation
from mobilei2v_pipeline.pipelines.data_curation.engine import ordered_results
from mobilei2v_pipeline.pipelines.data_curation.video_curation import (
    CLIP_FILTERS,
    QUARANTINE_COLUMNS,
    curate_video,
    shrink,
)
from mobilei2v_pipeline.storage import VideoLocation
from mobilei2v_pipeline.text import slug
from mobilei2v_pipeline.video.decode import READ_ERROR_REASONS
from mobilei2v_pipeline.video.fingerprint import near_duplicate_groups
from mobilei2v_pipeline.video.record import VideoRecord
from mobilei2v_pipeline.video.synthetic import plan_synthetic_videos, synthetic_video_bytes

logger = logging.getLogger(__name__)

PREVIEW_WIDTH = 320  # pixels of the preview GIFs
ENCODER_SETTINGS = ("crf", "preset", "keyint")  # the synthetic parameters that go to the encoder
Records = dict[str, Callable[[], VideoRecord]]  # by video id, each read when called


def synthesize_raw_videos(
    user_videos: dict[str, VideoLocation], synthetic: dict[str, Any]
) -> dict[str, Callable[[], bytes]]:
    """Synthetic raw videos when the user supplied none; none (and the old ones cleared) when they did.

    The videos are returned as callables so the folder dataset encodes and writes them one at a time.
    """
    if user_videos:
        logger.info("Curating %d user videos; the synthetic generator is not used", len(user_videos))
        return {}
    encoding = {key: synthetic[key] for key in ENCODER_SETTINGS}
    plan = {key: value for key, value in synthetic.items() if key not in ENCODER_SETTINGS}
    specs = plan_synthetic_videos(**plan)
    logger.info("No user videos: generating %d synthetic videos (seed %d)", len(specs), synthetic["seed"])
    return {f"{spec.name}.mp4": partial(synthetic_video_bytes, spec, **encoding) for spec in specs}


def select_source_videos(
    user_videos: dict[str, VideoLocation], synthetic_videos: dict[str, VideoLocation]
) -> dict[str, VideoLocation]:
    """The videos to curate, keyed by a stable identity: the user's if there are any, else synthetic ones."""
    source, videos = ("user", user_videos) if user_videos else ("synthetic", synthetic_videos)
    return {f"{source}/{name}": path for name, path in videos.items()}


def curate_videos(source_videos: dict[str, VideoLocation], curation: dict[str, Any]) -> Records:
    """One record per source video (its clips cut by time, upright, scored and fingerprinted, the frames of
    those the per-clip filters pass, or why the file was quarantined), for the records dataset to save one at
    a time as the configured engine (`curation.engine`, `curation.workers`, `curation.ray`) makes them: the
    run holds the videos in flight, not the folder. Every worker is single-threaded, so the records are the
    same bytes whichever engine and however many workers made them."""
    jobs = {video_id: (video_id, location, curation, 1) for video_id, location in source_videos.items()}
    results = ordered_results(curate_video, jobs, curation["engine"], curation["workers"], curation["ray"])
    progress = tqdm(total=len(jobs), desc="curate videos", unit="video", disable=not jobs)

    def record(video_id: str) -> VideoRecord:
        made = results(video_id)
        progress.update()
        if progress.n == progress.total:
            progress.close()
        if made.quarantine:
            logger.warning("video %s: %s, quarantined", made.quarantine["path"], made.quarantine["detail"])
        return made

    return {video_id: partial(record, video_id) for video_id in jobs}


def collect_clips(records: Records) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From the records' headers (no frames are read): every clip cut, with its source metadata, how it
    sampled the source, its scores and why the filters rejected it (`reason`, "" when kept); and the
    quarantine table, one row per unusable file with the reason."""
    rows, quarantine = [], []
    for video_id in sorted(records):
        record = records[video_id]()
        rows += record.rows
        if record.quarantine:
            quarantine.append(record.quarantine)
    return pd.DataFrame(rows), pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS)


def filter_clips(clip_scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split clips into kept and rejected by the filters' verdict (`curation.filters`, applied per clip as the
    videos were curated); each rejected clip keeps all its reasons."""
    if clip_scores.empty:
        return clip_scores, clip_scores.assign(reason=pd.Series(dtype=str))
    rejected = clip_scores["reason"] != ""
    kept = clip_scores[~rejected].drop(columns="reason").reset_index(drop=True)
    return kept, clip_scores[rejected].reset_index(drop=True)


def group_near_duplicates(records: Records, kept_clips: pd.DataFrame, split: dict[str, Any]) -> pd.DataFrame:
    """Give each kept clip its source's `duplicate_group`: the first video id of the sources that share
    footage with it (a perceptual hash of a frame of their clips within `near_duplicate_max_distance` bits),
    so a recompressed or trimmed copy goes to the split of its original. A source like no other is its own
    group."""
    if kept_clips.empty:
        return kept_clips.assign(duplicate_group=pd.Series(dtype=str))
    hashes = {}
    for video_id, clips in kept_clips.groupby("video_id"):
        record = records[video_id]()
        hashes[video_id] = np.array([h for clip in clips["clip_id"] for h in record.hashes[clip]], np.uint64)
    groups = near_duplicate_groups(hashes, split["near_duplicate_max_distance"])
    members: dict[str, list[str]] = {}
    for video_id, group in groups.items():
        members.setdefault(group, []).append(video_id)
    for videos in members.values():
        if len(videos) > 1:
            logger.info("near-duplicate sources, kept in one split: %s", ", ".join(videos))
    return kept_clips.assign(duplicate_group=kept_clips["video_id"].map(groups))


def assign_splits(
    kept_clips: pd.DataFrame, rejected_clips: pd.DataFrame, quarantine: pd.DataFrame, split: dict[str, Any]
) -> pd.DataFrame:
    """Mark each clip train or val by a hash of its duplicate group's identity (its source video's, unless
    the source has near-duplicates).

    The hash of the identity alone decides, so adding a video never moves another between splits (unless it
    joins that video's group under a name sorted first). Stops the run when no clip survived curation,
    saying why.
    """
    if kept_clips.empty:
        raise NoUsableClipsError(_no_usable_clips_message(rejected_clips, quarantine))
    fraction = kept_clips["duplicate_group"].map(partial(_hash_fraction, salt=split["salt"]))
    return kept_clips.assign(split=np.where(fraction < split["val_fraction"], "val", "train"))


def validate_clip_table(
    clip_candidates: pd.DataFrame, clip_validation: dict[str, Any], curation: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Run the Great Expectations suite on the clip table: a JSON summary and GE's HTML page."""
    result = validation.validate(clip_candidates, clip_validation, curation["clips"])
    summary = validation.summarize(result)
    if not summary["success"]:
        logger.error("Clip table failed validation: %s", validation.describe_failures(summary))
    return summary, validation.render_html(result)


def summarize_curation(
    source_videos: dict[str, VideoLocation],
    quarantine: pd.DataFrame,
    clip_scores: pd.DataFrame,
    rejected_clips: pd.DataFrame,
    clip_candidates: pd.DataFrame,
    validation_summary: dict[str, Any],
) -> dict[str, float]:
    """The stage's figures, flat numbers for `dvc metrics` and MLflow."""
    split_counts = clip_candidates["split"].value_counts()
    group_sizes = clip_candidates.groupby("duplicate_group")["video_id"].nunique()
    metrics: dict[str, float] = {
        "videos_total": len(source_videos),
        "videos_quarantined": len(quarantine),
        "clips_total": len(clip_scores),
        "clips_kept": len(clip_candidates),
        "clips_rejected": len(rejected_clips),
        "clips_train": int(split_counts.get("train", 0)),
        "clips_val": int(split_counts.get("val", 0)),
        "near_duplicate_groups": int((group_sizes > 1).sum()),
        "near_duplicate_videos": int(group_sizes[group_sizes > 1].sum()),
        "validation_success": int(validation_summary["success"]),
        "validation_failed_expectations": len(validation_summary["failed"]),
    }
    for column in ("motion_score", "sharpness", "brightness"):
        metrics[f"{column}_mean"] = float(clip_candidates[column].mean())
    metrics["motion_score_min"] = float(clip_candidates["motion_score"].min())
    metrics["motion_score_max"] = float(clip_candidates["motion_score"].max())
    # Every reason gets a key, zero or not, so `dvc metrics diff` compares like with like.
    quarantined = quarantine["reason"].value_counts()
    for reason in READ_ERROR_REASONS:
        metrics[f"quarantined_{reason}"] = int(quarantined.get(reason, 0))
    rejected = rejected_clips["reason"].str.split("; ").explode().value_counts()
    for reason in CLIP_FILTERS:
        metrics[f"rejected_{slug(reason)}"] = int(rejected.get(reason, 0))
    return metrics


def publish_clip_table(
    clip_candidates: pd.DataFrame, validation_summary: dict[str, Any], curation_metrics: dict[str, float]
) -> pd.DataFrame:
    """The clip table later stages read, released only when validation passed.

    Takes the metrics so it runs after they are written: a failed run still leaves its figures and report.
    """
    if not validation_summary["success"]:
        reason = _empty_split_message(clip_candidates) or (
            f"the clip table failed {len(validation_summary['failed'])} expectation(s): "
            f"{validation.describe_failures(validation_summary)}"
        )
        raise ValidationFailedError(
            f"{reason}. See the validation report (catalog entry clip_validation_report) in "
            "data/08_reporting/."
        )
    logger.info(
        "Curated %d clips (%d videos quarantined)",
        len(clip_candidates),
        curation_metrics["videos_quarantined"],
    )
    return clip_candidates


def render_contact_sheet(records: Records, clip_scores: pd.DataFrame, columns: int = 6) -> Image.Image:
    """A grid of each clip's middle frame (the records' thumbnails), captioned with its motion score, or its
    rejection reason in red."""
    tiles = []
    for video_id, clips in clip_scores.groupby("video_id", sort=False) if len(clip_scores) else []:
        thumbnails = records[video_id]().thumbnails
        for row in clips.itertuples():
            frame = thumbnails[row.clip_id]
            tile = Image.new("RGB", (frame.shape[1], frame.shape[0] + 28), "white")
            tile.paste(Image.fromarray(frame), (0, 0))
            draw = ImageDraw.Draw(tile)
            caption = f"{row.clip_id[:28]}\nmotion {row.motion_score:.2f}" + (
                f" | {row.reason}" if row.reason else ""
            )
            draw.multiline_text(
                (3, frame.shape[0] + 1), caption, fill="red" if row.reason else "black", spacing=1
            )
            tiles.append(tile)
    if not tiles:
        return Image.new("RGB", (64, 64), "white")
    width, height = tiles[0].size
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (width * min(columns, len(tiles)), height * rows), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * width, (i // columns) * height))
    return sheet


def select_clip_previews(
    clip_frames: dict[str, Callable[[], np.ndarray]], clip_table: pd.DataFrame, count: int
) -> dict[str, Callable[[], np.ndarray]]:
    """A few published clips, spread over the motion range, to look at in MLflow."""
    ordered = clip_table.sort_values("motion_score")
    picks = ordered.iloc[
        np.unique(np.linspace(0, len(ordered) - 1, min(count, len(ordered))).round().astype(int))
    ]
    return {
        f"motion_{row.motion_score:05.2f}_{row.clip_id}": partial(_preview, clip_frames[row.clip_id])
        for row in picks.itertuples()
    }


def _preview(load: Callable[[], np.ndarray]) -> np.ndarray:
    return shrink(load(), PREVIEW_WIDTH)


def _hash_fraction(identity: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{identity}".encode()).hexdigest()
    return int(digest[:12], 16) / 16**12


def _empty_split_message(clip_candidates: pd.DataFrame) -> str | None:
    """What to do when every clip landed in one split (too few videos for the fraction); None otherwise."""
    present = set(clip_candidates["split"])
    for missing, other, fix in (("val", "train", "raise"), ("train", "val", "lower")):
        if missing not in present:
            videos = clip_candidates["video_id"].nunique()
            return (
                f"no {missing} clips: {_count(videos, 'video')} gave {_count(len(clip_candidates), 'clip')}, "
                f"all in {other}; add videos or {fix} curation.split.val_fraction"
            )
    return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _no_usable_clips_message(rejected: pd.DataFrame, quarantine: pd.DataFrame) -> str:
    parts = []
    if len(quarantine):
        counts = quarantine["reason"].value_counts()
        parts.append(
            f"{len(quarantine)} video(s) quarantined ({', '.join(f'{n} {r}' for r, n in counts.items())})"
        )
    if len(rejected):
        counts = rejected["reason"].value_counts()
        parts.append(f"{len(rejected)} clip(s) rejected ({', '.join(f'{n} {r}' for r, n in counts.items())})")
    return (
        "no usable clips: "
        + ("; ".join(parts) or "no videos found")
        + ". See the quarantine table (catalog entry video_quarantine) and the rejected-clip table "
        "(rejected_clips) in data/08_reporting/."
    )
