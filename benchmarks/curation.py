"""Benchmark of data curation: decoding clips with seeking vs decoding every frame, and scoring them.

It makes its own input, a few minutes of 720p video (by default 3 synthetic 1280x720 H.264 MP4 videos of
60 s at 24 fps, from the project's own generator), cached under benchmarks/results/inputs/ and reused when
the settings match. Then, for two clip settings,

- paper: 17 frames every 2nd source frame, delivered at 720x1280, 4 clips per video;
- demo:  9 frames every 2nd source frame, delivered at 128x224, 3 clips per video (the default config),

it measures

- decoding with seek (`read_clips(seek=True)`) vs decoding every frame from the first (`seek=False`): wall
  time per video, clips per second, and the ratio decode-all time / seek time. The two modes are measured
  interleaved, video by video and alternating which goes first, so drifts of a noisy machine hit both;
- scoring: clips per second of `score_clip` (optical-flow motion, sharpness, brightness, contrast, cut);
- end to end: clips decoded (with seek) and scored per second.

- engines: the pipeline's per-video work (`curate_video`: decode, score, fingerprint; single-threaded workers)
  over its own set of short videos (`--engine-videos` of `--engine-seconds`), with the `local` engine (a
  process pool) and the `ray` engine (a Ray started here), each with 1 and 2 workers: clips per second from
  the first request to the last record, the engine's start-up included, and the speed-up of 2 workers over 1.
  The records of every run are compared byte for byte with the first's.

Each measurement is repeated (`--repeats`) and the medians over repeats are reported; ratios are the median
of the per-repeat ratios. Nothing about timing is asserted. The seek and decode-all clips are compared
frame for frame, and the keyframe layout of the inputs is reported, since how far apart keyframes are
decides what seeking can save (x264's default keyframe interval is 250 frames).

Run from the repository root:

    python benchmarks/curation.py            # the full benchmark (make bench); several minutes on 2 cores
    python benchmarks/curation.py --quick    # a tiny run that checks the script works

It prints a table and writes JSON to benchmarks/results/curation.json (curation_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np
from report import log, machine_info, text_table

from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.datasets.video_record import VideoRecordDataset
from mobilei2v_pipeline.pipelines.data_curation.nodes import curate_videos
from mobilei2v_pipeline.pipelines.data_curation.video_curation import CLIP_FILTERS
from mobilei2v_pipeline.video.clip_scores import score_clip
from mobilei2v_pipeline.video.decode import Clip, ClipSpec, VideoInfo, clip_starts, probe_video, read_clips
from mobilei2v_pipeline.video.synthetic import plan_synthetic_videos, synthetic_video_bytes

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Filters that keep every clip, so the engines' records hold every clip's frames.
PASS_ALL_MIN = [limit for _, limit in CLIP_FILTERS.values() if limit.startswith("min_")]
PASS_ALL_MAX = [limit for _, limit in CLIP_FILTERS.values() if limit.startswith("max_")]

CLIP_SETTINGS: dict[str, ClipSpec] = {
    "paper": ClipSpec(frames_per_clip=17, frame_interval=2, clips_per_video=4, height=720, width=1280),
    "demo": ClipSpec(frames_per_clip=9, frame_interval=2, clips_per_video=3, height=128, width=224),
}


@dataclass(frozen=True)
class InputSettings:
    """Everything that determines the generated input videos (and so the cache folder they live in)."""

    videos: int
    seconds: float
    width: int
    height: int
    fps: float
    crf: int
    preset: str
    keyint: int
    seed: int

    @property
    def key(self) -> str:
        return (
            f"v{self.videos}_{self.seconds:g}s_{self.width}x{self.height}_{self.fps:g}fps_"
            f"{self.preset}_crf{self.crf}_keyint{self.keyint}_seed{self.seed}"
        )


@dataclass
class Video:
    path: Path
    info: VideoInfo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=3, help="number of input videos (default 3)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each video (default 60)")
    parser.add_argument("--width", type=int, default=1280, help="input width (default 1280)")
    parser.add_argument("--height", type=int, default=720, help="input height (default 720)")
    parser.add_argument("--fps", type=float, default=24.0, help="input frame rate (default 24)")
    parser.add_argument("--crf", type=int, default=23, help="x264 CRF of the inputs (default 23)")
    parser.add_argument(
        "--preset", default="veryfast", help="x264 preset of the inputs (default veryfast, quick to make)"
    )
    parser.add_argument(
        "--keyint",
        type=int,
        default=48,
        help="frames between keyframes of the inputs (default 48: 2 s, as phones)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic videos (default 0)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each measurement (default 3)")
    parser.add_argument(
        "--settings",
        default=",".join(CLIP_SETTINGS),
        help=f"comma-separated clip settings to run, of {list(CLIP_SETTINGS)} (default all)",
    )
    parser.add_argument(
        "--engine-videos", type=int, default=16, help="videos of the engine runs (default 16)"
    )
    parser.add_argument("--engine-seconds", type=float, default=6.0, help="their length (default 6 s)")
    parser.add_argument("--engine-setting", default="paper", help="clip setting of the engine runs (paper)")
    parser.add_argument("--engines", default="local,ray", help="engines to compare (default local,ray)")
    parser.add_argument("--quick", action="store_true", help="tiny run: 2 videos of 8 s, 2 repeats")
    parser.add_argument("--inputs-dir", type=Path, default=RESULTS_DIR / "inputs", help="cache of inputs")
    parser.add_argument("--output", type=Path, default=None, help="JSON path (default results/curation.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.videos, args.seconds, args.repeats = 2, 8.0, 2
        args.engine_videos, args.engine_seconds = 4, 2.0
    if args.output is None:
        args.output = RESULTS_DIR / ("curation_quick.json" if args.quick else "curation.json")
    unknown = set(args.settings.split(",")) - set(CLIP_SETTINGS)
    if unknown:
        parser.error(f"unknown settings {sorted(unknown)}; known: {list(CLIP_SETTINGS)}")
    return args


# ---------------------------------------------------------------------------------------------- inputs


def make_inputs(settings: InputSettings, inputs_dir: Path) -> list[Video]:
    """Generate the synthetic videos into a cache folder named by their settings; reuse ones already there."""
    folder = inputs_dir / settings.key
    specs = plan_synthetic_videos(
        seed=settings.seed,
        num_videos=settings.videos,
        width=settings.width,
        height=settings.height,
        fps=settings.fps,
        seconds=settings.seconds,
        min_speed=0.5,
        max_speed=6.0,
        num_sprites=4,
        rejects={},
    )
    videos = []
    for number, spec in enumerate(specs, start=1):
        path = folder / f"{spec.name}.mp4"
        if path.exists():
            log(f"input {number}/{len(specs)}: reusing {path.relative_to(inputs_dir.parent)}")
        else:
            log(f"input {number}/{len(specs)}: generating {spec.num_frames} frames -> {path.name}")
            start = time.perf_counter()
            atomic_write_bytes(
                path,
                synthetic_video_bytes(spec, crf=settings.crf, preset=settings.preset, keyint=settings.keyint),
            )
            log(f"  done in {time.perf_counter() - start:.1f} s, {path.stat().st_size / 1e6:.1f} MB")
        videos.append(Video(path=path, info=probe_video(path)))
    return videos


def keyframe_indices(path: Path, fps: float) -> list[int]:
    """Frame indices of the keyframes, read from packet flags without decoding."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        return sorted(
            round(float((packet.pts - start) * stream.time_base) * fps)
            for packet in container.demux(stream)
            if packet.size and packet.is_keyframe and packet.pts is not None
        )


def frames_decoded_with_seek(keyframes: list[int], num_frames: int, spec: ClipSpec) -> tuple[int, int]:
    """Frames the seek mode decodes and the frames the decode-all mode decodes (from the first frame to the
    last frame of the last clip). Like `read_clips`, the seek mode jumps to the keyframe before a clip only
    when that keyframe lies after the last decoded frame, and otherwise decodes on."""
    starts = clip_starts(num_frames, spec)
    decoded, position = 0, -1
    for start in starts:
        keyframe = max((k for k in keyframes if position < k <= start), default=None)
        first = keyframe if keyframe is not None else position + 1
        position = start + spec.span - 1
        decoded += position - first + 1
    return decoded, starts[-1] + spec.span if starts else 0


# ---------------------------------------------------------------------------------------------- measuring


def time_decode(video: Video, spec: ClipSpec, seek: bool) -> tuple[float, list[Clip]]:
    start = time.perf_counter()
    clips = read_clips(video.path, video.info, spec, seek=seek)
    return time.perf_counter() - start, clips


def time_score(clips: list[Clip]) -> float:
    start = time.perf_counter()
    for clip in clips:
        score_clip(clip.frames)
    return time.perf_counter() - start


def same_clips(a: list[Clip], b: list[Clip]) -> bool:
    return len(a) == len(b) and all(
        ca.start_frame == cb.start_frame and np.array_equal(ca.frames, cb.frames)
        for ca, cb in zip(a, b, strict=True)
    )


def measure_repeat(videos: list[Video], spec: ClipSpec, repeat: int) -> dict:
    """One repeat over all videos: decode-all and seek interleaved per video, then scoring of the seek clips.

    End to end (seek decode + scoring) is the sum of the two, timed back to back on the same video.
    """
    totals = {"decode_all_s": 0.0, "decode_seek_s": 0.0, "score_s": 0.0}
    clips = 0
    match = True
    for index, video in enumerate(videos):
        modes = [False, True] if (repeat + index) % 2 == 0 else [True, False]
        decoded = {}
        for seek in modes:
            seconds, decoded[seek] = time_decode(video, spec, seek)
            totals["decode_seek_s" if seek else "decode_all_s"] += seconds
        match &= same_clips(decoded[True], decoded[False])
        totals["score_s"] += time_score(decoded[True])
        clips += len(decoded[True])
    totals["end_to_end_s"] = totals["decode_seek_s"] + totals["score_s"]
    totals["end_to_end_decode_all_s"] = totals["decode_all_s"] + totals["score_s"]
    return {"clips": clips, "clips_match": match, **totals}


def summarise(repeats: list[dict], num_videos: int) -> dict:
    """Medians over repeats of time per video and clips per second for each measurement, and the ratio."""
    clips = repeats[0]["clips"]
    summary: dict = {"clips_per_repeat": clips, "clips_match": all(r["clips_match"] for r in repeats)}
    for name in ("decode_all", "decode_seek", "score", "end_to_end", "end_to_end_decode_all"):
        times = [r[f"{name}_s"] for r in repeats]
        summary[name] = {
            "median_s_per_video": statistics.median(times) / num_videos,
            "median_clips_per_s": statistics.median(clips / t for t in times),
            "times_s": times,
        }
    ratios = [r["decode_all_s"] / r["decode_seek_s"] for r in repeats]
    summary["decode_all_over_seek"] = {"median": statistics.median(ratios), "per_repeat": ratios}
    return summary


def run_setting(name: str, spec: ClipSpec, videos: list[Video], repeats: int) -> dict:
    log(f"setting '{name}': warm-up on {videos[0].path.name}")
    for seek in (True, False):
        read_clips(videos[0].path, videos[0].info, spec, seek=seek)
    results = []
    for repeat in range(repeats):
        start = time.perf_counter()
        results.append(measure_repeat(videos, spec, repeat))
        r = results[-1]
        log(
            f"setting '{name}': repeat {repeat + 1}/{repeats} in {time.perf_counter() - start:.1f} s "
            f"(decode-all {r['decode_all_s']:.2f} s, seek {r['decode_seek_s']:.2f} s, "
            f"score {r['score_s']:.2f} s, {r['clips']} clips)"
        )
    return {"spec": asdict(spec), "span": spec.span, **summarise(results, len(videos))}


def run_engines(videos: list[Video], spec: ClipSpec, engines: list[str], repeats: int) -> dict:
    """Clips per second of curate_videos' records with each engine at 1 and 2 workers (start-up included)."""
    curation = {
        "clips": asdict(spec),
        "min_short_side": 64,
        "motion_reference_short_side": 256,
        "filters": dict.fromkeys(PASS_ALL_MIN, -math.inf) | dict.fromkeys(PASS_ALL_MAX, math.inf),
        "ray": {"address": None, "num_cpus_per_task": 1, "runtime_env": None},
    }
    sources = {f"benchmark/{video.path.name}": video.path for video in videos}
    results, reference = {}, None
    for engine in engines:
        for workers in (1, 2):
            times = []
            for repeat in range(repeats):
                with tempfile.TemporaryDirectory() as folder:
                    start = time.perf_counter()
                    made = curate_videos(sources, {**curation, "engine": engine, "workers": workers})
                    for key in sorted(made):  # saved one by one, as the records dataset does
                        VideoRecordDataset(f"{folder}/{key}.safetensors").save(made[key]())
                    times.append(time.perf_counter() - start)
                    files = sorted(Path(folder).rglob("*.safetensors"))
                    digest = hashlib.md5(b"".join(hashlib.md5(f.read_bytes()).digest() for f in files))
                    clips = sum(len(VideoRecordDataset(str(f)).load().rows) for f in files)
                reference = reference or digest.hexdigest()
                run = f"engine {engine}, {workers} worker(s), repeat {repeat + 1}"
                log(f"{run}: {clips} clips, {times[-1]:.1f} s")
            results[f"{engine}_{workers}"] = {
                "engine": engine,
                "workers": workers,
                "clips": clips,
                "median_s": statistics.median(times),
                "clips_per_s": clips / statistics.median(times),
                "times_s": times,
                "same_records": digest.hexdigest() == reference,
            }
        one, two = results[f"{engine}_1"], results[f"{engine}_2"]
        two["speedup_over_1_worker"] = two["clips_per_s"] / one["clips_per_s"]
    return results


# ---------------------------------------------------------------------------------------------- reporting


def input_report(videos: list[Video], specs: dict[str, ClipSpec]) -> list[dict]:
    rows = []
    for video in videos:
        keyframes = keyframe_indices(video.path, video.info.fps)
        gaps = np.diff(keyframes) if len(keyframes) > 1 else np.array([video.info.num_frames])
        row = {
            "name": video.path.name,
            **video.info.as_dict(),
            "keyframes": len(keyframes),
            "max_keyframe_gap": int(gaps.max()),
            "mean_keyframe_gap": float(gaps.mean()),
            "frames_decoded": {},
        }
        for name, spec in specs.items():
            seek, everything = frames_decoded_with_seek(keyframes, video.info.num_frames, spec)
            row["frames_decoded"][name] = {"seek": seek, "decode_all": everything}
        rows.append(row)
    return rows


def results_table(results: dict[str, dict], inputs: list[dict]) -> str:
    header = ["measurement", "s/video", "clips/s", "frames decoded/video"]
    labels = {
        "decode_all": "decode, every frame",
        "decode_seek": "decode, seek",
        "score": "score_clip",
        "end_to_end": "decoded+scored (seek)",
        "end_to_end_decode_all": "decoded+scored (every frame)",
    }
    rows = []
    for name, result in results.items():
        spec = result["spec"]
        rows.append(
            [
                f"{name}: {spec['frames_per_clip']} frames every {spec['frame_interval']}, "
                f"{spec['height']}x{spec['width']}, {result['clips_per_repeat']} clips",
                "",
                "",
                "",
            ]
        )
        decoded = {
            mode: statistics.mean(row["frames_decoded"][name][mode] for row in inputs)
            for mode in ("seek", "decode_all")
        }
        for key, label in labels.items():
            frames = {"decode_all": decoded["decode_all"], "decode_seek": decoded["seek"]}.get(key)
            rows.append(
                [
                    f"  {label}",
                    f"{result[key]['median_s_per_video']:.3f}",
                    f"{result[key]['median_clips_per_s']:.2f}",
                    f"{frames:.0f}" if frames is not None else "",
                ]
            )
        ratio = result["decode_all_over_seek"]["median"]
        match = "identical" if result["clips_match"] else "DIFFERENT"
        rows.append([f"  decode-all / seek time: {ratio:.2f}x (clips {match})", "", "", ""])
    return text_table(header, rows)


def engines_table(engines: dict) -> str:
    header = ["engine", "workers", "clips", "median s", "clips/s", "vs 1 worker", "records"]
    rows = [
        [
            r["engine"],
            str(r["workers"]),
            str(r["clips"]),
            f"{r['median_s']:.1f}",
            f"{r['clips_per_s']:.2f}",
            f"{r['speedup_over_1_worker']:.2f}x" if "speedup_over_1_worker" in r else "",
            "same" if r["same_records"] else "DIFFERENT",
        ]
        for r in engines.values()
    ]
    return text_table(header, rows)


def inputs_table(inputs: list[dict]) -> str:
    header = ["input", "size", "frames", "MB", "keyframes", "mean gap", "max gap"]
    rows = [
        [
            row["name"],
            f"{row['width']}x{row['height']}",
            str(row["num_frames"]),
            f"{row['size_bytes'] / 1e6:.1f}",
            str(row["keyframes"]),
            f"{row['mean_keyframe_gap']:.0f}",
            str(row["max_keyframe_gap"]),
        ]
        for row in inputs
    ]
    return text_table(header, rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    wall_start = time.perf_counter()
    settings = InputSettings(
        videos=args.videos,
        seconds=args.seconds,
        width=args.width,
        height=args.height,
        fps=args.fps,
        crf=args.crf,
        preset=args.preset,
        keyint=args.keyint,
        seed=args.seed,
    )
    specs = {name: CLIP_SETTINGS[name] for name in args.settings.split(",")}
    videos = make_inputs(settings, args.inputs_dir)
    inputs = input_report(videos, specs)
    results = {name: run_setting(name, spec, videos, args.repeats) for name, spec in specs.items()}
    engine_inputs = replace(settings, videos=args.engine_videos, seconds=args.engine_seconds)
    engine_videos = make_inputs(engine_inputs, args.inputs_dir)
    engine_spec = CLIP_SETTINGS[args.engine_setting]
    engines = run_engines(engine_videos, engine_spec, args.engines.split(","), args.repeats)
    wall = time.perf_counter() - wall_start
    report = {
        "benchmark": "curation",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(
            pyav=av.__version__,
            ffmpeg_libavcodec=".".join(map(str, av.library_versions["libavcodec"])),
            opencv=cv2.__version__,
            opencv_threads=cv2.getNumThreads(),
            numpy=np.__version__,
        ),
        "inputs": {"settings": asdict(settings), "videos": inputs},
        "repeats": args.repeats,
        "results": results,
        "engines": {"inputs": asdict(engine_inputs), "setting": args.engine_setting, "runs": engines},
        "wall_s": wall,
    }
    atomic_write_bytes(args.output, (json.dumps(report, indent=2) + "\n").encode())
    machine = report["machine"]
    print()
    print(
        f"curation benchmark: {args.videos} x {args.seconds:g} s of {args.width}x{args.height} "
        f"at {args.fps:g} fps (x264 {args.preset}, crf {args.crf}, keyframe every {args.keyint} frames); "
        f"medians of {args.repeats} repeats; "
        f"{machine['cpu_count']} CPUs, PyAV {machine['pyav']}, OpenCV {machine['opencv']}"
    )
    print()
    print(inputs_table(inputs))
    print()
    print(results_table(results, inputs))
    print()
    print(
        f"engines: curate_video on {args.engine_videos} x {args.engine_seconds:g} s videos, "
        f"'{args.engine_setting}' clips, start-up included"
    )
    print(engines_table(engines))
    print()
    print(f"total wall time {wall:.0f} s; JSON written to {args.output}")


if __name__ == "__main__":
    main()
