"""Open the UI workflows in a running ComfyUI's frontend, in headless Chromium, and screenshot them (manual check).

Not part of pytest.  Needs ``playwright`` (pip; no browser download: it drives the system
Chromium given by --chromium) and a server started as tests/COMFYUI_LOCAL.md says::

    python tests/nodes/shoot_frontend.py --out /tmp/shots/fe-1.27.10 example_workflows/*.json

Each workflow is opened the way a user does (Workflow > Open: the frontend's file input) in a
fresh browser context; after it settles the page is saved as ``<out>/<name>.png`` and a JSON
line per workflow is printed: frontend version, canvas zoom, nodes outside the view, overlapping
node pairs, and the text of any dialog or toast that opened (e.g. "Missing Models").
"""

import argparse
import json
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]

# Runs in the page: what a user would notice, from the litegraph canvas state.
INSPECT = r"""
() => {
  const app = window.app || window.comfyAPI?.app?.app;
  const c = app.canvas, ds = c.ds, g = app.graph;
  const title = (window.LiteGraph && LiteGraph.NODE_TITLE_HEIGHT) || 30;
  const W = c.canvas.clientWidth || c.canvas.width, H = c.canvas.clientHeight || c.canvas.height;
  const nodes = (g._nodes || g.nodes || []).map(n => ({
    id: n.id, type: n.type, title: n.title, collapsed: !!(n.flags && n.flags.collapsed),
    x: n.pos[0], y: n.pos[1] - title, w: n.size[0], h: n.size[1] + title}));
  const toScreen = (x, y) => [(x + ds.offset[0]) * ds.scale, (y + ds.offset[1]) * ds.scale];
  const outside = [];
  for (const n of nodes) {
    const [x0, y0] = toScreen(n.x, n.y), [x1, y1] = toScreen(n.x + n.w, n.y + n.h);
    if (x0 < 0 || y0 < 0 || x1 > W || y1 > H) outside.push(n.id + ":" + n.type);
  }
  const overlaps = [];
  for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) {
    const a = nodes[i], b = nodes[j];
    const ox = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
    const oy = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
    if (ox > 4 && oy > 4) overlaps.push(a.id + ":" + a.type + " x " + b.id + ":" + b.type + " (" + Math.round(ox) + "x" + Math.round(oy) + ")");
  }
  const groups = (g._groups || g.groups || []).length;
  const dialogs = [...document.querySelectorAll('.p-dialog, [role=dialog], .p-toast-message, .comfy-modal[style*="flex"]')]
    .filter(e => e.offsetParent !== null || getComputedStyle(e).display !== 'none')
    .map(e => (e.innerText || '').replace(/\s+/g, ' ').trim().slice(0, 700)).filter(t => t);
  return {frontend: window.__COMFYUI_FRONTEND_VERSION__ || null, zoom: +ds.scale.toFixed(3),
          viewport: [W, H], nodes: nodes.length, groups, outside_view: outside, overlaps, dialogs,
          vue_nodes: !!(window.LiteGraph && LiteGraph.vueNodesMode)};
}
"""


def wait_for_app(page, timeout=60):
    page.wait_for_function("() => { const a = window.app || window.comfyAPI?.app?.app; "
                           "return a && a.graph && a.canvas && a.canvas.ds }", timeout=timeout * 1000)


def shoot(browser, url, workflow, out, settle, size):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    console = []
    page.on("console", lambda m: console.append((m.type + ": " + m.text).splitlines()[0][:200]) if m.type in ("error", "warning") else None)
    page.goto(url, wait_until="domcontentloaded")
    wait_for_app(page)
    time.sleep(settle)
    # close a first-run dialog (e.g. the template browser) the way a user would
    page.keyboard.press("Escape")
    time.sleep(0.5)
    inputs = page.locator("input[type=file]")
    chosen = None
    for i in range(inputs.count()):
        accept = inputs.nth(i).get_attribute("accept") or ""
        if "json" in accept or inputs.nth(i).get_attribute("id") == "comfy-file-input":
            chosen = inputs.nth(i)
            break
    if chosen is not None:
        chosen.set_input_files(str(workflow))
        how = "file input"
    else:  # fall back to the app's own handler (what a drop does)
        page.evaluate("""async (text) => { const a = window.app || window.comfyAPI.app.app;
            await a.handleFile(new File([text], %s, {type: 'application/json'})); }""" % json.dumps(workflow.name),
                      workflow.read_text(encoding="utf-8"))
        how = "app.handleFile"
    time.sleep(settle)
    info = page.evaluate(INSPECT)
    info.update(workflow=workflow.name, opened_with=how, console=sorted(set(console))[:8])
    shot = out / (workflow.stem + ".png")
    page.screenshot(path=str(shot))
    info["screenshot"] = str(shot)
    context.close()
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="UI workflow files (default: example_workflows/*.json)")
    parser.add_argument("--url", default="http://127.0.0.1:8188")
    parser.add_argument("--out", default="/tmp/shots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--size", default="1600x1000")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds to let the page settle")
    args = parser.parse_args(argv)
    files = [Path(f) for f in args.files] or sorted((ROOT / "example_workflows").glob("*.json"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = tuple(int(v) for v in args.size.split("x"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        # the page as a user first sees it, before opening anything
        context = browser.new_context(viewport={"width": size[0], "height": size[1]})
        page = context.new_page()
        page.goto(args.url, wait_until="domcontentloaded")
        wait_for_app(page)
        time.sleep(args.settle)
        page.screenshot(path=str(out / "_start.png"))
        context.close()
        for workflow in files:
            try:
                info = shoot(browser, args.url, workflow, out, args.settle, size)
            except Exception as err:  # record and go on with the next workflow
                info = {"workflow": workflow.name, "error": "%s: %s" % (type(err).__name__, err)}
            print(json.dumps(info), flush=True)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
