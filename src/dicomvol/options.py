"""Frozen option objects, passed explicitly (they reach worker processes intact)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dicomvol.constants import MAX_RESAMPLE_GAP_SLICES, OUTPUT_FORMATS, SLIDE_FORMATS
from dicomvol.errors import UsageError

#: Default output name template; fields are DICOM keywords in braces.
DEFAULT_TEMPLATE = "{PatientID}_{SeriesNumber}_{SeriesDescription}"
#: Default template under ``anonymize``: no patient identifiers in file names.
ANONYMOUS_TEMPLATE = "{Modality}_{SeriesNumber}_{SeriesDescription}"

TILT_CHOICES = ("shear", "resample", "both")
IRREGULAR_CHOICES = ("resample", "split", "skip")
INTERPOLATION_CHOICES = ("linear", "nearest")
FORMAT_CHOICES = tuple(OUTPUT_FORMATS)
PHILIPS_CHOICES = ("display", "fp")
SLIDE_FORMAT_CHOICES = tuple(SLIDE_FORMATS)
JPEG_COLOR_CHOICES = ("auto", "pi", "stream")


@dataclass(frozen=True)
class StorageOptions:
    """How object-store clients (``s3://``, ``gs://`` inputs) are built in every process.

    Attributes
    ----------
    endpoint_url : str or None
        Another S3 (or GCS) endpoint; None uses ``AWS_ENDPOINT_URL`` (S3) or
        ``STORAGE_EMULATOR_HOST`` (GCS) when set, else the provider's.
    anon : bool
        Anonymous access (default: IDC's buckets are public).
    retries : int
        Attempts per request (throttling and transient errors back off).
    max_bytes_in_flight : int
        A job fetches its objects concurrently, at most this many bytes ahead of
        what it has consumed.
    """

    endpoint_url: str | None = None
    anon: bool = True
    retries: int = 10
    max_bytes_in_flight: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class PlanOptions:
    """How series that are not one regular grid are handled.

    Parameters
    ----------
    tilt : {"shear", "resample", "both"}
        Gantry tilt (slices stepping off the normal): write the exact sheared
        stack (sform only, ``"Sheared": true``), an orthogonal resampled copy
        (``"Resampled": true``), or both (default).
    irregular : {"resample", "split", "skip"}
        Variable spacing, missing slices or lateral shift: resample onto a
        regular grid (default), split into the largest exact regular runs, or
        skip the series with the reason.
    interpolation : {"linear", "nearest"}
        Interpolation used when resampling.
    max_gap_slices : int
        With ``irregular="resample"``: a gap of more missing slices than this
        splits the stack into pieces instead of being interpolated across
        (default :data:`~dicomvol.constants.MAX_RESAMPLE_GAP_SLICES`).
    philips_scaling : {"display", "fp"}
        Philips MR: "display" applies RescaleSlope/Intercept (the DICOM modality
        values every viewer shows; dcm2niix ``-p n``); "fp" gives Philips'
        floating-point values (RS * SV + RI) / (RS * SS) with the private
        ScaleSlope (dcm2niix's default ``-p y``).
    """

    tilt: str = "both"
    irregular: str = "resample"
    interpolation: str = "linear"
    philips_scaling: str = "display"
    max_gap_slices: int = MAX_RESAMPLE_GAP_SLICES

    def __post_init__(self) -> None:
        if self.max_gap_slices < 0:
            raise UsageError(f"max_gap_slices must be 0 or more; got {self.max_gap_slices}")
        for name, value, choices in (("tilt", self.tilt, TILT_CHOICES),
                                     ("irregular", self.irregular, IRREGULAR_CHOICES),
                                     ("interpolation", self.interpolation,
                                      INTERPOLATION_CHOICES),
                                     ("philips_scaling", self.philips_scaling,
                                      PHILIPS_CHOICES)):
            if value not in choices:
                raise UsageError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


@dataclass(frozen=True)
class SlideOptions:
    """How whole-slide microscopy (SM) series are read and written.

    Parameters
    ----------
    format : {"ome.tif", "tif", "ome.zarr"}
        Pyramidal OME-TIFF (default), plain pyramidal TIFF (OpenSlide's generic
        TIFF), or OME-Zarr (NGFF 0.5, zarr v3).
    jpeg_color : {"auto", "pi", "stream"}
        Colour decision for JPEG/JPEG 2000 frames: the codestream when it says
        (default), the PhotometricInterpretation label, or the codestream only.
    fill : float or None
        Value of tiles no frame holds (TILED_SPARSE holes); None: white for
        brightfield RGB, 0 for fluorescence.
    apply_icc : bool
        Convert RGB slides to sRGB with their ICC profile (default: carry the
        profile into the output and leave the pixels as stored).
    """

    format: str = "ome.tif"
    jpeg_color: str = "auto"
    fill: float | None = None
    apply_icc: bool = False

    def __post_init__(self) -> None:
        for name, value, choices in (("format", self.format, SLIDE_FORMAT_CHOICES),
                                     ("jpeg_color", self.jpeg_color, JPEG_COLOR_CHOICES)):
            if value not in choices:
                raise UsageError(f"slide {name} must be one of {', '.join(choices)}; "
                                 f"got {value!r}")


@dataclass(frozen=True)
class ConvertOptions:
    """How ``convert`` writes its outputs.

    Parameters
    ----------
    compress : bool
        Write ``.nii.gz`` (True) or ``.nii`` (False).
    template : str
        Output name template. Fields are DICOM keywords in braces, e.g.
        ``{PatientID}``, ``{SeriesNumber}``, ``{SeriesDescription}``,
        ``{Modality}``, ``{StudyDate}``, ``{SeriesInstanceUID}``, ``{EchoNumbers}``.
        Names are made safe for file systems and never collide.
    overwrite : bool
        Replace existing outputs instead of refusing.
    jobs : int
        Worker processes for reading headers, assembling and writing (1 = in this
        process).
    adaptive_jobs : bool
        ``jobs`` is a default, not a choice: a run over small local inputs (at most
        :data:`dicomvol.batch.executors.IN_PROCESS_MAX_FILES` files and
        :data:`~dicomvol.batch.executors.IN_PROCESS_MAX_BYTES` bytes) runs in this
        process, where a pool would start slower than it finishes (``dicomvol convert``
        without ``-j``). Not used with ``dask``.
    plan : PlanOptions
        Policy for tilted and irregular series.
    format : {"nifti", "nrrd", "mha"}
        Output image format.
    resume : bool
        Keep outputs whose sidecar records the same sources (a re-run after an
        interruption converts only what is missing).
    dask : str or None
        Run jobs on a Dask cluster: a scheduler address or ``"local"``.
    anonymize : bool
        Leave patient-identifying keys out of sidecars (UIDs stay: the contract
        requires them). With the default template, names use
        :data:`ANONYMOUS_TEMPLATE`.
    suv : bool
        Write PET in body-weight SUV (g/ml) instead of Bq/ml; a series whose
        SUV cannot be computed is reported as an error naming the attribute.
    reorient : bool
        Permute/flip voxel axes to the nearest RAS orientation (no
        interpolation); ``SourceInstances`` then follow ``Reoriented.SliceAxis``.
    qc : bool
        Also write the visual quality-control page ``qc/index.html``: each job
        draws its thumbnails while it holds the pixels.
    storage : StorageOptions
        Object-store clients for URL inputs (every worker builds its own).
    slide : SlideOptions
        Whole-slide microscopy: output format, colour decision, fill value.
    """

    compress: bool = True
    template: str = DEFAULT_TEMPLATE
    overwrite: bool = False
    jobs: int = 1
    adaptive_jobs: bool = False
    plan: PlanOptions = field(default_factory=PlanOptions)
    format: str = "nifti"
    resume: bool = False
    dask: str | None = None
    anonymize: bool = False
    suv: bool = False
    reorient: bool = False
    qc: bool = False
    storage: StorageOptions = field(default_factory=StorageOptions)
    slide: SlideOptions = field(default_factory=SlideOptions)

    def __post_init__(self) -> None:
        if self.anonymize and self.template == DEFAULT_TEMPLATE:
            object.__setattr__(self, "template", ANONYMOUS_TEMPLATE)
        if self.format not in FORMAT_CHOICES:
            raise UsageError(f"format must be one of {', '.join(FORMAT_CHOICES)}; "
                             f"got {self.format!r}")
        if self.jobs < 1:
            raise UsageError(f"jobs must be at least 1; got {self.jobs}")
