"""The NIfTI-1 header packed by :func:`dicomvol.io.nifti.header_block`, byte for byte
against nibabel's ``Nifti1Header`` built from the same description.

One freedom is allowed: the quaternion of the qform. A half turn has two quaternions
(q and -q, NIfTI's ``quatern_a`` = 0) and nibabel takes whichever sign LAPACK's
eigenvector happens to have; :func:`header_block` computes the quaternion in plain
Python. Where the quaternion bytes differ, both must describe the same rotation.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomvol.io.nifti import NIFTI_DATATYPES, NiftiSpec, _nibabel_header, header_block


def _rotation(angles: tuple[float, float, float]) -> np.ndarray:
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    rot: np.ndarray = rx @ ry @ rz
    return rot


def _affine(angles: tuple[float, float, float], zooms: tuple[float, float, float],
            flip: bool, origin: tuple[float, float, float], shear: float = 0.0) -> np.ndarray:
    affine = np.eye(4)
    cols = _rotation(angles) * np.asarray(zooms)
    if flip:
        cols[:, 2] *= -1
    cols[:, 2] += shear * cols[:, 0]
    affine[:3, :3] = cols
    affine[:3, 3] = origin
    return affine


#: The quaternion fields (see the module docstring).
QUATERN = {"quatern_b", "quatern_c", "quatern_d"}
#: quatern_a read back from float32 b, c, d below which the rotation is a half turn (its
#: quantisation: sqrt of float32's epsilon is 3.5e-4).
HALF_TURN_W = 1e-3


def _same(spec: NiftiSpec) -> None:
    ours = header_block(spec)
    reference = bytes(_nibabel_header(spec).binaryblock)
    assert len(ours) == 348
    if ours != reference:  # name the first differing field
        import nibabel as nib
        from nibabel.quaternions import quat2mat

        a = nib.Nifti1Header.from_fileobj(io.BytesIO(ours + b"\0" * 4))
        b = nib.Nifti1Header.from_fileobj(io.BytesIO(reference + b"\0" * 4))
        diff = [k for k in b.structarr.dtype.names if a[k].tobytes() != b[k].tobytes()]
        if set(diff) - QUATERN:
            pytest.fail(f"fields differ from nibabel's: {diff}")
        qa, qb = (np.array([float(h[k]) for k in sorted(QUATERN)]) for h in (a, b))
        if _quatern_a(qa) < HALF_TURN_W and np.allclose(qa, -qb, atol=1e-7):
            return  # a half turn: q and -q (float32 leaves quatern_a ~ 0 either way)
        np.testing.assert_allclose(quat2mat([_quatern_a(qa), *qa]), quat2mat([_quatern_a(qb), *qb]),
                                   rtol=0, atol=1e-6)


def _quatern_a(bcd: np.ndarray) -> float:
    """quatern_a as a NIfTI reader derives it (0 where float32 b, c, d exceed unit norm)."""
    return float(np.sqrt(max(0.0, 1.0 - float(bcd @ bcd))))


CASES = {
    "axial CT": NiftiSpec((512, 512, 120), np.dtype("i2"),
                          _affine((0, 0, 0), (0.7, 0.7, 1.25), False, (-180, -200, -300)),
                          sheared=False, scl_slope=1.0, scl_inter=-1024.0,
                          description="dicomvol CT"),
    "oblique MR 4D": NiftiSpec((64, 64, 30, 40), np.dtype("u2"),
                               _affine((0.2, -0.1, 0.05), (3.0, 3.0, 3.5), True, (90, 100, -40)),
                               sheared=False, time_step=2.5, description="dicomvol MR"),
    "sagittal": NiftiSpec((256, 256, 176), np.dtype("f4"),
                          np.array([[0, 0, 1.0, -90], [1.0, 0, 0, -120], [0, -1.0, 0, 110],
                                    [0, 0, 0, 1]]), sheared=False),
    "180 degree turn": NiftiSpec((10, 10, 5), np.dtype("i4"),
                                 _affine((np.pi, 0, 0), (1, 1, 2), False, (0, 0, 0)),
                                 sheared=False),
    "gantry tilt (sheared) 4D": NiftiSpec(
        (512, 512, 60, 3), np.dtype("i2"),
        _affine((0, 0, 0), (0.5, 0.5, 2.0), False, (10, 20, 30), shear=0.3),
        sheared=True, time_step=0.8),
    "float64, no description": NiftiSpec((3, 4, 5), np.dtype("f8"), np.eye(4), sheared=False,
                                         description=""),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_header_matches_nibabel(name: str) -> None:
    _same(CASES[name])


@pytest.mark.parametrize("code", sorted(NIFTI_DATATYPES))
def test_every_datatype_matches_nibabel(code: str) -> None:
    _same(NiftiSpec((4, 5, 6), np.dtype(code), np.diag([2.0, 2.0, 3.0, 1.0]), sheared=False))


def test_outside_nifti1_is_described_by_nibabel() -> None:
    rgb = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
    spec = NiftiSpec((4, 5, 6), rgb, np.eye(4), sheared=False)
    assert header_block(spec) == bytes(_nibabel_header(spec).binaryblock)
    assert int(np.frombuffer(header_block(spec)[70:72], "<i2")[0]) == 128  # NIFTI_TYPE_RGB24


def test_half_turns_and_signed_zeros_keep_patient_axis_quaternions() -> None:
    """The 48 signed permutations of the axes (every patient-axis orientation, flips
    included): the rotation agrees with nibabel, and where LAPACK's sign is the one
    this module picks (the axial, sagittal and coronal acquisitions), the bytes too."""
    import itertools

    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            affine = np.eye(4)
            affine[:3, :3] = 0.0
            for c, r in enumerate(perm):
                affine[r, c] = signs[c] * (c + 1.5)
            _same(NiftiSpec((4, 5, 6), np.dtype("i2"), affine, sheared=False))
    for row, col in (((1, 0, 0), (0, 1, 0)), ((0, 1, 0), (0, 0, -1)), ((1, 0, 0), (0, 0, -1))):
        lps = np.eye(4)
        lps[:3, 0], lps[:3, 1], lps[:3, 2] = row, col, np.cross(row, col) * 2.0
        spec = NiftiSpec((4, 5, 6), np.dtype("i2"), lps, sheared=False)
        assert header_block(spec) == bytes(_nibabel_header(spec).binaryblock)


def test_rows_and_type_strings_pack_as_arrays_and_dtypes() -> None:
    """The streaming writer describes a plan by its affine rows and type string (no
    numpy): the same header as the ndarray and dtype."""
    for name, spec in CASES.items():
        plain = NiftiSpec(spec.shape, np.dtype(spec.dtype).str.lstrip("<|="),
                          tuple(tuple(float(v) for v in r) for r in np.asarray(spec.affine)),
                          sheared=spec.sheared, scl_slope=spec.scl_slope,
                          scl_inter=spec.scl_inter, time_step=spec.time_step,
                          description=spec.description)
        assert header_block(plain) == header_block(spec), name


@settings(max_examples=200, deadline=None)
@given(angles=st.tuples(*[st.floats(-np.pi, np.pi)] * 3),
       zooms=st.tuples(*[st.floats(0.05, 20.0)] * 3), flip=st.booleans(),
       origin=st.tuples(*[st.floats(-500.0, 500.0)] * 3),
       shape=st.lists(st.integers(1, 600), min_size=3, max_size=4),
       slope=st.floats(0.001, 100.0), inter=st.floats(-4096.0, 4096.0),
       sheared=st.booleans(), shear=st.floats(0.05, 1.0))
def test_any_grid_matches_nibabel(angles: tuple[float, float, float],
                                  zooms: tuple[float, float, float], flip: bool,
                                  origin: tuple[float, float, float], shape: list[int],
                                  slope: float, inter: float, sheared: bool,
                                  shear: float) -> None:
    affine = _affine(angles, zooms, flip, origin, shear if sheared else 0.0)
    _same(NiftiSpec(tuple(shape), np.dtype("i2"), affine, sheared=sheared, scl_slope=slope,
                    scl_inter=inter, time_step=1.5, description="dicomvol MR"))
