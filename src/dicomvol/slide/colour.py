"""The colour decision: the codestream decides, not the PhotometricInterpretation label.

JPEG (ITU T.81 markers, the rules libjpeg applies): an Adobe APP14 segment's
transform flag (0: RGB, 1: YCbCr) decides first; then a JFIF APP0 segment
(always YCbCr); then the SOF component identifiers (R,G,B: RGB; 1,2,3:
YCbCr); otherwise the label. JPEG 2000: the COD marker's multiple component
transform flag (the decoder inverts the transform, so the output is RGB).
Real slides break the label: the corpus pyramid's tiles are JFIF (YCbCr) but
labelled RGB, and readers that trust the label return false colours.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dicomvol.model.slide import ColorDecision

#: ``--jpeg-color``: "auto" (the codestream when it says, else the label), "pi" (the
#: label), "stream" (the codestream; libjpeg's default YCbCr when it says nothing).
COLOR_MODES = ("auto", "pi", "stream")
JPEG_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"}
J2K_SYNTAXES = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
                "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                "1.2.840.10008.1.2.4.203"}


@dataclass(frozen=True, slots=True)
class JpegMarkers:
    """What a JPEG header says about colour."""

    jfif: bool
    adobe_transform: int | None
    component_ids: tuple[int, ...]
    #: (horizontal, vertical) sampling factors of the first component (2, 2 for 4:2:0).
    sampling: tuple[int, int] = (1, 1)


def jpeg_markers(data: bytes) -> JpegMarkers:
    """Parse markers from SOI up to SOS (no entropy-coded data is read)."""
    jfif = False
    adobe: int | None = None
    ids: tuple[int, ...] = ()
    sampling = (1, 1)
    pos = 2 if data[:2] == b"\xff\xd8" else 0
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            pos += 1
            continue
        marker = data[pos + 1]
        if marker in (0xFF, 0x01) or 0xD0 <= marker <= 0xD8:
            pos += 2 if marker != 0xFF else 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        body = data[pos + 4:pos + 2 + length]
        if marker == 0xE0 and body[:5] == b"JFIF\x00":
            jfif = True
        elif marker == 0xEE and body[:5] == b"Adobe" and len(body) >= 12:
            adobe = body[11]
        elif marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB,
                        0xCD, 0xCE, 0xCF) and len(body) >= 6:
            n = body[5]
            ids = tuple(body[6 + 3 * c] for c in range(n) if 6 + 3 * c < len(body))
            if len(body) > 7:
                sampling = (body[7] >> 4, body[7] & 0x0F)
        elif marker == 0xDA:  # SOS: the header is over
            break
        pos += 2 + length
    return JpegMarkers(jfif, adobe, ids, sampling)


def jpeg_stream_colour(markers: JpegMarkers) -> tuple[str, str]:
    """("RGB" | "YCbCr" | "", evidence) from JPEG markers, in libjpeg's order."""
    if len(markers.component_ids) != 3:
        return "", f"{len(markers.component_ids)} component(s)"
    if markers.adobe_transform is not None:
        if markers.adobe_transform == 0:
            return "RGB", "APP14 transform 0"
        return "YCbCr", f"APP14 transform {markers.adobe_transform}"
    if markers.jfif:
        return "YCbCr", "JFIF APP0"
    if markers.component_ids == (82, 71, 66):
        return "RGB", "component IDs R,G,B"
    if markers.component_ids == (1, 2, 3):
        return "YCbCr", "component IDs 1,2,3"
    return "", "no JFIF/APP14, component IDs " + ",".join(map(str, markers.component_ids))


def j2k_mct(data: bytes) -> bool | None:
    """The COD marker's multiple component transform flag, None when not found."""
    start = data.find(b"\xff\x4f\xff\x51")  # SOC SIZ (a JP2 file wraps the codestream)
    if start < 0:
        return None
    pos = start + 2
    while pos + 4 <= len(data):
        marker = struct.unpack(">H", data[pos:pos + 2])[0]
        if marker == 0xFF90:  # SOT: the main header is over
            return None
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if marker == 0xFF52 and pos + 8 < len(data):
            return data[pos + 8] != 0  # marker(2) Lcod(2) Scod(1) order(1) layers(2) MCT(1)
        pos += 2 + length
    return None


def _label_colour(label: str) -> str:
    return "YCbCr" if label.startswith("YBR_FULL") else "RGB"


def decide(first_frame: bytes, transfer_syntax: str, label: str, samples: int,
           mode: str = "auto") -> ColorDecision:
    """How an instance's frames are turned into RGB (or grey), from its first frame.

    Parameters
    ----------
    first_frame : bytes
        The first frame's (encapsulated) bytes; ignored for native data.
    transfer_syntax, label : str
        The instance's TransferSyntaxUID and PhotometricInterpretation.
    samples : int
        SamplesPerPixel.
    mode : {"auto", "pi", "stream"}
        See :data:`COLOR_MODES`.
    """
    if samples == 1:
        return ColorDecision(label, "", "", "MONOCHROME", False, mode)
    if transfer_syntax in JPEG_SYNTAXES:
        stream, evidence = jpeg_stream_colour(jpeg_markers(first_frame))
        fallback = "YCbCr" if mode == "stream" else _label_colour(label)
        chosen = _label_colour(label) if mode == "pi" else (stream or fallback)
        conflict = bool(stream) and stream != _label_colour(label)
        return ColorDecision(label, stream, evidence, chosen, conflict, mode)
    if transfer_syntax in J2K_SYNTAXES:
        mct = j2k_mct(first_frame)
        stream = "" if mct is None else ("MCT" if mct else "no MCT")
        evidence = f"COD {stream}" if stream else "no COD marker"
        if mct:  # the decoder inverts the transform: RGB comes out
            conflict = not label.startswith("YBR_ICT") and not label.startswith("YBR_RCT")
            chosen = _label_colour(label) if mode == "pi" else "RGB"
        else:
            conflict = mct is not None and label.startswith(("YBR_ICT", "YBR_RCT"))
            chosen = _label_colour(label) if mode == "pi" or not conflict else "RGB"
        return ColorDecision(label, stream, evidence, chosen, conflict, mode)
    return ColorDecision(label, "", "", _label_colour(label), False, mode)


def conflict_warning(decision: ColorDecision, what: str) -> str:
    """The warning text for a colour conflict."""
    return (f"{what}: the codestream says {decision.stream} ({decision.evidence}) but the "
            f"PhotometricInterpretation says {decision.label}; decoded as "
            f"{decision.decoded_as} (--jpeg-color {decision.mode})")
