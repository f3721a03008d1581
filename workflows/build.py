"""Generates the example workflows: editor format (``workflows/*.json``) and API format (``workflows/api/*.json``).

Each workflow is a short Python function below that adds nodes and links to a :class:`Graph`.
Widget values come from the node definitions themselves (our live ``INPUT_TYPES`` through
``workflows/validate.object_info_from_mappings``, the core nodes from the captured
``workflows/data/comfy_core_object_info.json``): a widget gets its declared default unless the
workflow overrides it, so the files follow every change of a default, range or input name.
Combos that list the files of one installation (images, audio, models) have no usable
default and must be given by the workflow.

Usage::

    python workflows/build.py            # rewrite every out-of-date file (workflow, thumbnail, API twin)
    python workflows/build.py --check    # exit 1 if a file is missing or out of date

Files: the editor-format workflows and their thumbnails go to ``example_workflows/`` (the folder
ComfyUI's template browser prefers: it lists ``<pack>/example_workflows/*.json`` under the file
name, shows ``<name>.jpg`` beside it as the card image, in the order the server lists the files;
the frontend sorts custom-node templates by that file name at most, so the names are titles that
start "Playmate 01 - ", the main workflow first).  The API twins go to ``workflows/api/`` under the
workflow's id (``playmate_image_audio_to_video.json``, ...).

Editor format: version 0.4 as ComfyUI frontend 1.27 saves it ("compressed" widget inputs: a node
lists its socket inputs in definition order, then only the widget inputs that are linked, each
with ``widget: {name}``; optional inputs carry ``shape: 7``).  ``widgets_values`` follows
``validate.ui_widget_slots`` (seed widgets are followed by their control value, here always
"fixed" so that a workflow is reproducible).  Notes are core ``Note`` nodes (editor only, left out
of the API format).  No ``models`` metadata: every loader downloads its files on first use, and a
listed file the frontend cannot find in a model folder opens its "missing models" dialog.
API format: ``{id: {"inputs", "class_type", "_meta": {"title"}}}``, what the editor's
"Export (API)" writes; a link is ``[node id, output index]``.

Layout: every node sits in a column (``col``); the nodes of a column stack downwards in the order
they were added, and a node given ``align=other`` starts no higher than ``other`` (rows of a
repeated chain line up).  Columns are as wide as their widest node.  Sizes are estimates from the
socket and widget counts (the editor enlarges a node that is too small on load); LoadImage and
LoadVideo get the size their media preview gives them (see ``FIXED_SIZES``).  ``extra.ds`` opens
the whole graph, centred, in a 1600x1000 browser window beside the frontend's sidebar and below
its menu bar (``WINDOW``, ``SIDEBAR_W``, ``MENU_H``), at a zoom of at least ``MIN_SCALE``.

Thumbnails: a 512x512 JPEG drawn from the layout itself (groups, links, nodes, titles), stamped
with a hash of what it was drawn from, so ``--check`` finds a stale one without comparing bytes
that depend on the Pillow build.
"""

import argparse
import hashlib
import inspect
import io
import json
import math
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI_DIR = ROOT / "example_workflows"      # editor workflows + thumbnails: the template browser's folder
API_DIR = ROOT / "workflows" / "api"     # API twins, named by workflow id
MEDIA_DIR = ROOT / "example_media"       # the inputs the pack ships
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nodes.loaders import DEFAULT_ENCODER, DITTO_CHOICE as DITTO  # noqa: E402
from workflows.validate import (FRONTEND_NODES, UPLOAD_FLAGS, load_core_object_info,  # noqa: E402
                                object_info_from_mappings, type_name, ui_widget_slots, validate_api_workflow,
                                validate_ui_workflow)

# Combos of our nodes whose choices are files of one installation (see validate.py: "file inputs").
PLAYMATE_FILE_INPUTS = {"PlaymateLoadMotionGenerator": ["generator"], "Playmate": ["generator"],
                        "PlaymateLoadAudioEncoder": ["encoder"], "PlaymateLoadMotion": ["motion_file"]}

# Example inputs: example_media/ ships astronaut.jpg and speech.wav; the others are the user's own.
PORTRAIT = "astronaut.jpg"
SPEECH = "speech.wav"
LONG_SPEECH = "long_speech.wav"
DRIVING_VIDEO = "driving.mp4"
PORTRAIT_VIDEO = "talking_portrait.mp4"
GROUP_PHOTO = "two_people.jpg"
# What each workflow's note tells the user about an input file that the pack does not ship.
OWN_INPUTS = {
    LONG_SPEECH: "your own speech recording, as long as you like (minutes); speech.wav from example_media "
                 "works too",
    DRIVING_VIDEO: "your own video of a face talking or making expressions (start it with a neutral face "
                   "looking at the camera)",
    PORTRAIT_VIDEO: "your own video of one person speaking to the camera, with its sound",
    GROUP_PHOTO: "your own photo of two people, both faces clearly visible",
}

NOTE_COLOR, NOTE_BGCOLOR = "#432", "#653"
GROUP_COLOR = "#3f789e"
NODE_TITLE_H = 30          # the title bar sits above a node's pos
GROUP_TITLE_H = 34
GROUP_PAD = 10
NODE_GAP = 50              # vertical gap between stacked nodes (title bar included)
GROUP_GAP = 90             # ... when the next node is in another group
COLUMN_GAP = 60
ORIGIN = (0, 0)
# Media previews as the frontend sizes them.  LoadImage: the image is drawn below the widgets and
# the node grows to at least the image top (2 output rows, the file combo and the upload button,
# about 94 px) + 220 px.  LoadVideo: a video widget as wide as the node and as tall as the video's
# aspect ratio makes it (fitDimensionsToNodeWidth) below about 84 px of output row and widgets;
# sized here for the tallest common video, a portrait phone clip (9:16).
IMAGE_PREVIEW_TOP, IMAGE_PREVIEW_MIN_H = 94, 220
VIDEO_PREVIEW_TOP, VIDEO_ASPECT = 84, 16 / 9
NODE_WIDTH = 320
NOTE_WIDTH = 340
FIXED_SIZES = {"LoadImage": (NODE_WIDTH, IMAGE_PREVIEW_TOP + IMAGE_PREVIEW_MIN_H + 16),
               "LoadVideo": (NODE_WIDTH, VIDEO_PREVIEW_TOP + math.ceil(NODE_WIDTH * VIDEO_ASPECT) + 6),
               "LoadAudio": (NODE_WIDTH, 136), "SaveVideo": (360, 330), "SaveImage": (320, 330),
               "PreviewImage": (320, 300)}
# The view a workflow opens at, in a 1600x1000 browser window.  extra.ds places the graph relative to
# the canvas element: frontend 1.27 (ComfyUI 0.3.64's) gives it 1536x922 beside its sidebar and below
# its tab and menu bars; 1.58 gives it the whole window and floats its sidebar (64 px) and breadcrumb
# and Run bars (about 60 px) over it.  The graph goes where both show it: right of 1.58's sidebar,
# below its bars, inside 1.27's canvas (measured with tests/nodes/shoot_frontend.py).
WINDOW = (1600, 1000)
CANVAS = (1536, 922)
SIDEBAR_W = 64
MENU_H = 60
VIEW_MARGIN = 16           # free screen pixels around the graph
MIN_SCALE = 0.6            # readable zoom
THUMB_SIZE = 512


# ---------------------------------------------------------------------------------------------
# Node definitions


def node_definitions():
    """``(object_info, file_inputs)``: the captured core nodes plus our live node classes."""
    import nodes
    core, core_files = load_core_object_info()
    ours = object_info_from_mappings(nodes.NODE_CLASS_MAPPINGS, nodes.NODE_DISPLAY_NAME_MAPPINGS)
    return {**core, **ours}, {**core_files, **PLAYMATE_FILE_INPUTS}


# ---------------------------------------------------------------------------------------------
# Graph description


class Out:
    """Output ``slot`` of ``node``: pass it as an input value to link it."""

    def __init__(self, node, slot):
        self.node, self.slot = node, slot


class Node:
    """One node of a :class:`Graph` (``pos`` and ``size`` are filled in by :func:`layout`)."""

    def __init__(self, graph, node_id, node_type, col, align, title, values, size=None):
        self.graph, self.id, self.type = graph, node_id, node_type
        self.col, self.align, self.title, self.values = col, align, title, values
        self.size = size
        self.group = None
        self.pos = None

    def __getitem__(self, name):
        """The output called ``name`` (its RETURN_NAME, or its index)."""
        names = self.graph.info[self.type]["output_name"]
        if isinstance(name, int):
            if not 0 <= name < len(names):
                raise KeyError("%s has no output %d" % (self.type, name))
            return Out(self, name)
        if name not in names:
            raise KeyError("%s has no output %r (outputs: %s)" % (self.type, name, names))
        return Out(self, names.index(name))


class Graph:
    """One workflow: nodes (with widget overrides and links), notes and groups."""

    def __init__(self, name, info, files, title=None):
        self.name, self.info, self.files, self.title = name, info, files, title or name
        self.nodes, self.groups = [], []

    def add(self, node_type, col, align=None, title=None, size=None, **values):
        """A node of ``node_type`` in column ``col`` (not above node ``align``), of ``size`` (default:
        estimated); ``values`` are widget overrides or :class:`Out` links."""
        if node_type not in self.info:
            raise KeyError("%s: unknown node type %s" % (self.name, node_type))
        specs = input_specs(self.info[node_type])
        for key, value in values.items():
            if key not in specs:
                raise KeyError("%s: %s has no input %r (inputs: %s)" % (self.name, node_type, key, list(specs)))
            if not isinstance(value, Out) and not is_widget(specs[key]):
                raise TypeError("%s: %s input %r takes a link" % (self.name, node_type, key))
        if align is not None and align.col >= col:
            raise ValueError("%s: align a node with a node of an earlier column" % self.name)
        node = Node(self, len(self.nodes) + 1, node_type, col, align, title, values, size=size)
        self.nodes.append(node)
        return node

    def note(self, text, col, title="Note", height=None):
        """An editor-only Note (not part of the API format)."""
        lines = sum(max(1, math.ceil(len(par) / 44)) for par in text.split("\n"))
        node = Node(self, len(self.nodes) + 1, "Note", col, None, title, {"text": text},
                    size=(NOTE_WIDTH, height or 24 + 19 * lines))
        self.nodes.append(node)
        return node

    def group(self, title, *members):
        for node in members:
            node.group = title
        self.groups.append((title, members))


def input_specs(info):
    """``{name: (category, type, options)}`` of required then optional inputs, in input order."""
    specs = {}
    for category in ("required", "optional"):
        declared = info.get("input", {}).get(category) or {}
        order = (info.get("input_order") or {}).get(category, list(declared))
        for name in order + [n for n in declared if n not in order]:
            spec = declared[name]
            specs[name] = (category, spec[0], spec[1] if len(spec) > 1 else {})
    return specs


def is_widget(spec):
    _, spec_type, options = spec
    return type_name(spec_type) in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO") and not options.get("forceInput")


def widget_value(graph, node, name, spec):
    """The workflow's value for a widget input: its override, else the declared default."""
    category, spec_type, options = spec
    kind = type_name(spec_type)
    value = node.values.get(name)
    if value is None or isinstance(value, Out):
        if name in graph.files.get(node.type, ()):
            raise ValueError("%s: %s input %r lists files of one installation: give its value"
                             % (graph.name, node.type, name))
        if "default" in options:
            value = options["default"]
        elif kind == "COMBO":
            choices = spec_type if isinstance(spec_type, list) else options.get("options") or []
            value = choices[0]
        else:
            value = {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[kind]
    if kind == "FLOAT" and not isinstance(value, bool):
        value = float(value)
    return value


# ---------------------------------------------------------------------------------------------
# Formats


def _sockets(graph, node):
    """Editor input sockets: socket inputs in order, then linked widget inputs (frontend 1.27)."""
    specs = input_specs(graph.info[node.type])
    plain = [n for n, s in specs.items() if not is_widget(s)]
    linked_widgets = [n for n, s in specs.items() if is_widget(s) and isinstance(node.values.get(n), Out)]
    return [(name, specs[name]) for name in plain + linked_widgets]


def _widget_values(graph, node):
    info = graph.info[node.type]
    specs = input_specs(info)
    values = []
    for kind, name in ui_widget_slots(node.type, info):
        if kind == "value":
            values.append(widget_value(graph, node, name, specs[name]))
        elif kind == "control":
            values.append("fixed")
        elif kind == "filter":
            values.append("")
        elif name == "upload":  # the upload button keeps "image" for image and video uploads
            options = specs[next(n for n, s in specs.items() if any(s[2].get(f) for f in UPLOAD_FLAGS))][2]
            values.append(None if options.get("audio_upload") else "image")
        else:
            values.append(None)  # audioUI: never written by the editor
    return values


def _estimated_size(graph, node):
    if node.size:
        return node.size
    if node.type in FIXED_SIZES:
        return FIXED_SIZES[node.type]
    info = graph.info[node.type]
    specs = input_specs(info)
    slots = [s for s in ui_widget_slots(node.type, info) if s[0] in ("value", "control")]
    multiline = sum(1 for _, name in slots
                    if type_name(specs[name][1]) == "STRING" and specs[name][2].get("multiline"))
    rows = max(sum(not is_widget(s) for s in specs.values()), len(info["output"]))  # widget sockets share a row
    return (NODE_WIDTH, 12 + 22 * rows + 24 * len(slots) + 66 * multiline)


def layout(graph):
    """Positions every node: columns left to right, each stacked top down (see the module doc)."""
    for node in graph.nodes:
        node.size = _estimated_size(graph, node)
    x = ORIGIN[0]
    for col in sorted({n.col for n in graph.nodes}):
        column = [n for n in graph.nodes if n.col == col]
        top = ORIGIN[1] + (GROUP_TITLE_H + GROUP_PAD if graph.groups else 0)  # title bar top
        for i, node in enumerate(column):
            if i:
                top += NODE_GAP if column[i - 1].group == node.group else GROUP_GAP
            if node.align is not None:
                top = max(top, node.align.pos[1] - NODE_TITLE_H)
            node.pos = (x, top + NODE_TITLE_H)
            top += NODE_TITLE_H + node.size[1]
        x += max(n.size[0] for n in column) + COLUMN_GAP


def _links(graph):
    """``[(link id, source node, slot, target node, socket index, type)]`` in target order."""
    links = []
    for node in graph.nodes:
        if node.type in FRONTEND_NODES:
            continue
        for index, (name, _) in enumerate(_sockets(graph, node)):
            value = node.values.get(name)
            if isinstance(value, Out):
                out_type = graph.info[value.node.type]["output"][value.slot]
                links.append((len(links) + 1, value.node, value.slot, node, index, out_type))
    return links


def _execution_order(graph, links):
    """Topological order (Kahn, lowest id first), like the order the editor stores."""
    upstream = {n.id: {src.id for _, src, _, dst, _, _ in links if dst is n} for n in graph.nodes}
    order, done = {}, set()
    while len(done) < len(graph.nodes):
        ready = min(n.id for n in graph.nodes if n.id not in done and upstream[n.id] <= done)
        order[ready] = len(done)
        done.add(ready)
    return order


def _display_title(graph, node):
    return node.title or graph.info[node.type].get("display_name") or node.type


def to_ui(graph):
    """The editor-format workflow (version 0.4)."""
    layout(graph)
    links = _links(graph)
    order = _execution_order(graph, links)
    records = []
    for node in graph.nodes:
        record = {"id": node.id, "type": node.type, "pos": list(node.pos), "size": list(node.size), "flags": {},
                  "order": order[node.id], "mode": 0}
        if node.type == "Note":
            record.update(inputs=[], outputs=[], title=node.title, properties={},
                          widgets_values=[node.values["text"]], color=NOTE_COLOR, bgcolor=NOTE_BGCOLOR)
            records.append(record)
            continue
        info = graph.info[node.type]
        inputs = []
        for index, (name, (category, spec_type, options)) in enumerate(_sockets(graph, node)):
            socket = {"name": name, "type": type_name(spec_type)}
            if category == "optional":
                socket["shape"] = 7
            if is_widget((category, spec_type, options)):
                socket["widget"] = {"name": name}
            socket["link"] = next((l[0] for l in links if l[3] is node and l[4] == index), None)
            inputs.append(socket)
        outputs = []
        for slot, (name, out_type) in enumerate(zip(info["output_name"], info["output"])):
            ids = [l[0] for l in links if l[1] is node and l[2] == slot]
            outputs.append({"name": name, "type": type_name(out_type), "links": ids or None})
        record.update(inputs=inputs, outputs=outputs)
        if node.title:
            record["title"] = node.title
        record["properties"] = {"Node name for S&R": node.type}
        record["widgets_values"] = _widget_values(graph, node)
        records.append(record)

    groups = []
    for index, (title, members) in enumerate(graph.groups, 1):
        left = min(n.pos[0] for n in members) - GROUP_PAD
        top = min(n.pos[1] for n in members) - NODE_TITLE_H - GROUP_TITLE_H - GROUP_PAD
        right = max(n.pos[0] + n.size[0] for n in members) + GROUP_PAD
        bottom = max(n.pos[1] + n.size[1] for n in members) + GROUP_PAD
        groups.append({"id": index, "title": title, "bounding": [left, top, right - left, bottom - top],
                       "color": GROUP_COLOR, "font_size": 24, "flags": {}})

    workflow = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "comfyui-playmate/workflows/" + graph.name)),
        "revision": 0,
        "last_node_id": max(n.id for n in graph.nodes),
        "last_link_id": len(links),
        "nodes": records,
        "links": [[i, src.id, slot, dst.id, index, type_name(t)] for i, src, slot, dst, index, t in links],
        "groups": groups,
        "config": {},
        "extra": {"ds": view_of(records, groups)},
        "version": 0.4,
    }
    return workflow


def canvas_bounds(records, groups):
    """``(left, top, right, bottom)`` of every node (title bar included) and group, in canvas units."""
    boxes = [(n["pos"][0], n["pos"][1] - NODE_TITLE_H, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
             for n in records]
    boxes += [(g["bounding"][0], g["bounding"][1], g["bounding"][0] + g["bounding"][2],
               g["bounding"][1] + g["bounding"][3]) for g in groups]
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def view_of(records, groups):
    """``extra.ds``: the largest zoom (at most 1, in steps of 0.01) that shows the whole graph in the
    window area beside the sidebar and below the menu bar, the graph centred there.  The editor
    draws canvas point p at screen point (p + offset) * scale."""
    left, top, right, bottom = canvas_bounds(records, groups)
    avail_w = CANVAS[0] - SIDEBAR_W - 2 * VIEW_MARGIN
    avail_h = CANVAS[1] - MENU_H - 2 * VIEW_MARGIN
    scale = math.floor(100 * min(1.0, avail_w / (right - left), avail_h / (bottom - top))) / 100
    screen_left = SIDEBAR_W + VIEW_MARGIN + (avail_w - scale * (right - left)) / 2
    screen_top = MENU_H + VIEW_MARGIN + (avail_h - scale * (bottom - top)) / 2
    return {"scale": scale, "offset": [round(screen_left / scale - left), round(screen_top / scale - top)]}


def to_api(graph):
    """The API-format prompt (what POST /prompt takes): every node except editor-only ones."""
    prompt = {}
    for node in graph.nodes:
        if node.type in FRONTEND_NODES:
            continue
        inputs = {}
        for name, spec in input_specs(graph.info[node.type]).items():
            value = node.values.get(name)
            if isinstance(value, Out):
                inputs[name] = [str(value.node.id), value.slot]
            elif is_widget(spec):
                inputs[name] = widget_value(graph, node, name, spec)
        prompt[str(node.id)] = {"inputs": inputs, "class_type": node.type,
                                "_meta": {"title": _display_title(graph, node)}}
    return prompt


def dumps(data):
    """JSON text: 2-space indent, short lists of scalars on one line, a final newline."""
    def encode(value, indent):
        pad, inner = " " * indent, " " * (indent + 2)
        if isinstance(value, dict):
            if not value:
                return "{}"
            if all(not isinstance(v, (dict, list)) or (isinstance(v, list) and not any(
                    isinstance(x, (dict, list)) for x in v)) for v in value.values()):
                flat = "{" + ", ".join("%s: %s" % (json.dumps(k), json.dumps(v, ensure_ascii=False))
                                       for k, v in value.items()) + "}"
                if len(flat) + indent <= 110:
                    return flat
            items = ["%s%s: %s" % (inner, json.dumps(k), encode(v, indent + 2)) for k, v in value.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(value, list):
            if not value:
                return "[]"
            if all(not isinstance(v, (dict, list)) for v in value):
                flat = "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "]"
                if len(flat) + indent <= 110:
                    return flat
            return "[\n" + ",\n".join(inner + encode(v, indent + 2) for v in value) + "\n" + pad + "]"
        return json.dumps(value, ensure_ascii=False)
    return encode(data, 0) + "\n"


# ---------------------------------------------------------------------------------------------
# Shared pieces


def _models_and_inputs(g, photo=PORTRAIT, speech=SPEECH, photo_title="Portrait"):
    """Column 0: the Inputs group (LoadImage + LoadAudio) above the Models group (the three loaders)."""
    image = g.add("LoadImage", col=0, title=photo_title, image=photo)
    audio = g.add("LoadAudio", col=0, title="Speech", audio=speech)
    g.group("Inputs", image, audio)
    lp = g.add("PlaymateLoadLivePortrait", col=0)
    gen = g.add("PlaymateLoadMotionGenerator", col=0, generator=DITTO)
    enc = g.add("PlaymateLoadAudioEncoder", col=0, encoder=DEFAULT_ENCODER)
    g.group("Models", lp, gen, enc)
    return image, audio, lp, gen, enc


def _face_and_speech(g, lp, image, audio, enc, col=1):
    source = g.add("PlaymateSource", col=col, liveportrait=lp["liveportrait"], image=image["IMAGE"])
    features = g.add("PlaymateAudioFeatures", col=col, audio=audio["AUDIO"], audio_encoder=enc["audio_encoder"])
    return source, features


def _video_out(g, col, images, fps, audio, prefix, align=None, title=None, stacked=False, save_size=None):
    """CreateVideo (column ``col``) -> SaveVideo: in the next column on the same row, or right below
    it (``stacked``: one column less, and the video preview has room to grow)."""
    video = g.add("CreateVideo", col=col, align=align, images=images, fps=fps, **({"audio": audio} if audio else {}))
    if stacked:
        return video, g.add("SaveVideo", col=col, title=title, size=save_size, video=video["VIDEO"],
                            filename_prefix=prefix)
    return video, g.add("SaveVideo", col=col + 1, align=video, title=title, size=save_size, video=video["VIDEO"],
                        filename_prefix=prefix)


MEDIA_WIDGETS = {"LoadImage": "image", "LoadAudio": "audio", "LoadVideo": "file"}


def what_to_load(g):
    """The note's "What to load" paragraph, from the workflow's LoadImage/LoadAudio/LoadVideo nodes."""
    lines = ["What to load (put the files in ComfyUI/input, or use the node's upload button):"]
    for node in g.nodes:
        if node.type not in MEDIA_WIDGETS:
            continue
        name = node.values[MEDIA_WIDGETS[node.type]]
        label = node.title or node.type
        if (MEDIA_DIR / name).is_file():
            lines.append("- %s: %s, included in this pack's example_media folder." % (label, name))
        else:
            lines.append("- %s: %s is not included with the pack: pick %s." % (label, name, OWN_INPUTS[name]))
    return "\n".join(lines)


def _note(g, col, shows, *more):
    """The "How to use" note: what the workflow shows, what to load, then the ``more`` paragraphs."""
    return g.note("\n".join((shows, what_to_load(g)) + more), col=col, title="How to use")


GENERATOR_NOTE = ("Models download on first use when online: Load Motion Generator's 'ditto (public, "
                  "auto-download)' (8 emotions) into ComfyUI/models/ditto, LivePortrait, the Wav2Vec2 audio "
                  "encoder and the MediaPipe face model likewise (offline, the error names the file, its folder "
                  "and where to get it). 'joyvasa' has no emotion control; a Playmate checkpoint "
                  "(ComfyUI/models/playmate) is one you trained yourself.")
MODELS_NOTE = ("Models download on first use when online: LivePortrait and the MediaPipe face model (offline, "
               "the error names the file, its folder and where to get it).")


# ---------------------------------------------------------------------------------------------
# The workflows


def image_audio_to_video(g):
    image, audio, lp, gen, enc = _models_and_inputs(g)
    source, features = _face_and_speech(g, lp, image, audio, enc)
    motion = g.add("PlaymateSampleMotion", col=2, generator=gen["generator"], source=source["source"],
                   audio_features=features["audio_features"], emotion="happy")
    render = g.add("PlaymateRender", col=2, liveportrait=lp["liveportrait"], source=source["source"],
                   motion=motion["motion"], paste_back=True, audio=audio["AUDIO"])
    g.add("PreviewImage", col=2, title="Face crop", images=source["crop"])
    _video_out(g, 3, render["images"], render["fps"], render["audio"], "playmate/talking", stacked=True)
    _note(g, 1, "A photo and a speech clip make a talking video: Source Face finds the face, Sample Motion "
          "turns the speech into head and face motion, Render animates the photo and Save Video writes an "
          "mp4 with the speech.",
          "Sample Motion: emotion and intensity; cfg_audio = lip-sync strength, cfg_emotion = emotion "
          "strength; same seed, same motion. Render: paste_back on = the full photo, off = the 512x512 "
          "face crop.",
          GENERATOR_NOTE)


def all_in_one(g):
    image = g.add("LoadImage", col=0, title="Portrait", image=PORTRAIT)
    audio = g.add("LoadAudio", col=0, title="Speech", audio=SPEECH)
    anim = g.add("Playmate", col=1, image=image["IMAGE"], audio=audio["AUDIO"], generator=DITTO,
                 paste_back=True)
    _video_out(g, 2, anim["images"], anim["fps"], anim["audio"], "playmate/all_in_one", stacked=True)
    _note(g, 1, "One node from a portrait and speech to a talking video: it finds the face, samples motion from "
          "the audio, renders and pastes the face back (the node chain of 'Playmate 01 - Photo and speech to "
          "talking video' in one node).", GENERATOR_NOTE)


def emotion_sweep(g):
    image, audio, lp, gen, enc = _models_and_inputs(g)
    source, features = _face_and_speech(g, lp, image, audio, enc)
    for emotion in ("neutral", "happy", "surprised"):   # three rows open readable (zoom >= 0.6) in both frontends
        motion = g.add("PlaymateSampleMotion", col=2, title="Sample Motion: " + emotion,
                       generator=gen["generator"], source=source["source"],
                       audio_features=features["audio_features"], emotion=emotion)
        render = g.add("PlaymateRender", col=3, align=motion, title="Render: " + emotion,
                       liveportrait=lp["liveportrait"], source=source["source"], motion=motion["motion"],
                       paste_back=True, audio=audio["AUDIO"])
        _video_out(g, 4, render["images"], render["fps"], render["audio"], "playmate/emotion_" + emotion,
                   align=render, title="Save Video: " + emotion, save_size=(FIXED_SIZES["SaveVideo"][0], 290))
    _note(g, 1, "One face and one speech clip, three emotions with the same seed: the three videos differ only "
          "by the emotion. Raise cfg_emotion (or intensity) for stronger emotions; lip sync weakens as "
          "cfg_emotion grows.", GENERATOR_NOTE)


def video_driven(g):
    image = g.add("LoadImage", col=0, title="Portrait", image=PORTRAIT)
    video = g.add("LoadVideo", col=0, title="Driving video", file=DRIVING_VIDEO)
    g.group("Inputs", image, video)
    lp = g.add("PlaymateLoadLivePortrait", col=1)
    parts = g.add("GetVideoComponents", col=1, video=video["VIDEO"])
    source = g.add("PlaymateSource", col=2, liveportrait=lp["liveportrait"], image=image["IMAGE"])
    motion = g.add("PlaymateMotionFromVideo", col=2, liveportrait=lp["liveportrait"], images=parts["images"],
                   fps=parts["fps"])
    smooth = g.add("PlaymateSmoothMotion", col=3, motion=motion["motion"], strength=0.3)
    render = g.add("PlaymateRender", col=3, liveportrait=lp["liveportrait"], source=source["source"],
                   motion=smooth["motion"], paste_back=True, audio=parts["audio"])
    _video_out(g, 4, render["images"], parts["fps"], render["audio"], "playmate/video_driven", stacked=True)
    _note(g, 1, "A driving video moves the portrait: each frame's expression and head pose, relative to the "
          "video's first frame. Smooth Motion removes tracking jitter (0 = off). The output keeps the "
          "video's frame rate and sound.", MODELS_NOTE)


def eye_lip_retargeting(g):
    image, audio, lp, gen, enc = _models_and_inputs(g)
    source, features = _face_and_speech(g, lp, image, audio, enc)
    motion = g.add("PlaymateSampleMotion", col=2, generator=gen["generator"], source=source["source"],
                   audio_features=features["audio_features"])
    eyes = g.add("PlaymateRetargetEyesLips", col=3, motion=motion["motion"], source=source["source"],
                 eye_mode="constant", eye_value=0.35)
    blinks = g.add("PlaymateBlinks", col=3, motion=eyes["motion"], source=source["source"], rate_per_minute=15.0)
    quiet = g.add("PlaymateSilenceRelax", col=3, motion=blinks["motion"], audio=audio["AUDIO"],
                  source=source["source"], mouth_expression="neutral")
    g.group("Eyes and lips", eyes, blinks, quiet)
    render = g.add("PlaymateRender", col=4, liveportrait=lp["liveportrait"], source=source["source"],
                   motion=quiet["motion"], paste_back=True, audio=audio["AUDIO"])
    _video_out(g, 5, render["images"], render["fps"], render["audio"], "playmate/eyes_lips", stacked=True)
    _note(g, 1, "Eye and lip control on top of the motion from speech, top to bottom in 'Eyes and lips':\n"
          "- Eyes & Lips Targets: eyes held open at 0.35 (constant); modes also scale, keyframe (curve), "
          "follow a driving video (driving-relative) or switch a target off.\n"
          "- Blinks: natural seeded blinks (rate, duration, minimum gap) through the eye target.\n"
          "- Close Mouth In Silence: closes the mouth and relaxes the lips where the speech pauses.",
          GENERATOR_NOTE)


def paste_back_full_photo(g):
    image, audio, lp, gen, enc = _models_and_inputs(g)
    source, features = _face_and_speech(g, lp, image, audio, enc)
    motion = g.add("PlaymateSampleMotion", col=2, generator=gen["generator"], source=source["source"],
                   audio_features=features["audio_features"])
    render = g.add("PlaymateRender", col=2, liveportrait=lp["liveportrait"], source=source["source"],
                   motion=motion["motion"], paste_back=False, audio=audio["AUDIO"])
    paste = g.add("PlaymatePasteBack", col=3, align=render, source=source["source"], images=render["images"])
    _video_out(g, 4, paste["images"], render["fps"], render["audio"], "playmate/full_photo", stacked=True)
    _note(g, 1, "Render makes 512x512 face crops (paste_back off); Paste Back puts them into the "
          "full-resolution photo with a feathered face mask. Connect your own MASK (in photo space) to "
          "Paste Back's mask input to choose what moves; its mask output is the mask used. Chain Paste Back "
          "nodes through 'background' to animate several faces (see 'Playmate 08 - Two faces in one photo').",
          GENERATOR_NOTE)


def long_audio(g):
    image, audio, lp, gen, enc = _models_and_inputs(g, speech=LONG_SPEECH)
    source, features = _face_and_speech(g, lp, image, audio, enc)
    motion = g.add("PlaymateSampleMotion", col=2, generator=gen["generator"], source=source["source"],
                   audio_features=features["audio_features"])
    blinks = g.add("PlaymateBlinks", col=2, motion=motion["motion"], source=source["source"])
    g.add("PlaymateRenderToVideo", col=3, liveportrait=lp["liveportrait"], source=source["source"],
          motion=blinks["motion"], paste_back=True, batch_size=16, audio=audio["AUDIO"],
          filename_prefix="playmate/long_audio")
    _note(g, 1, "For minutes of speech: Render To Video File streams frame batches straight into an h264 + aac "
          "mp4 in the output folder, so memory stays flat however long the audio (Render + Create Video "
          "keep every frame in memory). The file's path is shown on the node.", GENERATOR_NOTE)


def two_faces(g):
    image, audio, lp, gen, enc = _models_and_inputs(g, photo=GROUP_PHOTO, photo_title="Photo of two people")
    sources = [g.add("PlaymateSource", col=1, title="Source Face %d" % face, liveportrait=lp["liveportrait"],
                     image=image["IMAGE"], face_index=face, face_order="left-to-right") for face in (0, 1)]
    features = g.add("PlaymateAudioFeatures", col=1, audio=audio["AUDIO"], audio_encoder=enc["audio_encoder"])
    background, renders = None, []
    for face, (source, emotion, seed) in enumerate(zip(sources, ("happy", "neutral"), (0, 1))):
        motion = g.add("PlaymateSampleMotion", col=2, align=source, title="Sample Motion: face %d" % face,
                       generator=gen["generator"], source=source["source"],
                       audio_features=features["audio_features"], emotion=emotion, seed=seed)
        render = g.add("PlaymateRender", col=3, align=motion, title="Render: face %d" % face,
                       liveportrait=lp["liveportrait"], source=source["source"], motion=motion["motion"],
                       paste_back=False, audio=audio["AUDIO"])
        paste = g.add("PlaymatePasteBack", col=4, align=render, title="Paste Back: face %d" % face,
                      source=source["source"], images=render["images"],
                      **({"background": background} if background else {}))
        background = paste["images"]
        renders.append(render)
    _video_out(g, 5, background, renders[0]["fps"], renders[0]["audio"], "playmate/two_faces", align=paste,
               stacked=True)
    _note(g, 1, "Two people in one photo: each Source Face picks one face (numbered left to right), gets its "
          "own motion and render, and the second Paste Back pastes into the first one's frames (its "
          "'background' input). Both faces follow the same speech here; give each its own Sample Motion "
          "settings (emotion, seed).", GENERATOR_NOTE)


def expression_editor(g):
    image = g.add("LoadImage", col=0, title="Portrait", image=PORTRAIT)
    lp = g.add("PlaymateLoadLivePortrait", col=0)
    source = g.add("PlaymateSource", col=1, liveportrait=lp["liveportrait"], image=image["IMAGE"])
    still = g.add("PlaymateExpressionEditor", col=2, title="Expression Editor: still", source=source["source"],
                  smile=0.6, eyebrow=0.3, pupil_x=0.3, yaw=8.0)
    clip = g.add("PlaymateExpressionEditor", col=2, title="Expression Editor: animated",
                 source=source["source"], smile=1.0, eyebrow=0.5, aaa=0.3, pitch=-5.0,
                 envelope="0: 0; 1s: 1 ease-in-out; 2s: 1; 3s: 0 ease-in-out", num_frames=75, fps=25.0)
    render = g.add("PlaymateRender", col=3, align=still, title="Render: still", liveportrait=lp["liveportrait"],
                   source=source["source"], motion=still["motion"], paste_back=True)
    moving = g.add("PlaymateRender", col=3, align=clip, title="Render: animated", liveportrait=lp["liveportrait"],
                   source=source["source"], motion=clip["motion"], paste_back=True)
    g.add("SaveImage", col=4, align=render, images=render["images"], filename_prefix="playmate/expression")
    _video_out(g, 4, moving["images"], moving["fps"], None, "playmate/expression", align=moving, stacked=True)
    _note(g, 1, "Edit the expression of a photo without audio: sliders (smile, blink, wink, eyebrow, gaze, "
          "mouth shapes aaa/eee/woo, head pitch/yaw/roll) on the face's own expression. Top: one edited "
          "still. Bottom: 75 frames where the envelope fades the edit in and out (3 s at 25 fps). Connect a "
          "MOTION to edit a talking video instead.", MODELS_NOTE)


def portrait_video_edit(g):
    video = g.add("LoadVideo", col=0, title="Portrait video", file=PORTRAIT_VIDEO)
    parts = g.add("GetVideoComponents", col=0, video=video["VIDEO"])
    g.group("Input", video, parts)
    lp = g.add("PlaymateLoadLivePortrait", col=0)
    gen = g.add("PlaymateLoadMotionGenerator", col=0, generator=DITTO)
    enc = g.add("PlaymateLoadAudioEncoder", col=0, encoder=DEFAULT_ENCODER)
    g.group("Models", lp, gen, enc)
    source = g.add("PlaymateSource", col=1, title="Source Face (first frame)", liveportrait=lp["liveportrait"],
                   image=parts["images"])
    features = g.add("PlaymateAudioFeatures", col=1, audio=parts["audio"], fps=parts["fps"],
                     audio_encoder=enc["audio_encoder"])
    motion = g.add("PlaymateSampleMotion", col=2, generator=gen["generator"], source=source["source"],
                   audio_features=features["audio_features"], emotion="happy")
    edit = g.add("PlaymateEditPortraitVideo", col=2, liveportrait=lp["liveportrait"], images=parts["images"],
                 motion=motion["motion"], audio=parts["audio"])
    _video_out(g, 3, edit["images"], edit["fps"], edit["audio"], "playmate/video_edit", stacked=True)
    _note(g, 1, "Edits a portrait video instead of animating a photo: motion is sampled from the video's own "
          "speech with an emotion, and every frame takes that motion's expression change on top of its "
          "own, keeping the video's head movement (head_rotation off) and its background; the face is "
          "pasted back into each full frame. Audio Features takes the video's fps, so motion frame i edits "
          "video frame i; the output is as long as the shorter of the two. Source Face reads the first "
          "frame (the motion's reference).", GENERATOR_NOTE)


# Workflow id (the API twin's file name) -> (title: the template's file name, shown as its title
# in the template browser, builder).  The numbers order the templates, the main workflow first.
WORKFLOWS = {
    "playmate_image_audio_to_video": ("Playmate 01 - Photo and speech to talking video", image_audio_to_video),
    "playmate_all_in_one": ("Playmate 02 - All in one node", all_in_one),
    "playmate_emotion_sweep": ("Playmate 03 - Three emotions side by side", emotion_sweep),
    "playmate_video_driven": ("Playmate 04 - Animate a photo with a driving video", video_driven),
    "playmate_eye_lip_retargeting": ("Playmate 05 - Eye and lip control", eye_lip_retargeting),
    "playmate_paste_back_full_photo": ("Playmate 06 - Paste the face back into the full photo",
                                       paste_back_full_photo),
    "playmate_long_audio": ("Playmate 07 - Long speech straight to a video file", long_audio),
    "playmate_two_faces": ("Playmate 08 - Two faces in one photo", two_faces),
    "playmate_expression_editor": ("Playmate 09 - Expression editor", expression_editor),
    "playmate_portrait_video_edit": ("Playmate 10 - Edit a portrait video", portrait_video_edit),
}


# ---------------------------------------------------------------------------------------------
# Thumbnails


THUMB_BG = (30, 30, 30)
THUMB_NODE = (58, 58, 58)
THUMB_TITLE = {"input": (46, 110, 70), "model": (52, 84, 140), "playmate": (104, 70, 140),
               "output": (150, 96, 40), "note": (102, 85, 51), "other": (84, 84, 84)}
THUMB_LINK = {"IMAGE": (100, 181, 246), "MASK": (129, 199, 132), "AUDIO": (230, 190, 90), "VIDEO": (230, 120, 90),
              "FLOAT": (170, 238, 136), "INT": (170, 238, 136)}
THUMB_LINK_DEFAULT = (160, 160, 200)
SLOT_H = 20


def _node_kind(node_type):
    if node_type in MEDIA_WIDGETS:
        return "input"
    if node_type.startswith("PlaymateLoad"):
        return "model"
    if node_type in ("Note", "MarkdownNote"):
        return "note"
    if node_type.startswith("Save") or node_type.startswith("Preview") or node_type == "CreateVideo":
        return "output"
    return "playmate" if node_type.startswith("Playmate") else "other"


def thumbnail_spec(ui, title, info):
    """Everything a thumbnail is drawn from (JSON data): the workflow's title, its groups, links
    (from output slot to input socket) and nodes (kind, title, box)."""
    nodes = {n["id"]: n for n in ui["nodes"]}
    boxes = [[_node_kind(n["type"]), n.get("title") or info.get(n["type"], {}).get("display_name") or n["type"],
              n["pos"][0], n["pos"][1] - NODE_TITLE_H, n["size"][0], n["size"][1] + NODE_TITLE_H] for n in ui["nodes"]]
    links = []
    for _, src, slot, dst, index, link_type in ui["links"]:
        a, b = nodes[src], nodes[dst]
        links.append([link_type, a["pos"][0] + a["size"][0], a["pos"][1] + (slot + 0.5) * SLOT_H,
                      b["pos"][0], b["pos"][1] + (index + 0.5) * SLOT_H])
    groups = [[g["title"]] + list(g["bounding"]) for g in ui["groups"]]
    return {"title": title, "size": THUMB_SIZE, "groups": groups, "links": links, "nodes": boxes}


def _font(size):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the bitmap font
        return ImageFont.load_default()


def _fit_text(draw, text, font, width):
    """``text`` cut (with an ellipsis) to ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..." if text else ""


def _wrap(draw, text, font, width):
    lines, line = [], ""
    for word in text.split():
        trial = (line + " " + word).strip()
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def render_thumbnail(spec):
    """The thumbnail image (PIL, RGB): the title on top, below it the graph fitted into the rest,
    drawn like the editor draws it (groups, then links as bezier curves, then nodes)."""
    from PIL import Image, ImageDraw
    size = spec["size"]
    image = Image.new("RGB", (size, size), THUMB_BG)
    draw = ImageDraw.Draw(image)
    number, _, name = spec["title"].partition(" - ")
    draw.text((16, 12), number, font=_font(18), fill=(150, 150, 150))
    title_font = _font(30)
    y = 36
    for line in _wrap(draw, name or number, title_font, size - 32)[:2]:
        draw.text((16, y), line, font=title_font, fill=(235, 235, 235))
        y += 36
    top = y + 12
    boxes = [(x, y0, x + w, y0 + h) for _, _, x, y0, w, h in spec["nodes"]]
    boxes += [(x, y0, x + w, y0 + h) for _, x, y0, w, h in spec["groups"]]
    left, upper = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, lower = max(b[2] for b in boxes), max(b[3] for b in boxes)
    area = (size - 24, size - top - 12)
    k = min(area[0] / (right - left), area[1] / (lower - upper))
    ox = 12 + (area[0] - k * (right - left)) / 2 - k * left
    oy = top + (area[1] - k * (lower - upper)) / 2 - k * upper

    def at(x, y):
        return ox + k * x, oy + k * y

    label_font = _font(10)
    for title, x, y0, w, h in spec["groups"]:
        draw.rectangle([at(x, y0), at(x + w, y0 + h)], fill=(40, 56, 70), outline=(63, 120, 158), width=2)
    for link_type, x0, y0, x1, y1 in spec["links"]:
        d = 0.25 * math.hypot(x1 - x0, y1 - y0)
        points = []
        for i in range(33):
            t = i / 32
            u = 1 - t
            x = u ** 3 * x0 + 3 * u * u * t * (x0 + d) + 3 * u * t * t * (x1 - d) + t ** 3 * x1
            y = u ** 3 * y0 + 3 * u * u * t * y0 + 3 * u * t * t * y1 + t ** 3 * y1
            points.append(at(x, y))
        draw.line(points, fill=THUMB_LINK.get(link_type, THUMB_LINK_DEFAULT), width=2)
    bar = max(4, k * NODE_TITLE_H)
    for kind, title, x, y0, w, h in spec["nodes"]:
        (x0, y0s), (x1, y1s) = at(x, y0), at(x + w, y0 + h)
        draw.rectangle([x0, y0s, x1, y1s], fill=THUMB_TITLE["note"] if kind == "note" else THUMB_NODE,
                       outline=(20, 20, 20))
        draw.rectangle([x0, y0s, x1, y0s + bar], fill=THUMB_TITLE[kind])
        text = _fit_text(draw, title, label_font, x1 - x0 - 4)
        if text:
            draw.text((x0 + 2, y0s + bar + 2), text, font=label_font, fill=(225, 225, 225))
    return image


def thumbnail_stamp(spec):
    """Hash of the spec and of the drawing code: equal stamps, the same picture."""
    code = "".join(inspect.getsource(f) for f in (render_thumbnail, _wrap, _fit_text, _font))
    text = json.dumps([spec, code, THUMB_BG, THUMB_NODE, THUMB_TITLE, THUMB_LINK], sort_keys=True)
    return "playmate-thumbnail " + hashlib.sha256(text.encode("utf-8")).hexdigest()


def thumbnail_jpeg(spec):
    buffer = io.BytesIO()
    render_thumbnail(spec).save(buffer, "JPEG", quality=88, comment=thumbnail_stamp(spec).encode("ascii"))
    return buffer.getvalue()


def stamp_of(path):
    """The stamp stored in a thumbnail file ("" when there is none)."""
    from PIL import Image
    with Image.open(path) as image:
        comment = image.info.get("comment", b"")
    return comment.decode("ascii", "replace") if isinstance(comment, bytes) else str(comment)


# ---------------------------------------------------------------------------------------------
# Building and writing


def ui_path(name):
    """The editor workflow of workflow id ``name`` (its template title as file name)."""
    return UI_DIR / (WORKFLOWS[name][0] + ".json")


def thumbnail_path(name):
    return UI_DIR / (WORKFLOWS[name][0] + ".jpg")


def api_path(name):
    return API_DIR / (name + ".json")


def build_all(info=None, files=None):
    """``{name: (ui workflow, api prompt)}`` for every workflow, built in memory."""
    if info is None:
        info, files = node_definitions()
    built = {}
    for name, (title, describe) in WORKFLOWS.items():
        graph = Graph(name, info, files, title)
        describe(graph)
        built[name] = (to_ui(graph), to_api(graph))
    return built


def expected_files(built=None, info=None):
    """``{path: text}`` of every generated JSON file and ``{path: thumbnail spec}`` of every thumbnail."""
    if built is None or info is None:
        info, files = node_definitions()
        built = build_all(info, files) if built is None else built
    texts, thumbs = {}, {}
    for name, (ui, api) in built.items():
        texts[ui_path(name)] = dumps(ui)
        texts[api_path(name)] = dumps(api)
        thumbs[thumbnail_path(name)] = thumbnail_spec(ui, WORKFLOWS[name][0], info)
    return texts, thumbs


def stale_files(texts, thumbs):
    """The generated files that are missing or differ (a thumbnail: by its stamp)."""
    stale = [p for p, text in texts.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    return stale + [p for p, spec in thumbs.items() if not p.is_file() or stamp_of(p) != thumbnail_stamp(spec)]


def extra_files(texts, thumbs):
    """Files in the generated folders that build.py does not write."""
    present = set(UI_DIR.glob("*.json")) | set(UI_DIR.glob("*.jpg")) | set(UI_DIR.glob("*.webp"))
    present |= set(API_DIR.glob("*.json")) | set((ROOT / "workflows").glob("*.json"))
    return sorted(present - set(texts) - set(thumbs))


def validation_errors(built, info, files):
    errors = []
    for name, (ui, api) in built.items():
        errors += ["%s (UI): %s" % (name, e) for e in validate_ui_workflow(ui, info, files)]
        errors += ["%s (API): %s" % (name, e) for e in validate_api_workflow(api, info, files)]
    return errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that are missing or out of date")
    args = parser.parse_args(argv)
    info, files = node_definitions()
    built = build_all(info, files)
    errors = validation_errors(built, info, files)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    texts, thumbs = expected_files(built, info)
    stale = stale_files(texts, thumbs)
    extra = extra_files(texts, thumbs)
    for path in extra:
        print("not generated by build.py (delete it if obsolete): %s" % path.relative_to(ROOT), file=sys.stderr)
    if args.check:
        for path in stale:
            print("%s: %s" % ("out of date" if path.is_file() else "missing", path.relative_to(ROOT)), file=sys.stderr)
        return 1 if stale or extra else 0
    UI_DIR.mkdir(parents=True, exist_ok=True)
    API_DIR.mkdir(parents=True, exist_ok=True)
    for path in stale:
        if path in thumbs:
            path.write_bytes(thumbnail_jpeg(thumbs[path]))
        else:
            path.write_text(texts[path], encoding="utf-8")
    total = len(texts) + len(thumbs)
    print("%d workflows: %d files written, %d unchanged" % (len(built), len(stale), total - len(stale)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
