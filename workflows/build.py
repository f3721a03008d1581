"""Generates the example workflows: editor format (``workflows/*.json``) and API format (``workflows/api/*.json``).

Each workflow is a short Python function below that adds nodes and links to a :class:`Graph`.
Widget values come from the node definitions themselves (our live ``INPUT_TYPES`` through
``workflows/validate.object_info_from_mappings``, the core nodes from the captured
``workflows/data/comfy_core_object_info.json``): a widget gets its declared default unless the
workflow overrides it, so the files follow every change of a default, range or input name.
Combos that list the files of one installation (images, audio, models) have no usable
default and must be given by the workflow.

Usage::

    python workflows/build.py            # rewrite every workflow file (UI + API twin)
    python workflows/build.py --check    # exit 1 if a file is missing or out of date

Editor format: version 0.4 as ComfyUI frontend 1.27 saves it ("compressed" widget inputs: a node
lists its socket inputs in definition order, then only the widget inputs that are linked, each
with ``widget: {name}``; optional inputs carry ``shape: 7``).  ``widgets_values`` follows
``validate.ui_widget_slots`` (seed widgets are followed by their control value, here always
"fixed" so that a workflow is reproducible).  Notes are core ``Note`` nodes (editor only, left out
of the API format).  API format: ``{id: {"inputs", "class_type", "_meta": {"title"}}}``, what the
editor's "Export (API)" writes; a link is ``[node id, output index]``.

Layout: every node sits in a column (``col``); the nodes of a column stack downwards in the order
they were added, and a node given ``align=other`` starts no higher than ``other`` (rows of a
repeated chain line up).  Columns are as wide as their widest node.  Sizes are estimates from the
socket and widget counts (the editor enlarges a node that is too small on load).
"""

import argparse
import json
import math
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI_DIR = ROOT / "workflows"
API_DIR = UI_DIR / "api"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nodes.loaders import DEFAULT_ENCODER, DITTO_CHOICE as DITTO  # noqa: E402
from workflows.validate import (FRONTEND_NODES, UPLOAD_FLAGS, load_core_object_info,  # noqa: E402
                                object_info_from_mappings, type_name, ui_widget_slots, validate_api_workflow,
                                validate_ui_workflow)

# Combos of our nodes whose choices are files of one installation (see validate.py: "file inputs").
PLAYMATE_FILE_INPUTS = {"PlaymateLoadMotionGenerator": ["generator"], "Playmate": ["generator"],
                        "PlaymateLoadAudioEncoder": ["encoder"], "PlaymateLoadMotion": ["motion_file"]}

# Example inputs (example_media/ ships astronaut.jpg and speech.wav; the others are the user's own).
PORTRAIT = "astronaut.jpg"
SPEECH = "speech.wav"
LONG_SPEECH = "long_speech.wav"
DRIVING_VIDEO = "driving.mp4"
PORTRAIT_VIDEO = "talking_portrait.mp4"
GROUP_PHOTO = "two_people.jpg"
# The public generator with emotion control (downloads on first use); Playmate checkpoints are the
# user's own (trained with `python -m playmate.train`), JoyVASA has no emotion control.

NOTE_COLOR, NOTE_BGCOLOR = "#432", "#653"
GROUP_COLOR = "#3f789e"
NODE_TITLE_H = 30          # the title bar sits above a node's pos
GROUP_TITLE_H = 34
GROUP_PAD = 10
NODE_GAP = 50              # vertical gap between stacked nodes (title bar included)
GROUP_GAP = 90             # ... when the next node is in another group
COLUMN_GAP = 70
ORIGIN = (0, 0)
FIXED_SIZES = {"LoadImage": (320, 330), "LoadVideo": (320, 330), "LoadAudio": (320, 136),
               "SaveVideo": (360, 330), "SaveImage": (320, 330), "PreviewImage": (320, 300)}
NODE_WIDTH = 320
NOTE_WIDTH = 340
VIEW = (1600.0, 900.0)     # canvas size extra.ds is fitted to


# ---------------------------------------------------------------------------------------------
# Node definitions


def node_definitions():
    """``(object_info, file_inputs)``: the captured core nodes plus our live node classes."""
    import nodes
    core, core_files = load_core_object_info()
    ours = object_info_from_mappings(nodes.NODE_CLASS_MAPPINGS, nodes.NODE_DISPLAY_NAME_MAPPINGS)
    return {**core, **ours}, {**core_files, **PLAYMATE_FILE_INPUTS}


def liveportrait_models():
    """``models`` entries of the editor's missing-model check: the LivePortrait safetensors that
    Load LivePortrait downloads into models/liveportrait (the ComfyUI-LivePortraitKJ layout)."""
    from playmate.hub import Remote
    from playmate.liveportrait.loader import LIVEPORTRAIT_FILES, SAFETENSORS_REPO
    return [{"name": stem + ".safetensors", "url": Remote(SAFETENSORS_REPO, stem + ".safetensors").url,
             "directory": "liveportrait"} for stem in LIVEPORTRAIT_FILES]


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

    def __init__(self, name, info, files):
        self.name, self.info, self.files = name, info, files
        self.nodes, self.groups, self.models = [], [], []

    def add(self, node_type, col, align=None, title=None, **values):
        """A node of ``node_type`` in column ``col`` (not above node ``align``); ``values`` are
        widget overrides or :class:`Out` links."""
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
        node = Node(self, len(self.nodes) + 1, node_type, col, align, title, values)
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

    left = min([n.pos[0] for n in graph.nodes] + [g["bounding"][0] for g in groups])
    top = min([n.pos[1] - NODE_TITLE_H for n in graph.nodes] + [g["bounding"][1] for g in groups])
    right = max(n.pos[0] + n.size[0] for n in graph.nodes)
    bottom = max(n.pos[1] + n.size[1] for n in graph.nodes)
    scale = round(min(1.0, VIEW[0] / (right - left + 80), VIEW[1] / (bottom - top + 80)), 2)
    workflow = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "comfyui-playmate/workflows/" + graph.name)),
        "revision": 0,
        "last_node_id": max(n.id for n in graph.nodes),
        "last_link_id": len(links),
        "nodes": records,
        "links": [[i, src.id, slot, dst.id, index, type_name(t)] for i, src, slot, dst, index, t in links],
        "groups": groups,
        "config": {},
        "extra": {"ds": {"scale": scale, "offset": [round(40 / scale - left), round(40 / scale - top)]}},
        "version": 0.4,
    }
    if graph.models:
        workflow["models"] = graph.models
    return workflow


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


def _models_and_inputs(g, photo=PORTRAIT, speech=SPEECH):
    """LoadImage + LoadAudio (column 0) and the three loaders (column 1), grouped."""
    image = g.add("LoadImage", col=0, title="Portrait", image=photo)
    audio = g.add("LoadAudio", col=0, title="Speech", audio=speech)
    g.group("Inputs", image, audio)
    lp = g.add("PlaymateLoadLivePortrait", col=1)
    gen = g.add("PlaymateLoadMotionGenerator", col=1, generator=DITTO)
    enc = g.add("PlaymateLoadAudioEncoder", col=1, encoder=DEFAULT_ENCODER)
    g.group("Models", lp, gen, enc)
    g.models = liveportrait_models()
    return image, audio, lp, gen, enc


def _face_and_speech(g, lp, image, audio, enc, col=2):
    source = g.add("PlaymateSource", col=col, liveportrait=lp["liveportrait"], image=image["IMAGE"])
    features = g.add("PlaymateAudioFeatures", col=col, audio=audio["AUDIO"], audio_encoder=enc["audio_encoder"])
    return source, features


def _video_out(g, col, images, fps, audio, prefix, align=None, title=None):
    """CreateVideo (column ``col``) -> SaveVideo (next column), in one row."""
    video = g.add("CreateVideo", col=col, align=align, images=images, fps=fps, **({"audio": audio} if audio else {}))
    return video, g.add("SaveVideo", col=col + 1, align=video, title=title, video=video["VIDEO"],
                        filename_prefix=prefix)


GENERATOR_NOTE = ("Load Motion Generator: 'ditto (public, auto-download)' has 8 emotions and downloads into "
                  "models/ditto on first use; 'joyvasa' has no emotion control; a Playmate checkpoint "
                  "(models/playmate/*.safetensors) is your own. LivePortrait, the Wav2Vec2 encoder and the "
                  "MediaPipe face model also download on first use when online (else the error names the file, "
                  "folder and URL).")


# ---------------------------------------------------------------------------------------------
# The workflows


def image_audio_to_video(g):
    image, audio, lp, gen, enc = _models_and_inputs(g)
    source, features = _face_and_speech(g, lp, image, audio, enc)
    g.add("PreviewImage", col=2, title="Face crop", images=source["crop"])
    motion = g.add("PlaymateSampleMotion", col=3, generator=gen["generator"], source=source["source"],
                   audio_features=features["audio_features"], emotion="happy")
    render = g.add("PlaymateRender", col=3, liveportrait=lp["liveportrait"], source=source["source"],
                   motion=motion["motion"], paste_back=True, audio=audio["AUDIO"])
    _video_out(g, 4, render["images"], render["fps"], render["audio"], "playmate/talking")
    g.note("Photo + speech -> talking video.\n"
           "1. Portrait: one clear, roughly frontal face. Speech: any length and sample rate.\n"
           "2. " + GENERATOR_NOTE + "\n"
           "3. Sample Motion: emotion and intensity; cfg_audio = lip-sync strength, cfg_emotion = emotion "
           "strength; same seed, same motion.\n"
           "4. Render: paste_back on = the full photo, off = the 512x512 face crop. Create Video takes the "
           "fps and the fitted audio from Render.", col=0, title="How to use")


def all_in_one(g):
    image = g.add("LoadImage", col=0, title="Portrait", image=PORTRAIT)
    audio = g.add("LoadAudio", col=0, title="Speech", audio=SPEECH)
    anim = g.add("Playmate", col=1, image=image["IMAGE"], audio=audio["AUDIO"], generator=DITTO,
                 paste_back=True)
    _video_out(g, 2, anim["images"], anim["fps"], anim["audio"], "playmate/all_in_one")
    g.models = liveportrait_models()
    g.note("One node from a portrait and speech to a talking video: it finds the face, samples motion from "
           "the audio, renders and pastes back (the same as the node chain in playmate_image_audio_to_video).\n"
           "The public Ditto generator (8 emotions) downloads into models/ditto on first use.",
           col=1, title="How to use")


def emotion_sweep(g):
    image, audio, lp, gen, enc = _models_and_inputs(g)
    source, features = _face_and_speech(g, lp, image, audio, enc)
    for emotion in ("neutral", "happy", "sad", "surprised"):
        motion = g.add("PlaymateSampleMotion", col=3, title="Sample Motion: " + emotion,
                       generator=gen["generator"], source=source["source"],
                       audio_features=features["audio_features"], emotion=emotion)
        render = g.add("PlaymateRender", col=4, align=motion, title="Render: " + emotion,
                       liveportrait=lp["liveportrait"], source=source["source"], motion=motion["motion"],
                       paste_back=True, audio=audio["AUDIO"])
        _video_out(g, 5, render["images"], render["fps"], render["audio"], "playmate/emotion_" + emotion,
                   align=render, title="Save Video: " + emotion)
    g.note("One face and one speech clip, four emotions with the same seed: the videos differ only by the "
           "emotion condition. Raise cfg_emotion (or intensity) for stronger emotions; lip sync weakens as "
           "cfg_emotion grows.\n" + GENERATOR_NOTE, col=0, title="How to use")


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
    _video_out(g, 4, render["images"], parts["fps"], render["audio"], "playmate/video_driven")
    g.models = liveportrait_models()
    g.note("A driving video moves the portrait: each frame's expression and head pose, relative to the "
           "video's first frame (start the video with a neutral face looking at the camera). Smooth Motion "
           "removes tracking jitter (0 = off). The output keeps the video's frame rate and sound.",
           col=0, title="How to use")


def eye_lip_retargeting(g):
    image, audio, lp, gen, enc = _models_and_inputs(g)
    source, features = _face_and_speech(g, lp, image, audio, enc)
    motion = g.add("PlaymateSampleMotion", col=3, generator=gen["generator"], source=source["source"],
                   audio_features=features["audio_features"])
    eyes = g.add("PlaymateRetargetEyesLips", col=3, motion=motion["motion"], source=source["source"],
                 eye_mode="constant", eye_value=0.35)
    blinks = g.add("PlaymateBlinks", col=4, motion=eyes["motion"], source=source["source"], rate_per_minute=15.0)
    quiet = g.add("PlaymateSilenceRelax", col=4, motion=blinks["motion"], audio=audio["AUDIO"],
                  source=source["source"], mouth_expression="neutral")
    g.group("Eyes and lips", eyes, blinks, quiet)
    render = g.add("PlaymateRender", col=5, liveportrait=lp["liveportrait"], source=source["source"],
                   motion=quiet["motion"], paste_back=True, audio=audio["AUDIO"])
    _video_out(g, 6, render["images"], render["fps"], render["audio"], "playmate/eyes_lips")
    g.note("Eye and lip control on top of the generated motion:\n"
           "- Eyes & Lips Targets: eyes held open at 0.35 (constant); modes also scale, keyframe (curve), "
           "follow a driving video (driving-relative) or switch a target off.\n"
           "- Blinks: natural seeded blinks (rate, duration, minimum gap) through the eye target.\n"
           "- Close Mouth In Silence: closes the mouth and relaxes the lips where the speech pauses.\n"
           + GENERATOR_NOTE, col=0, title="How to use")


def paste_back_full_photo(g):
    image, audio, lp, gen, enc = _models_and_inputs(g)
    source, features = _face_and_speech(g, lp, image, audio, enc)
    motion = g.add("PlaymateSampleMotion", col=3, generator=gen["generator"], source=source["source"],
                   audio_features=features["audio_features"])
    render = g.add("PlaymateRender", col=3, liveportrait=lp["liveportrait"], source=source["source"],
                   motion=motion["motion"], paste_back=False, audio=audio["AUDIO"])
    paste = g.add("PlaymatePasteBack", col=4, source=source["source"], images=render["images"])
    _video_out(g, 5, paste["images"], render["fps"], render["audio"], "playmate/full_photo")
    g.note("Render makes 512x512 face crops (paste_back off); Paste Back puts them into the full-resolution "
           "photo with a feathered face mask. Connect your own MASK (in photo space) to Paste Back's mask "
           "input to choose what moves; its mask output is the mask used. Chain Paste Back nodes through "
           "'background' to animate several faces (see playmate_two_faces).\n" + GENERATOR_NOTE,
           col=0, title="How to use")


def long_audio(g):
    image, audio, lp, gen, enc = _models_and_inputs(g, speech=LONG_SPEECH)
    source, features = _face_and_speech(g, lp, image, audio, enc)
    motion = g.add("PlaymateSampleMotion", col=3, generator=gen["generator"], source=source["source"],
                   audio_features=features["audio_features"])
    blinks = g.add("PlaymateBlinks", col=3, motion=motion["motion"], source=source["source"])
    g.add("PlaymateRenderToVideo", col=4, liveportrait=lp["liveportrait"], source=source["source"],
          motion=blinks["motion"], paste_back=True, batch_size=16, audio=audio["AUDIO"],
          filename_prefix="playmate/long_audio")
    g.note("For minutes of speech: Render To Video File streams frame batches straight into an h264 + aac "
           "mp4 in the output folder, so memory stays flat however long the audio (Render + Create Video "
           "keep every frame in memory). The file's path is shown on the node.\n" + GENERATOR_NOTE,
           col=0, title="How to use")


def two_faces(g):
    image, audio, lp, gen, enc = _models_and_inputs(g, photo=GROUP_PHOTO)
    features = g.add("PlaymateAudioFeatures", col=2, audio=audio["AUDIO"], audio_encoder=enc["audio_encoder"])
    background, renders = None, []
    for face, emotion, seed in ((0, "happy", 0), (1, "neutral", 1)):
        source = g.add("PlaymateSource", col=2, title="Source Face %d" % face,
                       liveportrait=lp["liveportrait"], image=image["IMAGE"], face_index=face,
                       face_order="left-to-right")
        motion = g.add("PlaymateSampleMotion", col=3, align=source, title="Sample Motion: face %d" % face,
                       generator=gen["generator"], source=source["source"],
                       audio_features=features["audio_features"], emotion=emotion, seed=seed)
        render = g.add("PlaymateRender", col=4, align=motion, title="Render: face %d" % face,
                       liveportrait=lp["liveportrait"], source=source["source"], motion=motion["motion"],
                       paste_back=False, audio=audio["AUDIO"])
        paste = g.add("PlaymatePasteBack", col=5, align=render, title="Paste Back: face %d" % face,
                      source=source["source"], images=render["images"],
                      **({"background": background} if background else {}))
        background = paste["images"]
        renders.append(render)
    _video_out(g, 6, background, renders[0]["fps"], renders[0]["audio"], "playmate/two_faces", align=paste)
    g.note("Two people in one photo: each Source Face picks one face (numbered left to right), gets its own "
           "motion and render, and the second Paste Back pastes into the first one's frames (its "
           "'background' input). Both faces follow the same speech here; give each its own Sample Motion "
           "settings (emotion, seed).\n" + GENERATOR_NOTE, col=0, title="How to use")


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
    _video_out(g, 4, moving["images"], moving["fps"], None, "playmate/expression", align=moving)
    g.models = liveportrait_models()
    g.note("Edit the expression of a photo without audio: sliders (smile, blink, wink, eyebrow, gaze, mouth "
           "shapes aaa/eee/woo, head pitch/yaw/roll) on the source face's own expression. Top: one edited "
           "still. Bottom: 75 frames where the envelope fades the edit in and out (3 s at 25 fps). Connect "
           "a MOTION to edit a talking video instead.", col=0, title="How to use")


def portrait_video_edit(g):
    video = g.add("LoadVideo", col=0, title="Portrait video", file=PORTRAIT_VIDEO)
    parts = g.add("GetVideoComponents", col=0, video=video["VIDEO"])
    g.group("Input", video, parts)
    lp = g.add("PlaymateLoadLivePortrait", col=1)
    gen = g.add("PlaymateLoadMotionGenerator", col=1, generator=DITTO)
    enc = g.add("PlaymateLoadAudioEncoder", col=1, encoder=DEFAULT_ENCODER)
    g.group("Models", lp, gen, enc)
    g.models = liveportrait_models()
    source = g.add("PlaymateSource", col=2, title="Source Face (first frame)", liveportrait=lp["liveportrait"],
                   image=parts["images"])
    features = g.add("PlaymateAudioFeatures", col=2, audio=parts["audio"], fps=parts["fps"],
                     audio_encoder=enc["audio_encoder"])
    motion = g.add("PlaymateSampleMotion", col=3, generator=gen["generator"], source=source["source"],
                   audio_features=features["audio_features"], emotion="happy")
    edit = g.add("PlaymateEditPortraitVideo", col=3, liveportrait=lp["liveportrait"], images=parts["images"],
                 motion=motion["motion"], audio=parts["audio"])
    _video_out(g, 4, edit["images"], edit["fps"], edit["audio"], "playmate/video_edit")
    g.note("Edits a portrait video instead of animating a photo (LivePortrait's video-to-video mode): motion is "
           "sampled from the video's own speech with an emotion, and every frame takes that motion's expression "
           "change on top of its own, keeping the video's head movement (head_rotation off) and its background; "
           "the face is pasted back into each full frame.\n"
           "Audio Features takes the video's fps, so motion frame i edits video frame i; the output is as long as "
           "the shorter of the two. Source Face reads the first frame (the motion's reference).\n"
           + GENERATOR_NOTE, col=0, title="How to use")


WORKFLOWS = {
    "playmate_image_audio_to_video": image_audio_to_video,
    "playmate_all_in_one": all_in_one,
    "playmate_emotion_sweep": emotion_sweep,
    "playmate_video_driven": video_driven,
    "playmate_eye_lip_retargeting": eye_lip_retargeting,
    "playmate_paste_back_full_photo": paste_back_full_photo,
    "playmate_long_audio": long_audio,
    "playmate_two_faces": two_faces,
    "playmate_expression_editor": expression_editor,
    "playmate_portrait_video_edit": portrait_video_edit,
}


# ---------------------------------------------------------------------------------------------
# Building and writing


def build_all(info=None, files=None):
    """``{name: (ui workflow, api prompt)}`` for every workflow, built in memory."""
    if info is None:
        info, files = node_definitions()
    built = {}
    for name, describe in WORKFLOWS.items():
        graph = Graph(name, info, files)
        describe(graph)
        built[name] = (to_ui(graph), to_api(graph))
    return built


def expected_files(built=None):
    """``{path: text}`` of every generated file."""
    built = build_all() if built is None else built
    out = {}
    for name, (ui, api) in built.items():
        out[UI_DIR / (name + ".json")] = dumps(ui)
        out[API_DIR / (name + ".json")] = dumps(api)
    return out


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
    wanted = expected_files(built)
    stale = [p for p, text in wanted.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    extra = sorted((set(UI_DIR.glob("*.json")) | set(API_DIR.glob("*.json"))) - set(wanted))
    for path in extra:
        print("not generated by build.py (delete it if obsolete): %s" % path.relative_to(ROOT), file=sys.stderr)
    if args.check:
        for path in stale:
            print("%s: %s" % ("out of date" if path.is_file() else "missing", path.relative_to(ROOT)), file=sys.stderr)
        return 1 if stale or extra else 0
    API_DIR.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
    print("%d workflows: %d files written, %d unchanged" % (len(built), len(stale), len(wanted) - len(stale)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
