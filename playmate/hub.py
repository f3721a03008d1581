"""Finding model files: the user's folder first, then a download from Hugging Face.

Every model file the pack needs has a :class:`Remote` describing where the real
world gets it.  :func:`ensure_file` returns the local path, downloading with a
progress bar when the file is missing and the machine is online; offline (or on
any download failure) it raises :class:`ModelFileError` saying exactly which
file to put in which folder and where to get it.  :func:`ensure_files` does the
same for a set of files with ONE error listing every missing file.
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


def _refuse_folder(path, what):
    if path.is_dir():
        raise ModelFileError("Expected the %s '%s' but found a folder there: remove or rename it."
                             % (what, path))


def _first_line(exc):
    return (str(exc).splitlines() or [exc.__class__.__name__])[0]


def _download(path, remote):
    """Fetch ``remote`` into ``path`` (progress bar from huggingface_hub); the file appears only
    when complete, so an interrupted download never leaves a truncated model file behind."""
    from huggingface_hub import hf_hub_download
    cached = hf_hub_download(repo_id=remote.repo_id, filename=remote.filename,
                             revision=remote.revision)  # shows a tqdm progress bar
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".download")
    shutil.copyfile(cached, tmp)
    os.replace(tmp, path)


def ensure_file(path, remote=None, what="model file"):
    """Return ``path`` if it exists, else download it from ``remote`` into place."""
    path = Path(path)
    _refuse_folder(path, what)
    if path.is_file():
        return path
    if remote is None or offline():
        raise ModelFileError(missing_message(path, remote, what))
    try:
        _download(path, remote)
    except Exception as exc:  # network down, repo moved, disk full ...
        raise ModelFileError(missing_message(path, remote, what)
                             + " Automatic download failed: %s" % _first_line(exc)) from None
    return path


def missing_list_message(missing, what="model file", hint=""):
    """One message for the missing [(path, remote)]: each file with its folder and URL."""
    if len(missing) == 1:
        path, remote = missing[0]
        return missing_message(path, remote, what) + (" " + hint if hint else "")
    items = []
    for path, remote in missing:
        item = "'%s' in the folder '%s'" % (path.name, path.parent)
        if remote is not None:
            item += " (from %s)" % remote.url
        items.append(item)
    return "Missing %d %ss: put %s.%s" % (len(missing), what, "; ".join(items), " " + hint if hint else "")


def ensure_files(wanted, what="model file", hint=""):
    """``wanted``: [(path, remote or None)].  Returns the paths once every file is present.

    Missing files are downloaded one after the other when online and every missing file has a
    remote.  Otherwise -- offline, a file nobody can download, or the first failed download (no
    retries: the remaining files would fail the same way) -- ONE :class:`ModelFileError` lists
    every file still missing with its folder and URL; ``hint`` is appended to it.
    """
    wanted = [(Path(path), remote) for path, remote in wanted]
    for path, _ in wanted:
        _refuse_folder(path, what)
    missing = [(path, remote) for path, remote in wanted if not path.is_file()]
    if missing and (offline() or any(remote is None for _, remote in missing)):
        raise ModelFileError(missing_list_message(missing, what, hint))
    for i, (path, remote) in enumerate(missing):
        try:
            _download(path, remote)
        except Exception as exc:  # network down, repo moved, disk full ...
            raise ModelFileError(missing_list_message(missing[i:], what, hint)
                                 + " Automatic download failed: %s" % _first_line(exc)) from None
    return [path for path, _ in wanted]
