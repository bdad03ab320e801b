"""SM instances -> slides: series, then PyramidUID, then ImageType flavour, then levels.

Levels are told apart by total pixel matrix, tile size and pixel spacing;
within a level, frames are indexed by optical path x focal plane x tile
(across a concatenation and any number of instances). Two instances that
claim the same tile make two slides (with a warning), never one silently
overwritten. No level is synthesised: a level exists when an instance stores it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from dicomvol.errors import HeaderError, PixelDataError
from dicomvol.model.records import FileError, FrameRecord
from dicomvol.model.slide import OpticalPath, SlideInfo, SlideLevel
from dicomvol.slide.colour import conflict_warning
from dicomvol.slide.frames import ParsedInstance, read_instance

log = logging.getLogger(__name__)

_LevelKey = tuple[str, int, int, int, int, float, float]


def index_slides(records: Sequence[FrameRecord],
                 colour_mode: str = "auto") -> tuple[list[SlideInfo], list[FileError]]:
    """Index every SM instance among ``records`` (one per file) and group them into slides.

    Returns
    -------
    slides : list of SlideInfo
        In (study, series number, series, pyramid) order.
    errors : list of FileError
        Files whose header or item structure cannot be indexed.
    """
    first: dict[str, FrameRecord] = {}
    for rec in records:
        first.setdefault(rec.path, rec)
    parsed: list[ParsedInstance] = []
    names: dict[str, tuple[tuple[str, str], ...]] = {}
    errors: list[FileError] = []
    for path, rec in sorted(first.items(), key=lambda kv: kv[1].rel):
        try:
            parsed.append(read_instance(path, rec.rel, colour_mode))
        except (HeaderError, PixelDataError, OSError) as exc:
            errors.append(FileError(path, rec.rel, str(exc)))
            continue
        names.setdefault(rec.series_instance_uid, rec.names)
    groups: dict[tuple[str, str], list[ParsedInstance]] = defaultdict(list)
    for p in parsed:
        groups[(p.series_instance_uid, p.pyramid_uid)].append(p)
    slides: list[SlideInfo] = []
    for key in sorted(groups, key=lambda k: (groups[k][0].study_instance_uid,
                                             groups[k][0].series_number or 0, k)):
        layers = _layers(groups[key])
        for n, layer in enumerate(layers):
            suffix = f"_s{n + 1}" if len(layers) > 1 else ""
            note = (f"the series holds {len(layers)} slides whose instances claim the same "
                    f"tiles; this is slide {n + 1}") if len(layers) > 1 else ""
            slides.append(_slide(layer, names.get(key[0], ()), suffix, note))
    return slides, errors


def _level_key(p: ParsedInstance) -> _LevelKey:
    return (p.flavour, p.width, p.height, p.instance.tile_columns, p.instance.tile_rows,
            round(p.spacing_um[0], 6), round(p.spacing_um[1], 6))


def _layers(members: list[ParsedInstance]) -> list[list[ParsedInstance]]:
    """Split instances so that no two in one layer claim the same tile of one level."""
    layers: list[tuple[list[ParsedInstance], set[tuple[object, ...]]]] = []
    for p in members:
        mine: set[tuple[object, ...]] = {(*_level_key(p), *c) for c in p.claims}
        for group, claimed in layers:
            if claimed.isdisjoint(mine):
                group.append(p)
                claimed |= mine
                break
        else:
            layers.append(([p], mine))
    return [group for group, _ in layers]


def _slide(members: list[ParsedInstance], names: tuple[tuple[str, str], ...], suffix: str,
           note: str) -> SlideInfo:
    by_level: dict[_LevelKey, list[ParsedInstance]] = defaultdict(list)
    for p in members:
        by_level[_level_key(p)].append(p)
    volume = sorted((k for k in by_level if k[0] == "VOLUME"), key=lambda k: (-k[1], -k[2]))
    warnings = [note] if note else []
    base_width = volume[0][1] if volume else 0
    levels = tuple(_level(by_level[k], base_width, warnings) for k in volume)
    others: dict[str, SlideLevel] = {}
    for flavour in ("LABEL", "OVERVIEW", "THUMBNAIL"):
        keys = sorted((k for k in by_level if k[0] == flavour), key=lambda k: -k[1] * k[2])
        if keys:
            others[flavour] = _level(by_level[keys[0]], keys[0][1], warnings)
        if len(keys) > 1:
            warnings.append(f"{len(keys)} {flavour} images of different sizes; the largest "
                            f"({keys[0][1]}x{keys[0][2]}) is used, the others are skipped")
    ref = members[0]
    pyramid = ref.pyramid_uid
    fors = {p.frame_of_reference_uid for p in members if p.flavour == "VOLUME"}
    if not pyramid:
        note = "no PyramidUID: levels grouped by series"
        if len(fors) > 1:
            note += f"; FrameOfReferenceUID differs per level ({len(fors)} values)"
        warnings.append(note)
    if not all(p.has_optical_path_sequence for p in members):
        warnings.append("no OpticalPathSequence: one unnamed optical path assumed")
    seen: set[tuple[str, str, str]] = set()
    for p in members:
        c = p.instance.colour
        if c.conflict and (c.label, c.evidence, c.decoded_as) not in seen:
            seen.add((c.label, c.evidence, c.decoded_as))
            warnings.append(conflict_warning(c, f"colour ({p.instance.rel})"))
    paths: dict[str, OpticalPath] = {}
    for p in members:
        for path in p.optical_paths:
            paths.setdefault(path.identifier, path)
    return SlideInfo(
        series_instance_uid=ref.series_instance_uid, study_instance_uid=ref.study_instance_uid,
        pyramid_uid=pyramid, modality=ref.modality, series_number=ref.series_number,
        series_description=ref.series_description, levels=levels,
        optical_paths=tuple(paths.values()), label=others.get("LABEL"),
        overview=others.get("OVERVIEW"), thumbnail=others.get("THUMBNAIL"),
        icc_profile=next((p.icc_profile for p in members if p.icc_profile), None),
        warnings=tuple(warnings), names=names, suffix=suffix)


def _level(members: list[ParsedInstance], base_width: int, warnings: list[str]) -> SlideLevel:
    ref = members[0]
    members = sorted(members, key=lambda p: p.instance.rel)
    inst0 = ref.instance
    tx = -(-ref.width // inst0.tile_columns)
    ty = -(-ref.height // inst0.tile_rows)
    path_ids = list(dict.fromkeys(c[0] for p in members for c in p.claims))
    declared = [o.identifier for p in members for o in p.optical_paths]
    path_ids.sort(key=lambda i: declared.index(i) if i in declared else len(declared))
    planes = sorted({c[1] for p in members for c in p.claims})
    tiles = np.full((len(path_ids), len(planes), ty, tx, 2), -1, dtype=np.int64)
    p_index = {v: n for n, v in enumerate(path_ids)}
    z_index = {v: n for n, v in enumerate(planes)}
    outside = 0
    for ii, p in enumerate(members):
        for n, (path, z, r, c) in enumerate(p.claims):
            if r >= ty or c >= tx:
                outside += 1
                continue
            tiles[p_index[path], z_index[z], r, c] = (ii, n)
    if outside:
        warnings.append(f"{ref.flavour} {ref.width}x{ref.height}: {outside} frame(s) lie outside "
                        "the total pixel matrix and are not read")
    return SlideLevel(
        flavour=ref.flavour, width=ref.width, height=ref.height,
        tile_width=inst0.tile_columns, tile_height=inst0.tile_rows,
        pixel_spacing_um=ref.spacing_um, downsample=base_width / ref.width if base_width else 1.0,
        instances=tuple(p.instance for p in members), tiles=tiles,
        optical_paths=tuple(path_ids), focal_planes=tuple(planes),
        sparse=any(p.instance.organisation == "TILED_SPARSE" for p in members),
        concatenated=any(p.concatenation_uid for p in members) and len(members) > 1)
