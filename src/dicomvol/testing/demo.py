"""The demo study: an oblique CT with shuffled files and per-slice rescale, and an MR series."""

from __future__ import annotations

from pathlib import Path

import pydicom

from dicomvol.testing.geometry import oblique_directions
from dicomvol.testing.series import SyntheticSeries, write_series


def write_demo_study(folder: str | Path) -> list[SyntheticSeries]:
    """Write the demo study: an oblique CT series and a small axial MR series.

    The CT series has 64 x 64 x 24 voxels, orientation rotated 20 degrees about (1, 1, 0),
    per-slice rescale slopes and intercepts, descending InstanceNumber and shuffled random file
    names. The MR series (32 x 28 x 10, axial, ascending, also shuffled) is in the same study and
    the same folder, with a different series UID and frame of reference.

    Parameters
    ----------
    folder : str or Path
        Output folder (created if missing); both series are written into it.

    Returns
    -------
    list of SyntheticSeries
        ``[ct, mr]``.
    """
    study_uid = pydicom.uid.generate_uid()
    n_ct = 24
    row_dir, col_dir = oblique_directions(20.0, (1.0, 1.0, 0.0))
    ct_rescale = [(0.5 + 0.25 * (k % 4), -1024.0 + 8.0 * (k % 3)) for k in range(n_ct)]
    ct = write_series(
        folder,
        shape=(64, 64, n_ct),
        pixel_spacing=(0.9, 0.9),
        slice_spacing=3.0,
        row_dir=row_dir,
        col_dir=col_dir,
        origin=(-28.8, -28.8, -36.0),
        modality="CT",
        rescale=ct_rescale,
        order="descending",
        shuffle_seed=2024,
        study_instance_uid=study_uid,
        series_number=2,
        series_description="demo oblique CT",
        image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
        seed=7,
    )
    mr = write_series(
        folder,
        shape=(32, 28, 10),
        pixel_spacing=(1.5, 1.25),
        slice_spacing=4.0,
        row_dir=(1.0, 0.0, 0.0),
        col_dir=(0.0, 1.0, 0.0),
        origin=(-20.0, -17.5, -18.0),
        modality="MR",
        rescale=(1.0, 0.0),
        order="ascending",
        shuffle_seed=2025,
        study_instance_uid=study_uid,
        series_number=3,
        series_description="demo axial MR",
        image_type=("ORIGINAL", "PRIMARY", "M", "ND"),
        seed=8,
    )
    return [ct, mr]
