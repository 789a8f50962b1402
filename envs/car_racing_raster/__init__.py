"""CarRacing's 96x96 state frame, rasterised row by row without a 1000x800 canvas.

Gymnasium's ``CarRacing`` draws each observation on a 1000x800 pygame Surface
and shrinks it with ``pygame.transform.smoothscale``; moving those ~3 MB of
pixels several times per step is what costs. :func:`render_state_frame`
computes the very same 96x96 result one canvas row at a time, in a row of
1000 pixels that stays in the core's first-level cache, painted by exact
ports of the pygame-ce 2.5.8 C code the reference calls; only the previous
row and the 96 shrunk values per channel are kept for the shrink.

Ported C, integer arithmetic and rounding included (pygame-ce 2.5.8 sources):

* ``gfxdraw.aapolygon`` -> SDL_gfx ``aapolygonColor`` -> ``_aalineColor``
  (``_clipLine`` with its float32 slope, Wu lines with a 32-bit error
  accumulator, ``_putPixelAlpha``'s DEFAULT 32-bpp blend). Wu lines are
  sequential in C; here the pixels of one line on one row are computed in
  closed form (after ``n`` steps the accumulator is ``n * erradj`` modulo
  2**32 and the minor coordinate has advanced ``n * erradj >> 32`` times);
* ``gfxdraw.filled_polygon`` -> SDL_gfx ``filledPolygonColorMT`` (16.16
  fixed-point intersections, ``hlineColor`` with Sint16 ends);
* ``pygame.draw.polygon`` -> ``draw_fillpoly`` / ``draw_filltri``
  (float32 intersections, floor/ceil by intersection parity);
* ``pygame.transform.smoothscale`` shrinking, the SSE2 backend
  (``filter_shrink_X_SSE2`` then ``filter_shrink_Y_SSE2``: 14-bit
  fixed-point weights, ``mulhi`` truncation); its results differ from the
  GENERIC C backend, so the SSE2 arithmetic is what is reproduced.

Why rows: painter's order only matters where two operations touch the same
pixel, and pixels of different rows never interact, so evaluating every
operation on one row before the next gives the reference's pixels. Per row,
only the polygons whose vertex rows include it are visited; painting starts
at the last polygon whose fill covers the whole row (usually the background
square, or the indicator panel; what lies under it is never seen); polygon
spans are computed edge by edge for all rows at once (:func:`_gfx_span_table`).
Since consecutive rows differ only where an edge moved (about ten pixels a
row while driving), each row is compared with the one before, 64 pixels at
a time, and the X shrink recomputes just the ~10-pixel windows holding a
changed pixel; the Y shrink adds a value times the rows it lasted when it
changes (:func:`_shrink_row`). A panel row that paints the same spans as the
row before it, without score text, is not painted again at all.

Colours come in as ``0xRRGGBB`` (a 32-bit XRGB Surface's pixel, alpha 255),
and rows hold them so (int32); the shrink sums them packed ``r << 32 | g <<
16 | b`` (int64), three channels with one add. Polygons are flat vertex
arrays: polygon ``i`` has the vertices ``vx[start[i]:start[i + 1]]``, ``vy[...]`` (float64: the
Python floats the reference hands to pygame, converted to integers here as
pygame does) and colour ``color[i]``. :func:`paint_canvas` and
:func:`smoothscale_canvas` expose the painting and the shrink separately
for tests against pygame.

Modules: :mod:`.rows` (a canvas row's pixels and how they are painted, and the Numba
settings), :mod:`.polygons` (the ported polygon drawing, row by row), :mod:`.shrink`
(smoothscale's SSE2 shrink, row by row) and :mod:`.frame` (a whole frame, and the
two entry points the tests compare with pygame).
"""

from envs.car_racing_raster.frame import paint_canvas, render_state_frame, smoothscale_canvas

__all__ = [
    "paint_canvas",
    "render_state_frame",
    "smoothscale_canvas",
]
