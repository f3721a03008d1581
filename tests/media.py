"""Real test media that exist offline (see ../shared/ASSETS.md), for any test module to import.

``megamind_video()`` returns the path of OpenCV's sample clip Megamind.avi
(720x528, 23.976 fps, 270 frames, a CG man talking, with speech audio).  It
comes from the Debian package ``opencv-doc``: fetched once with
``apt-get download`` (no install, no root needed) and cached in
``~/.cache/playmate-test-media`` (override with ``$PLAYMATE_TEST_MEDIA``).
When it cannot be fetched the calling test fails (never skips).
"""

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest

_DOC_DATA = "usr/share/doc/opencv-doc/examples/data/"
_WANTED = ("Megamind.avi", "messi5.jpg")


def media_dir():
    return Path(os.environ.get("PLAYMATE_TEST_MEDIA") or Path.home() / ".cache" / "playmate-test-media")


def _fetch_opencv_doc(dest):
    """Extract the wanted files of the opencv-doc package into ``dest`` (apt-get download + dpkg-deb)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="opencv-doc-") as tmp:
        run = subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("opencv-doc_*.deb"))
        if run.returncode != 0 or not debs:
            pytest.fail("cannot fetch test media: 'apt-get download opencv-doc' failed: %s"
                        % (run.stderr.strip().splitlines() or ["no .deb"])[-1])
        fsys = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[0])], capture_output=True, check=True)
        tar_path = Path(tmp) / "data.tar"
        tar_path.write_bytes(fsys.stdout)
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                name = member.name.lstrip("./")
                if name.startswith(_DOC_DATA) and name[len(_DOC_DATA):] in _WANTED:
                    part = dest / (Path(name).name + ".part")
                    with tar.extractfile(member) as src, open(part, "wb") as out:
                        shutil.copyfileobj(src, out)
                    os.replace(part, dest / Path(name).name)


def _media_file(filename):
    for candidate in [media_dir() / filename, *sorted(Path("/tmp/megamind").glob("**/" + filename))]:
        if candidate.is_file() and candidate.stat().st_size > 0:
            return candidate
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.fail("test media %s missing and apt-get/dpkg-deb are unavailable to fetch opencv-doc" % filename)
    _fetch_opencv_doc(media_dir())
    path = media_dir() / filename
    if not path.is_file():
        pytest.fail("opencv-doc did not contain %s" % filename)
    return path


def megamind_video():
    """Path of Megamind.avi (fetched and cached on first use)."""
    return _media_file("Megamind.avi")


def messi_image():
    """Path of messi5.jpg (548x342 photo of a football match, small faces) from the same package."""
    return _media_file("messi5.jpg")


def read_frames(path, start=0, count=None):
    """Decode frames ``start .. start+count-1`` of a video as uint8 RGB ``[N, H, W, 3]`` (PyAV)."""
    import av
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i < start:
                continue
            if count is not None and len(frames) >= count:
                break
            frames.append(frame.to_ndarray(format="rgb24"))
    return np.stack(frames)


def video_fps(path):
    import av
    with av.open(str(path)) as container:
        return float(container.streams.video[0].average_rate)
