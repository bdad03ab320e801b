"""Named tolerances and conventions, used by code and quoted in messages.

The IDC ``volume_geometry_index`` checks use the tolerances of the project's
output contract: 1 % relative slice spacing, 0.1 mm in plane, 0.01 on the
length of the slice normal. Exactness of a written volume is judged in voxels.
"""

from __future__ import annotations

#: Relative tolerance on each slice interval against the mean interval (IDC check).
SLICE_SPACING_RELATIVE_TOLERANCE = 0.01
#: Max spread (mm) of IPP projected on the row or the column direction (IDC check).
IN_PLANE_TOLERANCE_MM = 0.1
#: Max deviation of |row x column| from 1 (IDC orthogonality check).
ORIENTATION_TOLERANCE = 0.01
#: A written volume puts every source pixel within this many voxels of its position.
EXACTNESS_TOLERANCE_VOXELS = 0.01
#: Two slices whose normal projections differ by less than this (mm) share a position.
SAME_POSITION_TOLERANCE_MM = 0.001
#: ImageOrientationPatient components closer than this belong to one orientation.
SAME_ORIENTATION_TOLERANCE = 1e-4
#: PixelSpacing values closer than this (mm) are the same spacing.
SAME_PIXEL_SPACING_TOLERANCE_MM = 1e-4
#: A step vector more than this many degrees away from the slice normal is a shear.
SHEAR_TOLERANCE_DEGREES = 0.01

#: The patient coordinate system of every internal affine.
PATIENT_FRAME = "LPS"
#: Index order of every internal array.
INDEX_ORDER = ("i: column (along row direction)", "j: row (along column direction)", "k: slice")

#: DICOM patient coordinates (LPS) to NIfTI/RAS world coordinates, shape (4, 4).
#: A tuple of rows (immutable); ``numpy.array(LPS_TO_RAS)`` gives the matrix.
LPS_TO_RAS = ((-1.0, 0.0, 0.0, 0.0), (0.0, -1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0),
              (0.0, 0.0, 0.0, 1.0))

#: Resampling fills small irregularities (jitter, a few missing slices). A gap where more than
#: this many slices are missing (at the stack's median step) is never interpolated across: the
#: stack is split there into pieces, each planned on its own (exact, or resampled for its own
#: small irregularities), with the reason in each piece's sidecar (``PlanOptions.max_gap_slices``).
MAX_RESAMPLE_GAP_SLICES = 3

#: Name of the run report written in every output folder.
REPORT_NAME = "dicomvol_report.json"

#: The output image formats: name -> (extension compressed, extension uncompressed).
#: The one list of formats; ``dicomvol.io.formats`` maps each name to its writer.
OUTPUT_FORMATS: dict[str, tuple[str, str]] = {
    "nifti": (".nii.gz", ".nii"),
    "nrrd": (".nrrd", ".nrrd"),
    "mha": (".mha", ".mha"),
}
#: PhotometricInterpretations of 8-bit colour frames converted as RGB volumes (NIfTI RGB24;
#: pydicom converts the YBR ones to RGB while decoding).
COLOUR_PHOTOMETRICS = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"})
#: Whole-slide output formats -> extension (``-e``; the first is the default for SM).
SLIDE_FORMATS: dict[str, str] = {
    "ome.tif": ".ome.tif",
    "tif": ".tif",
    "ome.zarr": ".ome.zarr",
}

#: A SEG frame snaps onto an output plane when its pixel (0, 0) lies within this distance
#: (mm) of a voxel centre of that plane, or within SEG_SNAP_TOLERANCE_VOXELS of the voxel
#: size, whichever is larger (real SEGs drift by a few hundredths of a mm from the slices
#: they segment). The largest drift is recorded in the label map's sidecar.
SEG_SNAP_TOLERANCE_MM = 0.05
SEG_SNAP_TOLERANCE_VOXELS = 0.05
#: An RTSTRUCT contour belongs to an output slice when every vertex lies within this
#: distance (mm) of the slice plane, or within CONTOUR_PLANE_TOLERANCE_VOXELS of the slice
#: step, whichever is larger; a contour on no slice plane is reported, never snapped.
CONTOUR_PLANE_TOLERANCE_MM = 0.05
CONTOUR_PLANE_TOLERANCE_VOXELS = 0.05

#: The IDC index gives a series' size as series_size_MB (10^6 bytes), in some releases
#: rounded to 2 decimals: listed bytes match when within this many bytes (half of 0.01 MB).
IDC_SIZE_TOLERANCE_BYTES = 5000
#: dicomvol's geometry checks agree with a row of IDC's volume_geometry_index when the
#: booleans are equal and slice spacing / obliquity differ by at most these amounts.
IDC_GEOMETRY_SPACING_TOLERANCE_MM = 0.01
IDC_GEOMETRY_OBLIQUITY_TOLERANCE_DEGREES = 0.01

#: The uncompressed little-endian transfer syntaxes (implicit, explicit VR): pixel data
#: read straight from the file's bytes, no decoder.
NATIVE_LE = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})
