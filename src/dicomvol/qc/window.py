"""Display windows by modality: CT in Hounsfield units, MR and PET by percentiles.

CT gets two fixed windows (soft tissue and lung, level/width in HU, as
radiology workstations preset them). MR and PET have no absolute scale, so
their window spans percentiles of the sampled centre planes (PET's include
the maximum-intensity projection); PET is drawn inverted (uptake dark on
white, as PET MIPs are read).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: CT windows: (name, level HU, width HU).
CT_WINDOWS = (("soft tissue", 40.0, 400.0), ("lung", -600.0, 1500.0))
#: Percentile windows (low, high) by modality; other modalities use DEFAULT_PERCENTILES.
PERCENTILES = {"MR": (1.0, 99.0), "PT": (0.0, 99.5)}
DEFAULT_PERCENTILES = (1.0, 99.0)
#: Modalities drawn inverted (high values dark).
INVERTED = frozenset({"PT", "NM"})


@dataclass(frozen=True)
class Window:
    """A linear display window: ``low`` maps to black, ``high`` to white (reversed if inverted)."""

    name: str
    low: float
    high: float
    inverted: bool = False

    @property
    def text(self) -> str:
        """e.g. ``soft tissue W400 L40 [-160, 240]`` or ``1-99 % [12, 1830]``."""
        return f"{self.name} [{self.low:.4g}, {self.high:.4g}]"


def ct_window(name: str, level: float, width: float) -> Window:
    """The window of a CT level/width preset (HU)."""
    return Window(f"{name} W{width:g} L{level:g}", level - width / 2.0, level + width / 2.0)


def windows_for(modality: str, values: list[np.ndarray]) -> list[Window]:
    """The windows a volume is shown in.

    Parameters
    ----------
    modality : str
        DICOM Modality (``CT``, ``MR``, ``PT``, ...).
    values : list of ndarray
        The sampled modality values (any shapes) the percentiles are taken over.

    Returns
    -------
    list of Window
        Both CT presets for CT, else one percentile window.
    """
    if modality == "CT":
        return [ct_window(*preset) for preset in CT_WINDOWS]
    low_pct, high_pct = PERCENTILES.get(modality, DEFAULT_PERCENTILES)
    flat = np.concatenate([np.ravel(v) for v in values]) if values else np.zeros(1)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        flat = np.zeros(1)
    low, high = (float(v) for v in np.percentile(flat, [low_pct, high_pct]))
    if high <= low:
        high = low + 1.0
    return [Window(f"{low_pct:g}-{high_pct:g} %", low, high, modality in INVERTED)]


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """Grey levels of ``values`` in ``window``.

    Parameters
    ----------
    values : ndarray of any shape
        Modality values; NaN is drawn black.

    Returns
    -------
    ndarray of the same shape, dtype uint8
        0 at or below ``low``, 255 at or above ``high`` (swapped when inverted).
    """
    scaled = (np.asarray(values, dtype=np.float32) - window.low) * (
        255.0 / (window.high - window.low))
    grey = np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 255.0)
    if window.inverted:
        grey = 255.0 - grey
    out: np.ndarray = np.rint(grey).astype(np.uint8)
    return out
