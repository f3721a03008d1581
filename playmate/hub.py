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


def endpoint():
    """The Hugging Face endpoint: $HF_ENDPOINT (a mirror), else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


@dataclass(frozen=True)
class Remote:
    repo_id: str          # e.g. "KwaiVGI/LivePortrait"
    filename: str         # path inside the repo, e.g. "liveportrait/base_models/warping_module.pth"
    revision: str = "main"

    @property
    def url(self):
        """The file's address on the Hugging Face endpoint (:func:`endpoint`)."""
        return "%s/%s/resolve/%s/%s" % (endpoint(), self.repo_id, self.revision, self.filename)


OFFLINE_VARS = ("PLAYMATE_OFFLINE", "HF_HUB_OFFLINE")
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
PROBE_TIMEOUT_S = 3.0
PROBE_TTL_S = 60.0       # a long-running ComfyUI server asks again after this
_probes = {}             # host -> (time, reachable)


@dataclass(frozen=True)
class Url:
    """A model file served outside Hugging Face (e.g. MediaPipe's landmarker)."""
    url: str


def offline_requested():
    """True when the user asked for no network (PLAYMATE_OFFLINE / HF_HUB_OFFLINE)."""
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on") for var in OFFLINE_VARS)


def reachable(url=None):
    """Whether the host of ``url`` (default: the Hugging Face endpoint) answers a TCP connection
    within a few seconds.  Asked once a minute per host, so that a machine without network fails
    at once with the list of files instead of retrying every download.  Behind a proxy the
    download itself is the test (True)."""
    import socket
    import time
    from urllib.parse import urlsplit
    url = url or endpoint()
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or (80 if parts.scheme == "http" else 443)
    if host is None or any(os.environ.get(v) for v in PROXY_VARS):
        return True
    now = time.monotonic()
    seen = _probes.get(host)
    if seen is None or now - seen[0] > PROBE_TTL_S:
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
            seen = (now, True)
        except OSError:
            seen = (now, False)
        _probes[host] = seen
    return seen[1]


def offline(url=None):
    """True when downloads cannot work: asked for (:func:`offline_requested`) or the host of
    ``url`` (default Hugging Face) is not reachable (:func:`reachable`)."""
    return offline_requested() or not reachable(url)


def offline_reason(url=None):
    """A few words saying why nothing is downloaded (for error messages)."""
    if offline_requested():
        return "offline: %s is set" % "/".join(v for v in OFFLINE_VARS if os.environ.get(v))
    from urllib.parse import urlsplit
    return "offline: %s cannot be reached" % urlsplit(url or endpoint()).hostname


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


def missing_job_message(missing, reason):
    """ONE line for every file a job lacks, [(path, remote or None)], grouped by folder:
    ``Missing 3 model files (offline: ...): in the folder 'a': x (from URL), y (...); in 'b': ...``."""
    folders = {}
    for path, remote in missing:
        folders.setdefault(Path(path).parent, []).append(
            "%s (from %s)" % (Path(path).name, remote.url) if remote is not None else Path(path).name)
    groups = ["in the folder '%s' put %s" % (folder, ", ".join(names)) for folder, names in folders.items()]
    count = "1 model file" if len(missing) == 1 else "%d model files" % len(missing)
    return "Missing %s (%s): %s. Or run once with network access: each is downloaded automatically." % (
        count, reason, "; ".join(groups))


def require_files(missing):
    """Fail fast with :func:`missing_job_message` when files are missing and cannot be downloaded
    (asked to stay offline, a host that does not answer, or a file nobody can download); online,
    the loaders download them one by one, with progress."""
    missing = [(Path(path), remote) for path, remote in missing]
    if not missing:
        return
    urls = {remote.url for _, remote in missing if remote is not None}
    blocked = next((url for url in sorted(urls) if offline(url)), None)
    if blocked is not None or any(remote is None for _, remote in missing):
        reason = offline_reason(blocked) if blocked is not None else "no download source for some of them"
        raise ModelFileError(missing_job_message(missing, reason))
