"""Whole-slide microscopy as pure values: instances, levels, slides (no pixels, no files).

A slide is one pyramid of one series: its VOLUME levels (base first) and its
LABEL, OVERVIEW and THUMBNAIL images. Each level knows where every tile is
(``tiles``: instance and frame per optical path, focal plane, tile row and tile
column) and which instances hold them; :mod:`dicomvol.slide` builds these
from headers and reads regions from them.

Coordinates are the level's own pixel matrix: x is the column (0 at the
left), y the row (0 at the top), as ``TotalPixelMatrixColumns/Rows`` count
them; a region is ``[y:y+h, x:x+w]`` of that matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: ImageType value 3 of a whole-slide image and what the slide calls it.
SLIDE_FLAVOURS = ("VOLUME", "LABEL", "OVERVIEW", "THUMBNAIL")


@dataclass(frozen=True, slots=True)
class ColorDecision:
    """How one instance's colour components are read, and why.

    Attributes
    ----------
    label : str
        The PhotometricInterpretation in the header.
    stream : str
        What the codestream says: "RGB", "YCbCr" (JPEG markers), "MCT"/"no MCT"
        (JPEG 2000 COD), or "" when it says nothing (native data, JPEG-LS).
    evidence : str
        The markers that decided, e.g. "JFIF APP0" or "APP14 transform 0".
    decoded_as : str
        "RGB" (components used as they are), "YCbCr" (converted to RGB with the
        full-range BT.601 matrix) or "MONOCHROME".
    conflict : bool
        The codestream and the label disagree.
    mode : str
        The policy that decided: "auto", "pi" or "stream".
    """

    label: str
    stream: str
    evidence: str
    decoded_as: str
    conflict: bool
    mode: str = "auto"

    def to_json(self) -> dict[str, Any]:
        """The sidecar's ``ColorDecision`` entry."""
        return {"PhotometricInterpretation": self.label, "Codestream": self.stream or None,
                "Evidence": self.evidence, "DecodedAs": self.decoded_as,
                "Conflict": self.conflict, "Mode": self.mode}

    def text(self) -> str:
        """One line for ``inspect``, e.g. 'label RGB, JFIF APP0 -> YCbCr'."""
        return f"label {self.label}, {self.evidence or 'no codestream marker'} -> {self.decoded_as}"


@dataclass(frozen=True, slots=True)
class OpticalPath:
    """An optical path: its identifier and description (channel name)."""

    identifier: str
    description: str = ""


@dataclass(frozen=True, eq=False)
class SlideInstance:
    """One SM instance: its pixel format and where each frame's bytes lie.

    Attributes
    ----------
    frames : tuple of tuple of (int, int)
        Per frame (0-based), the (file offset, length) of each fragment; native
        data has one entry per frame.
    """

    path: str
    rel: str
    sop_instance_uid: str
    transfer_syntax: str
    n_frames: int
    tile_rows: int
    tile_columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    planar_configuration: int
    encapsulated: bool
    frames: tuple[tuple[tuple[int, int], ...], ...]
    colour: ColorDecision
    #: "TILED_FULL" or "TILED_SPARSE".
    organisation: str = "TILED_FULL"

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of decoded samples (uint8, uint16, int16, ...)."""
        import numpy as np

        kind = "i" if self.pixel_representation else "u"
        return np.dtype(f"{kind}{max(1, (self.bits_allocated + 7) // 8)}")

    def sources(self) -> list[dict[str, Any]]:
        """``SourceInstances`` entries for every frame, in frame order (1-based)."""
        return [{"SOPInstanceUID": self.sop_instance_uid, "Frame": n + 1, "File": self.rel}
                for n in range(self.n_frames)]


@dataclass(frozen=True, eq=False)
class SlideLevel:
    """One stored resolution (or one label/overview/thumbnail image).

    Attributes
    ----------
    width, height : int
        TotalPixelMatrixColumns and TotalPixelMatrixRows.
    tile_width, tile_height : int
        Columns and Rows of the frames.
    pixel_spacing_um : tuple of float
        (x, y): µm per column step and per row step, exactly as stored.
    downsample : float
        Base width / this width (1.0 for the base; any value, not rounded).
    tiles : ndarray of shape (P, Z, TY, TX, 2), int64
        ``tiles[p, z, ty, tx] = (instance index, 0-based frame)``, -1 for a missing tile.
    optical_paths : tuple of str
        Identifiers along P.
    focal_planes : tuple of float
        Z offsets (µm) along Z.
    """

    flavour: str
    width: int
    height: int
    tile_width: int
    tile_height: int
    pixel_spacing_um: tuple[float, float]
    downsample: float
    instances: tuple[SlideInstance, ...]
    tiles: np.ndarray
    optical_paths: tuple[str, ...]
    focal_planes: tuple[float, ...]
    sparse: bool = False
    concatenated: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    @property
    def tile_shape(self) -> tuple[int, int]:
        """(tile height, tile width)."""
        return (self.tile_height, self.tile_width)

    @property
    def grid(self) -> tuple[int, int]:
        """Tiles down and across: (TY, TX)."""
        return (int(self.tiles.shape[2]), int(self.tiles.shape[3]))

    @property
    def samples(self) -> int:
        """Samples per pixel (3 for RGB, 1 for grey/fluorescence)."""
        return self.instances[0].samples_per_pixel

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of decoded samples."""
        return self.instances[0].dtype

    @property
    def n_frames(self) -> int:
        """Frames of every instance of this level."""
        return sum(i.n_frames for i in self.instances)

    def missing_tiles(self) -> list[tuple[int, int, int, int]]:
        """(path, plane, tile row, tile column) of every tile no frame holds."""
        import numpy as np

        holes = np.argwhere(self.tiles[..., 0] < 0)
        return [(int(p), int(z), int(r), int(c)) for p, z, r, c in holes]

    def describe(self) -> dict[str, Any]:
        """The level as JSON-ready data (``inspect`` and the sidecar)."""
        return {"Width": self.width, "Height": self.height,
                "TileWidth": self.tile_width, "TileHeight": self.tile_height,
                "PixelSpacingUm": [round(v, 9) for v in self.pixel_spacing_um],
                "Downsample": round(self.downsample, 6), "Frames": self.n_frames,
                "Instances": len(self.instances),
                "TransferSyntax": sorted({i.transfer_syntax for i in self.instances}),
                "Photometric": sorted({i.photometric for i in self.instances}),
                "Sparse": self.sparse, "Concatenated": self.concatenated,
                "OpticalPaths": len(self.optical_paths), "FocalPlanes": len(self.focal_planes),
                "MissingTiles": int((self.tiles[..., 0] < 0).sum())}


@dataclass(frozen=True, eq=False)
class SlideInfo:
    """One slide: the pyramid of one series (and PyramidUID), with its other images.

    Attributes
    ----------
    levels : tuple of SlideLevel
        VOLUME levels, largest first; never synthesised.
    label, overview, thumbnail : SlideLevel or None
        The other stored images of the slide.
    icc_profile : bytes or None
        The ICC profile of the (first) optical path.
    names : tuple of (str, str)
        Header values for output name templates (from the first instance).
    """

    series_instance_uid: str
    study_instance_uid: str
    pyramid_uid: str
    modality: str
    series_number: int | None
    series_description: str
    levels: tuple[SlideLevel, ...]
    optical_paths: tuple[OpticalPath, ...]
    label: SlideLevel | None = None
    overview: SlideLevel | None = None
    thumbnail: SlideLevel | None = None
    icc_profile: bytes | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    names: tuple[tuple[str, str], ...] = ()
    suffix: str = ""

    @property
    def others(self) -> dict[str, SlideLevel]:
        """The label, overview and thumbnail images that exist, by flavour."""
        return {name: lv for name, lv in (("label", self.label), ("overview", self.overview),
                                          ("thumbnail", self.thumbnail)) if lv is not None}

    @property
    def instances(self) -> list[SlideInstance]:
        """Every instance of the slide (levels first, then the other images)."""
        return [i for lv in (*self.levels, *self.others.values()) for i in lv.instances]

    @property
    def brightfield(self) -> bool:
        """RGB samples (fill white); otherwise grey/fluorescence (fill 0)."""
        level = self.levels[0] if self.levels else next(iter(self.others.values()))
        return level.samples == 3

    def describe(self) -> dict[str, Any]:
        """One ``inspect`` row: levels, flags, other images, the colour decisions."""
        decisions = list(dict.fromkeys(i.colour.text() for i in self.instances))
        base = self.levels[0] if self.levels else None
        return {
            "SeriesInstanceUID": self.series_instance_uid, "SeriesNumber": self.series_number,
            "Modality": self.modality, "SeriesDescription": self.series_description,
            "PyramidUID": self.pyramid_uid or None, "Suffix": self.suffix,
            "Levels": [lv.describe() for lv in self.levels],
            "Frames": sum(i.n_frames for i in self.instances),
            "OpticalPaths": [p.identifier + (f" ({p.description})" if p.description else "")
                             for p in self.optical_paths],
            "FocalPlanes": len(base.focal_planes) if base else 0,
            "Sparse": any(lv.sparse for lv in self.levels),
            "Concatenated": any(lv.concatenated for lv in self.levels),
            "Label": self.label is not None, "Overview": self.overview is not None,
            "Thumbnail": self.thumbnail is not None,
            "ICCProfile": self.icc_profile is not None,
            "ColorDecision": decisions, "Warnings": list(self.warnings),
        }
