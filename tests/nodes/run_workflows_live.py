"""Run API-format workflows on a running ComfyUI server and report the outcome (manual check).

Not part of pytest.  Start a server first (tests/COMFYUI_LOCAL.md), then::

    python tests/nodes/run_workflows_live.py                          # workflows/api/*.json
    python tests/nodes/run_workflows_live.py --url http://127.0.0.1:8188 --upload portrait.png \
        --upload speech.wav workflows/api/animate.json

For each file: the prompt is checked with ``workflows/validate.validate_api_workflow`` against
the server's own ``/object_info`` (a disagreement with the server's verdict is worth a look),
POSTed to ``/prompt``, and ``/history/<prompt_id>`` is polled until it finishes; the status,
the error of a failed node and the files each output node wrote are printed.  A prompt still
running at ``--timeout`` is interrupted.  Exit status: 0 when every workflow succeeded.

A file holds the prompt itself (``{node_id: {"class_type", "inputs"}}``, what the editor's
"Export (API)" writes) or ``{"prompt": {...}}``.
"""

import argparse
import json
import mimetypes
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from workflows.validate import validate_api_workflow  # noqa: E402


def request_json(url, payload=None, data=None, headers=None, timeout=60):
    """GET (or POST ``payload`` as JSON / raw ``data``) and decode the JSON answer.

    Returns ``(status, body)``; HTTP errors with a JSON body are returned, not raised.
    """
    if payload is not None:
        data = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"}
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read().decode("utf-8") or "null")
    except urllib.error.HTTPError as err:
        body = err.read().decode("utf-8", "replace")
        try:
            return err.code, json.loads(body)
        except ValueError:
            return err.code, body


def upload(url, path):
    """Put a local file into the server's input folder (``POST /upload/image``, any media type)."""
    path = Path(path)
    boundary = uuid.uuid4().hex
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    body = (("--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"%s\"\r\n"
             "Content-Type: %s\r\n\r\n" % (boundary, path.name, mime)).encode("utf-8")
            + path.read_bytes()
            + ("\r\n--%s\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue\r\n--%s--\r\n"
               % (boundary, boundary)).encode("utf-8"))
    status, answer = request_json(url + "/upload/image", data=body,
                                  headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
    if status != 200:
        raise SystemExit("upload of %s failed: HTTP %s %s" % (path, status, answer))
    return answer["name"]


def output_files(outputs):
    """``[(node_id, kind, "subfolder/filename")]`` from a history entry's outputs."""
    found = []
    for node_id, result in outputs.items():
        for kind, items in result.items():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and "filename" in item:
                    found.append((node_id, kind, "/".join(p for p in (item.get("subfolder"), item["filename"]) if p)))
    return found


def run_one(url, path, object_info, timeout):
    """Queue one workflow file and wait for it; returns True on success."""
    prompt = json.loads(Path(path).read_text(encoding="utf-8"))
    if "prompt" in prompt and isinstance(prompt["prompt"], dict) and "class_type" not in prompt["prompt"]:
        prompt = prompt["prompt"]
    print("== %s" % path)
    for problem in validate_api_workflow(prompt, object_info):
        print("   validator: %s" % problem)

    status, answer = request_json(url + "/prompt", {"prompt": prompt, "client_id": uuid.uuid4().hex})
    node_errors = (answer.get("node_errors") or {}) if isinstance(answer, dict) else {}
    for node_id, info in node_errors.items():
        for err in info.get("errors", []):
            print("   server: node %s (%s): %s: %s" % (node_id, info.get("class_type"), err.get("message"), err.get("details")))
    if status != 200:
        print("   REJECTED (HTTP %s): %s" % (status, json.dumps(answer.get("error") if isinstance(answer, dict) else answer)))
        return False
    # The server queues a prompt when at least one output node validates and silently drops
    # the outputs that depend on a node with errors: count that as a failure.
    prompt_id = answer["prompt_id"]
    started = time.monotonic()
    while True:
        _, history = request_json(url + "/history/" + prompt_id)
        if isinstance(history, dict) and prompt_id in history:
            entry = history[prompt_id]
            break
        if time.monotonic() - started > timeout:
            request_json(url + "/interrupt", {"prompt_id": prompt_id})
            print("   TIMEOUT after %d s (interrupted)" % timeout)
            return False
        time.sleep(1.0)

    elapsed = time.monotonic() - started
    state = entry.get("status") or {}
    ok = state.get("status_str") == "success" and state.get("completed", False) and not node_errors
    print("   %s in %.1f s (prompt %s)%s" % ("SUCCESS" if ok else "FAILED", elapsed, prompt_id,
                                          "; outputs of nodes with errors were dropped" if node_errors else ""))
    for event, data in state.get("messages", []):
        if event in ("execution_error", "execution_interrupted"):
            print("   %s at node %s (%s): %s: %s" % (event, data.get("node_id"), data.get("node_type"),
                                                  data.get("exception_type"), data.get("exception_message")))
    for node_id, kind, name in output_files(entry.get("outputs", {})):
        print("   output node %s %s: %s" % (node_id, kind, name))
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="API-format workflow files (default: workflows/api/*.json)")
    parser.add_argument("--url", default="http://127.0.0.1:8188", help="server address")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each workflow")
    parser.add_argument("--upload", action="append", default=[], metavar="FILE",
                        help="copy a local file into the server's input folder first (repeatable)")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    files = args.files or sorted(str(p) for p in (ROOT / "workflows" / "api").glob("*.json"))
    if not files:
        raise SystemExit("no workflow files given and none in %s" % (ROOT / "workflows" / "api"))
    try:
        _, object_info = request_json(url + "/object_info")
    except urllib.error.URLError as err:
        raise SystemExit("no ComfyUI server at %s (%s); start one as tests/COMFYUI_LOCAL.md says" % (url, err.reason))
    for path in args.upload:
        print("uploaded %s as %s" % (path, upload(url, path)))
    results = {path: run_one(url, path, object_info, args.timeout) for path in files}
    failed = [p for p, ok in results.items() if not ok]
    print("\n%d of %d workflows succeeded%s" % (len(files) - len(failed), len(files),
                                                "; failed: " + ", ".join(failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
