"""Quadruped morphologies: which leg segment changes, and the robot descriptions they give.

Every morphology is pybullet's own ``mjcf/ant.xml`` (the robot of ``AntBulletEnv-v0``)
with at most one capsule of one leg scaled about the joint it hangs from. The files in
``envs/assets/`` are generated from the installed ``pybullet_data`` by
:func:`morphology_xml` (run ``python -m envs.morphologies`` to rewrite them) and a test
checks that the committed files still equal what the generator gives, so the assets
cannot drift from the code or from pybullet's Ant.

The geom and body names of ``ant.xml`` do not say where a leg is. The Ant walks towards
+x and, seen from the direction of travel, +y is its left; every leg is a chain of three
capsules (hip ``aux_*_geom``, upper ``*_leg_geom``, lower ``*_ankle_geom``) pointing
diagonally outwards from the torso centre, so the sign of each capsule's ``fromto``
direction is the quadrant of its leg (lower-segment ``fromto`` end; the other geoms; the bodies):

- front left (+x, +y): ``left_ankle_geom`` (0.4, 0.4); ``aux_1_geom``, ``left_leg_geom``;
  bodies ``front_left_leg``, ``aux_1``, ``front_left_foot``.
- front right (+x, -y): ``fourth_ankle_geom`` (0.4, -0.4); ``aux_4_geom``,
  ``rightback_leg_geom``; bodies ``right_back_leg``, ``aux_4``, ``right_back_foot``.
- back left (-x, +y): ``right_ankle_geom`` (-0.4, 0.4); ``aux_2_geom``, ``right_leg_geom``;
  bodies ``front_right_leg``, ``aux_2``, ``front_right_foot``.
- back right (-x, -y): ``third_ankle_geom`` (-0.4, -0.4); ``aux_3_geom``, ``back_leg_geom``;
  bodies ``left_back_leg``, ``aux_3``, ``left_back_foot``.

Morphology names follow the physical position, never the ant.xml names: "damaged-right"
shortens ``fourth_ankle_geom`` (the front-right leg), exactly as the reference's
``ant_asym_right.xml`` does. The *lower segment* of a leg is its ``*_ankle_geom`` capsule
(0.4 * sqrt(2) = 0.566 m long between the cap centres, radius 0.08 m).

This module imports neither pybullet nor the environment code, so ``envs.MORPHOLOGIES``
is cheap to read.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent / "assets"


@dataclass(frozen=True)
class LegChange:
    """Scale one capsule of the Ant: ``geom`` is its name in ant.xml, ``scale`` multiplies its length."""

    geom: str
    scale: float
    description: str


# The paper's asymmetric ants (Najarro & Risi 2020, reference repository
# enajx/HebbianMetaLearning, ``damaged_bullet_morphologies/``) shorten one front leg's lower
# segment to a quarter: ant_asym_right.xml (a training body) scales fourth_ankle_geom, the
# front-right leg, and ant_asym_left.xml (the held-out test body) left_ankle_geom, the
# front-left leg. The others are extra variants for generalisation studies (a damaged back
# leg, a longer front leg). Names give the leg's physical position (module docstring).
_CHANGES: dict[str, LegChange | None] = {
    "healthy": None,
    "damaged-left": LegChange("left_ankle_geom", 0.25, "front-left lower leg (left_ankle_geom) at 1/4 length (paper's test body, ant_asym_left.xml)"),
    "damaged-right": LegChange("fourth_ankle_geom", 0.25, "front-right lower leg (fourth_ankle_geom) at 1/4 length (paper's training body, ant_asym_right.xml)"),
    "damaged-back-left": LegChange("right_ankle_geom", 0.25, "back-left lower leg (right_ankle_geom) at 1/4 length"),
    "damaged-back-right": LegChange("third_ankle_geom", 0.25, "back-right lower leg (third_ankle_geom) at 1/4 length"),
    "long-front-left": LegChange("left_ankle_geom", 1.5, "front-left lower leg (left_ankle_geom) at 1.5x length"),
    "long-front-right": LegChange("fourth_ankle_geom", 1.5, "front-right lower leg (fourth_ankle_geom) at 1.5x length"),
}

MORPHOLOGIES: tuple[str, ...] = tuple(_CHANGES)
"""Names accepted by ``envs.make("AntBulletEnv-v0", morphology=...)``; "healthy" is the unchanged Ant."""


def leg_change(morphology: str) -> LegChange | None:
    """The change that defines ``morphology`` (None for "healthy"); ValueError for an unknown name."""
    check_morphology(morphology)
    return _CHANGES[morphology]


def check_morphology(morphology: str) -> None:
    """Raise a one-line ValueError unless ``morphology`` is one of :data:`MORPHOLOGIES`."""
    if morphology not in _CHANGES:
        raise ValueError(f"unknown morphology {morphology!r}; choose one of {', '.join(MORPHOLOGIES)}")


def asset_path(morphology: str) -> Path:
    """Path of the committed MJCF file for ``morphology`` (``envs/assets/ant_<morphology>.xml``)."""
    check_morphology(morphology)
    return ASSETS_DIR / f"ant_{morphology}.xml"


def pybullet_ant_xml() -> str:
    """Text of the installed pybullet ``mjcf/ant.xml``, the healthy robot."""
    import pybullet_data  # only the data path; does not import pybullet itself

    return (Path(pybullet_data.getDataPath()) / "mjcf" / "ant.xml").read_text()


def _format(value: float) -> str:
    # Six decimals removes float noise (0.4 * 1.5 = 0.6000000000000001) and keeps
    # ant.xml's own spelling ("0.0", "-0.4"), so an edited line reads like the original.
    return repr(round(value, 6) + 0.0)


def morphology_xml(morphology: str, base_xml: str | None = None) -> str:
    """MJCF text of ``morphology``: ``base_xml`` (default: pybullet's ant.xml) with one capsule rescaled.

    The capsule's ``fromto`` segment keeps its start (the joint) and its direction; its end
    moves to ``start + scale * (end - start)``, so its length (metres) is multiplied by
    ``scale`` and the radius is unchanged. Everything else is left byte for byte, so the
    "damaged-left" and "damaged-right" files are the paper's ``ant_asym_left.xml`` and
    ``ant_asym_right.xml``.
    """
    text = pybullet_ant_xml() if base_xml is None else base_xml
    change = leg_change(morphology)
    if change is None:
        return text
    pattern = re.compile(r'fromto="([^"]+)"(\s+name="' + re.escape(change.geom) + r'")')
    matches = pattern.findall(text)
    if len(matches) != 1:
        raise ValueError(f"ant.xml has {len(matches)} geoms named {change.geom!r}, expected 1; pybullet_data changed, update envs/morphologies.py")

    def rescale(match: re.Match) -> str:
        x0, y0, z0, x1, y1, z1 = (float(v) for v in match.group(1).split())
        s = change.scale
        end = (x0 + s * (x1 - x0), y0 + s * (y1 - y0), z0 + s * (z1 - z0))
        fromto = " ".join(_format(v) for v in (x0, y0, z0, *end))
        return f'fromto="{fromto}"{match.group(2)}'

    return pattern.sub(rescale, text)


def write_assets(directory: Path = ASSETS_DIR) -> list[Path]:
    """Write ``ant_<morphology>.xml`` for every morphology into ``directory``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in MORPHOLOGIES:
        path = directory / f"ant_{name}.xml"
        path.write_text(morphology_xml(name))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_assets():
        print(written)
    sys.exit(0)
