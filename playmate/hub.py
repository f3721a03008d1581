"""Finding model files: the user's folder first, then a download from Hugging Face.

Every model file the pack needs has a :class:`Remote` describing where the real
world gets it.  :func:`ensure_file` returns the local path, downloading with a
progress bar when the file is missing and the machine is online; offline (or on
any download failure) it raises :class:`ModelFileError` saying exactly which
file to put in which folder and where to get it.
"""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelFileError


@dataclass(frozen=True)
class Remote:
    repo_id: str          # e.g. "KwaiVGI/LivePortrait"
    filename: str         # path inside the repo, e.g. "liveportrait/base_models/warping_module.pth"
    revision: str = "main"

    @property
    def url(self):
        return "https://huggingface.co/%s/resolve/%s/%s" % (self.repo_id, self.revision, self.filename)


def offline():
    """True when the user asked for no network (HF_HUB_OFFLINE / PLAYMATE_OFFLINE)."""
    for var in ("PLAYMATE_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    return False


def missing_message(path, remote=None, what="model file"):
    path = Path(path)
    msg = "Missing %s '%s': put it in the folder '%s'" % (what, path.name, path.parent)
    if remote is not None:
        msg += " (download it from %s)" % remote.url
    return msg + "."


def ensure_file(path, remote=None, what="model file"):
    """Return ``path`` if it exists, else download it from ``remote`` into place.

    The download goes to a temporary name and is renamed when complete, so an
    interrupted download never leaves a truncated model file behind.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError("Expected the %s '%s' but found a folder there: remove or rename it."
                             % (what, path))
    if path.is_file():
        return path
    if remote is None or offline():
        raise ModelFileError(missing_message(path, remote, what))
    try:
        from huggingface_hub import hf_hub_download
        cached = hf_hub_download(repo_id=remote.repo_id, filename=remote.filename,
                                 revision=remote.revision)  # shows a tqdm progress bar
    except Exception as exc:  # network down, repo moved, disk full ...
        raise ModelFileError(missing_message(path, remote, what)
                             + " Automatic download failed: %s" % (str(exc).splitlines() or [exc.__class__.__name__])[0]) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".download")
    shutil.copyfile(cached, tmp)
    os.replace(tmp, path)
    return path
