"""Skeletons: layouts (joints, bones, centre, parts) and readers of real skeleton datasets."""

from .layouts import LAYOUTS, Layout, get_layout

__all__ = ["LAYOUTS", "Layout", "get_layout"]
