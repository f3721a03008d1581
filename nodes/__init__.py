"""Thin ComfyUI adapters over the playmate library, one module per concern."""

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
