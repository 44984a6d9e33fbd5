"""False scene changes: people moving in front of one still picture, for 60 s.

A generated video (tests/media.py make_people_video: one to three figures at a
time walking across a still artwork, some stopping to look) goes through the
engine's vision thread as it runs in `play` (the real encoder, image emotion,
conductor and scene tracker; default EngineConfig). Every scene change it
reports is false: the picture never changes. Also counted: the frames embedded
at once on the cheap change signal (scene.CutWatch), and the changed share of
each frame against the first (how much of the picture the figures cover).

Default: the video as a timeline source (media time, as fast as the encoder
goes; deterministic). ``--live``: the same video played as a live camera in
real time (the engine clock), 60 s of wall time.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

import common
from installation.image.capture import FrameSource


class VideoAsCamera(FrameSource):
    """A video file shown as a live camera: frame_at ignores t and gives the frame due now."""

    live = True

    def __init__(self, video, clock=time.perf_counter):
        self.video, self.clock = video, clock
        self.description = f"{video.description} as a camera"
        self._start = None

    def start(self) -> None:
        self._start = self.clock()

    def frame_at(self, t: float):
        return self.video.frame_at(self.clock() - self._start)

    def close(self) -> None:
        self.video.close()


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--picture", default="06_starry_night_van_gogh.jpg")
    ap.add_argument("--seed", type=int, default=0, help="the video's seed")
    ap.add_argument("--live", action="store_true", help="play the video as a camera in real time")
    args = ap.parse_args()
    seconds = 10.0 if args.quick else args.seconds
    busy = common.warn_if_busy()

    from media import make_people_video
    from vision_parts import scene_changes
    from installation.image.capture import VideoFileSource
    from installation.image.scene import CutWatch

    models = common.load_models(args.models)
    arts = dict(common.artworks())
    path = Path(tempfile.gettempdir()) / f"people_{args.picture.split('.')[0]}_{seconds:g}s_{args.seed}.avi"
    path.parent.mkdir(parents=True, exist_ok=True)
    make_people_video(path, arts[args.picture], seconds=seconds, seed=args.seed)
    video = VideoFileSource(path)
    video.open()
    ref = CutWatch.thumbnail(video.frame_at(0.0).image)
    shares = [CutWatch._share(ref, CutWatch.thumbnail(video.frame_at(i / video.fps).image))
              for i in range(video.frame_count)]
    source = VideoAsCamera(video) if args.live else video
    began = time.perf_counter()
    changes, eng = scene_changes(models, source, seconds, timeout_s=seconds * 10)
    vis = eng.vision
    wall = time.perf_counter() - began
    res = {"benchmark": "false_changes", "machine": common.machine(), "busy_at_start": busy,
           "models": common.models_label(args.models), "picture": args.picture, "seconds": seconds,
           "video": {"fps": video.fps, "frames": video.frame_count, "seed": args.seed},
           "mode": "live (real time)" if args.live else "timeline (media time)",
           "false_changes": len(changes), "change_times_s": changes, "embeds": vis.embeds,
           "fast_embeds": getattr(vis, "fast_embeds", None), "wall_s": wall,
           "figure_share": {"median": float(np.median(shares)), "p90": float(np.percentile(shares, 90)),
                            "max": float(np.max(shares))}}
    print(f"{args.picture}, {seconds:g} s of people moving ({res['mode']}): {len(changes)} false scene changes "
          f"{[round(t, 1) for t in changes]}; {vis.embeds} embeds, {res['fast_embeds']} at once on the change signal")
    print(f"share of the picture changed by the figures: median {res['figure_share']['median']:.2f}, "
          f"p90 {res['figure_share']['p90']:.2f}, max {res['figure_share']['max']:.2f}")
    res["aim"] = {"what": "no false scene change", "met": not changes}
    print(f"aim no false change: {'met' if not changes else 'NOT met'}")
    common.write_result("false_changes" + ("_live" if args.live else ""), res, args.out)


if __name__ == "__main__":
    main()
