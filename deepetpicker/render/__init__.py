"""Slices and pictures: :mod:`.slices` holds the slice geometry, contrast and class colours
that the viewer and the pictures share; :mod:`.pictures` draws picks on slices with
matplotlib (imported only there) for reports, the demo and the documentation."""

from deepetpicker.render.pictures import (
    MASK_COLOUR,
    draw_circles,
    draw_mask,
    render_picks_png,
)
from deepetpicker.render.slices import (
    PALETTE,
    VIEW_AXES,
    VIEWS,
    circle_sections,
    class_colour,
    inside_volume,
    percentile_limits,
    pick_at,
    slice_to_volume,
    view_axes,
    volume_to_slice,
)

__all__ = ["MASK_COLOUR", "PALETTE", "VIEWS", "VIEW_AXES", "circle_sections", "class_colour",
           "draw_circles", "draw_mask", "inside_volume", "percentile_limits", "pick_at",
           "render_picks_png", "slice_to_volume", "view_axes", "volume_to_slice"]
