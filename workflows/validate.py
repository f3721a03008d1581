"""Offline checks of ComfyUI workflows against node definitions (no ComfyUI needed).

Node definitions use the JSON shape of ComfyUI's ``GET /object_info``: a dict
``{node_type: {"input": {"required"|"optional"|"hidden": {name: spec}}, "input_order": ...,
"output": [...], "output_name": [...], ...}}`` where ``spec`` is ``[type]`` or
``[type, options]``; ``type`` is a string (``"INT"``, ``"IMAGE"``, ``"IMAGE,MASK"``, ``"*"``,
``"COMBO"`` with ``options["options"]``) or a list of choices (a V1 combo).

* ``object_info_from_mappings`` builds that shape from live V1 node classes, the way
  ComfyUI 0.3.64 ``server.py`` (``node_info``) does.
* ``load_core_object_info`` reads the definitions of the core nodes our workflows use,
  captured from a live server (``workflows/data/comfy_core_object_info.json``, see
  ``tests/COMFYUI_LOCAL.md``).
* ``validate_ui_workflow`` checks an editor-format workflow (version 0.4, what the template
  browser loads); ``validate_api_workflow`` checks an API-format prompt (what ``POST /prompt``
  takes).  Both return a list of error strings; empty means valid.

Conventions mirrored from the frontend (comfyui-frontend-package 1.27.10) for ``widgets_values``:
one widget per widget input (INT, FLOAT, STRING, BOOLEAN, combo) without ``forceInput``, in
input order (required per ``input_order``, then optional), a widget keeps its slot in
``widgets_values`` even when its input is converted to a socket and linked; an INT input
named ``seed``/``noise_seed`` (unless ``control_after_generate`` is false) or with
``control_after_generate`` is followed by its control value (fixed/increment/decrement/
randomize); a combo with ``control_after_generate`` by a control value and a filter string.
Frontend-only widgets come last: ``audioUI`` on the core audio nodes (never written, so it
only shows as a ``null`` hole before a later widget) and the ``upload`` button of inputs with
``image_upload``/``video_upload``/``animated_image_upload``/``audio_upload``.

Combo inputs listing files of one installation (input folder, model folders) are "file
inputs": their value is only checked to be a non-empty string.  Inputs with an upload flag
are file inputs automatically; others are declared with ``file_inputs={node_type: [names]}``.

Command line (needs a running server; see tests/COMFYUI_LOCAL.md)::

    python workflows/validate.py dump-core http://127.0.0.1:8188
"""

import json
import sys
import urllib.request
from pathlib import Path

CORE_OBJECT_INFO = Path(__file__).resolve().parent / "data" / "comfy_core_object_info.json"

CORE_NODES = ("LoadImage", "LoadAudio", "SaveAudio", "PreviewImage", "SaveImage", "CreateVideo",
              "SaveVideo", "GetVideoComponents", "LoadVideo", "ImageScale", "PreviewAudio",
              "AudioEncoderLoader", "AudioEncoderEncode", "MaskToImage")

# Combos of the core nodes whose choices are the files of one installation.
CORE_FILE_INPUTS = {"LoadImage": ["image"], "LoadAudio": ["audio"], "LoadVideo": ["file"],
                    "AudioEncoderLoader": ["audio_encoder_name"]}

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
SEED_NAMES = ("seed", "noise_seed")
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
COMBO_CONTROL_VALUES = CONTROL_VALUES + ("increment-wrap",)
UPLOAD_FLAGS = ("image_upload", "video_upload", "animated_image_upload", "audio_upload")
# The frontend's Comfy.AudioWidget extension adds an "audioUI" widget to these node types.
AUDIO_UI_NODES = frozenset({"LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus"})
# Node types that exist only in the editor (never sent to the server).
FRONTEND_NODES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
# Node fields the frontend's schema (zComfyNode) requires before it loads a workflow.
UI_NODE_FIELDS = ("id", "type", "pos", "size", "flags", "order", "mode", "properties")
MODE_MUTED, MODE_BYPASSED = 2, 4


# ---------------------------------------------------------------------------------------------
# Node definitions


def object_info_from_mappings(node_class_mappings, display_names=None,
                              python_module="custom_nodes.ComfyUI-Playmate"):
    """``GET /object_info`` entries for V1 node classes, computed from the live classes.

    Same keys, order and JSON round trip (tuples become lists) as ComfyUI 0.3.64's
    ``server.py``; ``python_module`` stands for the ``RELATIVE_PYTHON_MODULE`` that
    ComfyUI's loader sets (``custom_nodes.<folder name>``).  A class that cannot be
    serialised raises here as it would make the server log an error.
    """
    display_names = display_names or {}
    out = {}
    for node_type, cls in node_class_mappings.items():
        if hasattr(cls, "GET_NODE_INFO_V1"):  # V3 node class
            info = cls.GET_NODE_INFO_V1()
        else:
            inputs = cls.INPUT_TYPES()
            info = {
                "input": inputs,
                "input_order": {key: list(value.keys()) for key, value in inputs.items()},
                "output": cls.RETURN_TYPES,
                "output_is_list": getattr(cls, "OUTPUT_IS_LIST", [False] * len(cls.RETURN_TYPES)),
                "output_name": getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES),
                "name": node_type,
                "display_name": display_names.get(node_type, node_type),
                "description": getattr(cls, "DESCRIPTION", ""),
                "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", python_module),
                "category": getattr(cls, "CATEGORY", "sd"),
                "output_node": getattr(cls, "OUTPUT_NODE", False) is True,
            }
            if hasattr(cls, "OUTPUT_TOOLTIPS"):
                info["output_tooltips"] = cls.OUTPUT_TOOLTIPS
            if getattr(cls, "DEPRECATED", False):
                info["deprecated"] = True
            if getattr(cls, "EXPERIMENTAL", False):
                info["experimental"] = True
            if hasattr(cls, "API_NODE"):
                info["api_node"] = cls.API_NODE
        out[node_type] = json.loads(json.dumps(info))
    return out


def load_core_object_info(path=CORE_OBJECT_INFO):
    """``(object_info, file_inputs)`` of the core nodes captured from a live server."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data["nodes"], data["file_inputs"]


def type_name(spec_type):
    """Socket type of an input/output type: a list of choices is a ``"COMBO"``."""
    return "COMBO" if isinstance(spec_type, (list, tuple)) else str(spec_type)


def types_compatible(output_type, input_type):
    """ComfyUI's link rule: ``*`` matches anything, else the comma-separated types overlap."""
    out_t, in_t = type_name(output_type), type_name(input_type)
    if out_t == "*" or in_t == "*" or out_t == in_t:
        return True
    return bool({t.strip() for t in out_t.split(",")} & {t.strip() for t in in_t.split(",")})


def _input_specs(info):
    """``{name: (category, type, options)}`` for the required, optional and hidden inputs."""
    specs = {}
    for category in ("required", "optional", "hidden"):
        for name, spec in (info.get("input", {}).get(category) or {}).items():
            if isinstance(spec, str):  # hidden inputs are written as bare strings
                spec = [spec]
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            specs[name] = (category, spec[0], options)
    return specs


def _ordered_inputs(info):
    """Required then optional input names, in ``input_order`` like the frontend."""
    order = info.get("input_order") or {}
    names = []
    for category in ("required", "optional"):
        declared = list((info.get("input", {}).get(category) or {}).keys())
        names += [n for n in order.get(category, declared) if n in declared]
        names += [n for n in declared if n not in names]
    return names


def _is_widget(spec_type, options):
    return type_name(spec_type) in WIDGET_TYPES and not options.get("forceInput")


def _combo_choices(spec_type, options):
    return list(spec_type) if isinstance(spec_type, (list, tuple)) else list(options.get("options") or [])


def file_inputs_of(object_info, declared=None):
    """``{node_type: set(names)}``: declared file inputs plus every combo with an upload flag."""
    result = {node: set(names) for node, names in (declared or {}).items()}
    for node_type, info in object_info.items():
        for name, (_, spec_type, options) in _input_specs(info).items():
            if type_name(spec_type) == "COMBO" and any(options.get(f) for f in UPLOAD_FLAGS):
                result.setdefault(node_type, set()).add(name)
    return result


def ui_widget_slots(node_type, info):
    """The ``widgets_values`` layout of a node: ``[(kind, input name), ...]``.

    ``kind`` is ``"value"`` (the input's value), ``"control"`` (control_after_generate
    mode), ``"filter"`` (combo control filter string) or ``"ui"`` (frontend-only widget).
    """
    specs = _input_specs(info)
    slots = []
    for name in _ordered_inputs(info):
        _, spec_type, options = specs[name]
        if not _is_widget(spec_type, options):
            continue
        slots.append(("value", name))
        control = options.get("control_after_generate")
        if type_name(spec_type) == "INT":
            if control is None:
                control = name in SEED_NAMES
            if control:
                slots.append(("control", name))
        elif type_name(spec_type) == "COMBO" and control:
            slots += [("control", name), ("filter", name)]
    if node_type in AUDIO_UI_NODES:
        slots.append(("ui", "audioUI"))
    required = info.get("input", {}).get("required") or {}
    if any(type_name(specs[n][1]) == "COMBO" and any(specs[n][2].get(f) for f in UPLOAD_FLAGS)
           for n in required):
        slots.append(("ui", "upload"))
    return slots


# ---------------------------------------------------------------------------------------------
# Values


def _value_error(spec_type, options, value, is_file):
    """Why ``value`` is not acceptable for an input, or None."""
    kind = type_name(spec_type)
    if kind == "INT":
        if isinstance(value, bool) or not isinstance(value, int):
            return "expected an integer, got %r" % (value,)
    elif kind == "FLOAT":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "expected a number, got %r" % (value,)
    elif kind == "STRING":
        if not isinstance(value, str):
            return "expected a string, got %r" % (value,)
        return None
    elif kind == "BOOLEAN":
        if not isinstance(value, bool):
            return "expected true/false, got %r" % (value,)
        return None
    elif kind == "COMBO":
        if is_file:
            if not isinstance(value, str) or not value:
                return "expected a file name, got %r" % (value,)
            return None
        choices = _combo_choices(spec_type, options)
        if value not in choices:
            return "%r is not one of %s" % (value, choices)
        return None
    else:
        return "a %s input takes a link, not the value %r" % (kind, value)
    if "min" in options and value < options["min"]:
        return "%r is below the minimum %r" % (value, options["min"])
    if "max" in options and value > options["max"]:
        return "%r is above the maximum %r" % (value, options["max"])
    return None


# ---------------------------------------------------------------------------------------------
# API format (POST /prompt)


def validate_api_workflow(prompt, object_info, file_inputs=None):
    """Errors of an API-format prompt ``{node_id: {"class_type", "inputs"}}``; [] if valid.

    Checks what ComfyUI's ``validate_prompt`` checks before queueing (node types exist,
    required inputs given, linked node ids exist and output indexes are in range, link types
    match, values convert and respect min/max/choices, at least one output node) and more
    strictly: values must already have their type (no ``"5"`` for an INT), unknown and hidden
    input names are errors, links may not form a cycle.
    """
    if not isinstance(prompt, dict) or not prompt:
        return ["the prompt must be a non-empty JSON object {node_id: node}"]
    files = file_inputs_of(object_info, file_inputs)
    errors = []
    has_output = False
    for node_id, node in prompt.items():
        where = "node %s" % node_id
        if not isinstance(node, dict) or "class_type" not in node:
            errors.append("%s: has no class_type" % where)
            continue
        node_type = node["class_type"]
        where = "node %s (%s)" % (node_id, node_type)
        info = object_info.get(node_type)
        if info is None:
            errors.append("%s: unknown node type" % where)
            continue
        has_output = has_output or bool(info.get("output_node"))
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            errors.append("%s: inputs must be an object" % where)
            continue
        specs = _input_specs(info)
        for name, (category, _, _) in specs.items():
            if category == "required" and name not in inputs:
                errors.append("%s: required input '%s' is missing" % (where, name))
        for name, value in inputs.items():
            if name not in specs or specs[name][0] == "hidden":
                errors.append("%s: '%s' is not an input of this node" % (where, name))
                continue
            _, spec_type, options = specs[name]
            if isinstance(value, list):
                errors += _api_link_errors(prompt, object_info, where, name, spec_type, value)
                continue
            if isinstance(value, dict) and "__value__" in value:
                value = value["__value__"]
            problem = _value_error(spec_type, options, value, name in files.get(node_type, ()))
            if problem:
                errors.append("%s: input '%s': %s" % (where, name, problem))
    if not has_output:
        errors.append("the prompt has no output node (e.g. SaveVideo, SaveImage, PreviewImage)")
    errors += _api_cycle_errors(prompt)
    return errors


def _api_link_errors(prompt, object_info, where, name, spec_type, link):
    if len(link) != 2 or not isinstance(link[1], int) or isinstance(link[1], bool):
        return ["%s: input '%s': a link must be [node_id, output_index], got %r" % (where, name, link)]
    source_id, slot = str(link[0]), link[1]
    source = prompt.get(source_id)
    if not isinstance(source, dict):
        return ["%s: input '%s' links to node %s, which does not exist" % (where, name, source_id)]
    source_info = object_info.get(source.get("class_type"))
    if source_info is None:
        return []  # reported as an unknown node type
    outputs = source_info.get("output", [])
    if not 0 <= slot < len(outputs):
        return ["%s: input '%s' links to output %d of node %s (%s), which has %d outputs"
                % (where, name, slot, source_id, source["class_type"], len(outputs))]
    if not types_compatible(outputs[slot], spec_type):
        return ["%s: input '%s' takes %s but is linked to %s output %d of node %s (%s)"
                % (where, name, type_name(spec_type), type_name(outputs[slot]), slot, source_id,
                   source["class_type"])]
    return []


def _api_cycle_errors(prompt):
    """Errors for links that form a cycle (depth-first search over the link graph)."""
    upstream = {}
    for node_id, node in prompt.items():
        inputs = node.get("inputs", {}) if isinstance(node, dict) else {}
        upstream[node_id] = {str(v[0]) for v in (inputs.values() if isinstance(inputs, dict) else [])
                             if isinstance(v, list) and len(v) == 2 and str(v[0]) in prompt}
    state = {}  # node id -> 1 while on the stack, 2 when done

    def visit(node_id):
        state[node_id] = 1
        for up in upstream[node_id]:
            if state.get(up) == 1 or (up not in state and visit(up)):
                return True
        state[node_id] = 2
        return False

    for node_id in upstream:
        if node_id not in state and visit(node_id):
            return ["the links form a cycle through node %s" % node_id]
    return []


# ---------------------------------------------------------------------------------------------
# UI format (editor workflow, version 0.4)


def validate_ui_workflow(workflow, object_info, file_inputs=None):
    """Errors of an editor-format workflow (version 0.4); [] if valid.

    Checks the document shape the frontend requires, node types, ``widgets_values`` (count,
    order, types, ranges, choices, control values), node input/output sockets against the
    definitions, link records (ids, ends, slots, both ends referring back) and link types,
    and that required inputs of active nodes are linked or have a value.  Editor-only nodes
    (Note, MarkdownNote, Reroute, PrimitiveNode) are allowed; types are followed through
    Reroute nodes.  Subgraphs are not supported.
    """
    if not isinstance(workflow, dict):
        return ["the workflow must be a JSON object"]
    errors = []
    if workflow.get("version") != 0.4:
        errors.append("version must be 0.4 (the links-as-arrays format), got %r" % (workflow.get("version"),))
    for key in ("last_node_id", "last_link_id", "nodes", "links"):
        if key not in workflow:
            errors.append("missing top-level field '%s'" % key)
    if (workflow.get("definitions") or {}).get("subgraphs"):
        errors.append("the workflow uses subgraphs, which this validator does not check")
    nodes_list, links_list = workflow.get("nodes"), workflow.get("links")
    if not isinstance(nodes_list, list) or not isinstance(links_list, list):
        return errors + ["'nodes' and 'links' must be lists"]

    nodes = {}
    for node in nodes_list:
        if not isinstance(node, dict) or "id" not in node:
            errors.append("a node without an id: %r" % (node,))
            continue
        if node["id"] in nodes:
            errors.append("node id %r is used twice" % (node["id"],))
        nodes[node["id"]] = node
    links = {}
    for link in links_list:
        if not isinstance(link, list) or len(link) != 6:
            errors.append("a link must be [id, origin_id, origin_slot, target_id, target_slot, type], got %r" % (link,))
            continue
        if link[0] in links:
            errors.append("link id %r is used twice" % (link[0],))
        links[link[0]] = link
    errors += _ui_id_counter_errors(workflow, nodes, links)

    files = file_inputs_of(object_info, file_inputs)
    for node in nodes.values():
        errors += _ui_node_errors(node, object_info, links, files)
    for link in links.values():
        errors += _ui_link_errors(link, nodes, links, object_info)
    return errors


def _ui_id_counter_errors(workflow, nodes, links):
    errors = []
    last_node, last_link = workflow.get("last_node_id"), workflow.get("last_link_id")
    numeric_nodes = [i for i in nodes if isinstance(i, int)]
    if isinstance(last_node, int) and numeric_nodes and max(numeric_nodes) > last_node:
        errors.append("last_node_id %d is below the largest node id %d" % (last_node, max(numeric_nodes)))
    numeric_links = [i for i in links if isinstance(i, int)]
    if isinstance(last_link, int) and numeric_links and max(numeric_links) > last_link:
        errors.append("last_link_id %d is below the largest link id %d" % (last_link, max(numeric_links)))
    return errors


def _ui_node_errors(node, object_info, links, files):
    node_type = node.get("type")
    where = "node %s (%s)" % (node.get("id"), node_type)
    errors = ["%s: missing field '%s'" % (where, f) for f in UI_NODE_FIELDS if f not in node]
    inputs = node.get("inputs") or []
    for slot, socket in enumerate(inputs):
        link_id = socket.get("link")
        if link_id is not None:
            link = links.get(link_id)
            if link is None:
                errors.append("%s: input '%s' refers to link %r, which does not exist"
                              % (where, socket.get("name"), link_id))
            elif link[3] != node.get("id") or link[4] != slot:
                errors.append("%s: input '%s' refers to link %r, which ends at node %r slot %r"
                              % (where, socket.get("name"), link_id, link[3], link[4]))
    for slot, socket in enumerate(node.get("outputs") or []):
        for link_id in socket.get("links") or []:
            link = links.get(link_id)
            if link is None or link[1] != node.get("id") or link[2] != slot:
                errors.append("%s: output %d lists link %r, which does not start there" % (where, slot, link_id))
    if node_type in FRONTEND_NODES:
        return errors
    info = object_info.get(node_type)
    if info is None:
        return errors + ["%s: unknown node type" % where]

    specs = _input_specs(info)
    linked = {s.get("name") for s in inputs if s.get("link") is not None}
    extra_names = {name for kind, name in ui_widget_slots(node_type, info) if kind == "ui"}
    for socket in inputs:
        name = socket.get("name")
        if name in extra_names:
            continue
        if name not in specs or specs[name][0] == "hidden":
            errors.append("%s: has an input socket '%s' that the node does not define" % (where, name))
        elif not _is_widget(specs[name][1], specs[name][2]) and type_name(socket.get("type")) != type_name(specs[name][1]):
            errors.append("%s: input socket '%s' has type %s, the node defines %s"
                          % (where, name, type_name(socket.get("type")), type_name(specs[name][1])))
    defined_outputs = info.get("output", [])
    for slot, socket in enumerate(node.get("outputs") or []):
        if slot >= len(defined_outputs):
            errors.append("%s: has output %d, the node defines %d outputs" % (where, slot, len(defined_outputs)))
        elif type_name(socket.get("type")) != type_name(defined_outputs[slot]):
            errors.append("%s: output %d has type %s, the node defines %s"
                          % (where, slot, type_name(socket.get("type")), type_name(defined_outputs[slot])))

    errors += _ui_widget_errors(node, node_type, info, specs, linked, files.get(node_type, ()), where)
    if node.get("mode") not in (MODE_MUTED, MODE_BYPASSED):
        for name, (category, spec_type, options) in specs.items():
            if category == "required" and not _is_widget(spec_type, options) and name not in linked:
                errors.append("%s: required input '%s' is not connected" % (where, name))
    return errors


def _ui_widget_errors(node, node_type, info, specs, linked, file_names, where):
    slots = ui_widget_slots(node_type, info)
    values = node.get("widgets_values")
    if values is None:
        values = []
    if not isinstance(values, list):
        return ["%s: widgets_values must be a list" % where]
    needed = max((i + 1 for i, (kind, _) in enumerate(slots) if kind != "ui"), default=0)
    if not needed <= len(values) <= len(slots):
        layout = ", ".join(name if kind == "value" else "%s(%s)" % (kind, name) for kind, name in slots)
        return ["%s: widgets_values has %d values, expected %s for [%s]"
                % (where, len(values), needed if needed == len(slots) else "%d to %d" % (needed, len(slots)), layout)]
    errors = []
    for (kind, name), value in zip(slots, values):
        if kind == "control":
            choices = COMBO_CONTROL_VALUES if type_name(specs[name][1]) == "COMBO" else CONTROL_VALUES
            if value not in choices:
                errors.append("%s: the control value after '%s' is %r, expected one of %s"
                              % (where, name, value, list(choices)))
        elif kind == "filter":
            if not isinstance(value, str):
                errors.append("%s: the control filter after '%s' must be a string, got %r" % (where, name, value))
        elif kind == "value" and name not in linked:
            category, spec_type, options = specs[name]
            if value is None:
                if category == "required":
                    errors.append("%s: required input '%s' has no value" % (where, name))
                continue
            problem = _value_error(spec_type, options, value, name in file_names)
            if problem:
                errors.append("%s: widget '%s': %s" % (where, name, problem))
    return errors


def _ui_origin(link, nodes, links):
    """(node, output slot) a link's data comes from, followed back through Reroute nodes."""
    seen = set()
    node, slot = nodes.get(link[1]), link[2]
    while node is not None and node.get("type") == "Reroute" and node.get("id") not in seen:
        seen.add(node.get("id"))
        upstream = (node.get("inputs") or [{}])[0].get("link")
        if upstream not in links:
            break
        node, slot = nodes.get(links[upstream][1]), links[upstream][2]
    return node, slot


def _ui_link_errors(link, nodes, links, object_info):
    link_id, origin_id, origin_slot, target_id, target_slot, link_type = link
    where = "link %r" % (link_id,)
    origin, target = nodes.get(origin_id), nodes.get(target_id)
    if origin is None or target is None:
        return ["%s: connects node %r to node %r; %s does not exist"
                % (where, origin_id, target_id, origin_id if origin is None else target_id)]
    errors = []
    outputs, inputs = origin.get("outputs") or [], target.get("inputs") or []
    if not isinstance(origin_slot, int) or not 0 <= origin_slot < len(outputs):
        errors.append("%s: node %r has no output %r" % (where, origin_id, origin_slot))
    elif link_id not in (outputs[origin_slot].get("links") or []):
        errors.append("%s: output %d of node %r does not list it" % (where, origin_slot, origin_id))
    if not isinstance(target_slot, int) or not 0 <= target_slot < len(inputs):
        return errors + ["%s: node %r has no input %r" % (where, target_id, target_slot)]
    if inputs[target_slot].get("link") != link_id:
        errors.append("%s: input %d of node %r does not refer to it" % (where, target_slot, target_id))
    if errors:
        return errors

    source, source_slot = _ui_origin(link, nodes, links)
    source_info = object_info.get(source.get("type")) if source is not None else None
    target_info = object_info.get(target.get("type"))
    if source_info is None or target_info is None:
        return []  # editor-only node or unknown type (reported with the node)
    defined_outputs = source_info.get("output", [])
    if not 0 <= source_slot < len(defined_outputs):
        return []  # reported with the node
    out_type = defined_outputs[source_slot]
    name = inputs[target_slot].get("name")
    spec = _input_specs(target_info).get(name)
    if spec is None:
        return []  # reported with the node
    if not types_compatible(out_type, spec[1]):
        errors.append("%s: %s output %d of node %r (%s) goes to input '%s' of node %r (%s), which takes %s"
                      % (where, type_name(out_type), source_slot, source.get("id"), source.get("type"),
                         name, target_id, target.get("type"), type_name(spec[1])))
    if not types_compatible(out_type, link_type):
        errors.append("%s: is typed %s but carries %s" % (where, type_name(link_type), type_name(out_type)))
    return errors


# ---------------------------------------------------------------------------------------------
# Capturing the core definitions from a live server


def _get_json(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read().decode("utf-8"))


def dump_core_object_info(server_url, path=CORE_OBJECT_INFO):
    """Write the core node definitions of a running server to ``path`` (the CI stand-in)."""
    server_url = server_url.rstrip("/")
    stats = _get_json(server_url + "/system_stats")["system"]
    everything = _get_json(server_url + "/object_info")
    data = {
        "comfyui_version": stats["comfyui_version"],
        "frontend_version": stats.get("required_frontend_version"),
        "source": "GET /object_info of a live ComfyUI server (tests/COMFYUI_LOCAL.md); node "
                  "entries verbatim. file_inputs: combos listing the files of one installation.",
        "file_inputs": {k: v for k, v in CORE_FILE_INPUTS.items() if k in everything},
        "nodes": {name: everything[name] for name in CORE_NODES if name in everything},
    }
    missing = [name for name in CORE_NODES if name not in everything]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return missing


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "dump-core":
        sys.exit("usage: python workflows/validate.py dump-core http://127.0.0.1:8188")
    absent = dump_core_object_info(sys.argv[2])
    print("wrote %s%s" % (CORE_OBJECT_INFO, "; not on this server: %s" % absent if absent else ""))
