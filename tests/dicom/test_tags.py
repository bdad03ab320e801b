"""The lean readers' static tag table against pydicom's data dictionary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword

from dicomvol.dicom.lean import KEYWORDS
from dicomvol.dicom.tags import KEYWORD_TAGS, TAGS, tag_and_vr, vr_of
from dicomvol.testing import write_series


def test_every_lean_keyword_is_in_the_table() -> None:
    assert set(KEYWORDS) <= set(TAGS) <= set(KEYWORD_TAGS)


@pytest.mark.parametrize("keyword", sorted(KEYWORD_TAGS))
def test_table_entry_equals_pydicoms_dictionary(keyword: str) -> None:
    tag = tag_for_keyword(keyword)
    assert tag is not None, f"{keyword} is not a dictionary keyword"
    assert KEYWORD_TAGS[keyword] == (int(tag), dictionary_VR(tag)), (
        f'regenerate: "{keyword}": (0x{int(tag):08X}, "{dictionary_VR(tag)}"),')


def test_unlisted_keywords_and_tags_come_from_pydicom() -> None:
    assert "PatientSpeciesDescription" not in KEYWORD_TAGS  # an output-name template may
    assert tag_and_vr("PatientSpeciesDescription") == (0x00102201, "LO")  # name any keyword
    assert tag_and_vr("NotAKeyword") is None
    assert vr_of(0x00102201) == "LO"
    assert tag_and_vr("PatientWeight") == KEYWORD_TAGS["PatientWeight"]  # listed
    assert vr_of(0x00099999) == "UN"
    assert vr_of(TAGS["Rows"][0]) == "US"


def test_lean_reader_reads_a_file_without_pydicom(tmp_path: Path) -> None:
    """With pydicom unimportable, the lean reader still parses a plain CT slice."""
    write_series(tmp_path, shape=(6, 5, 2))
    paths = sorted(tmp_path.glob("*.dcm")) or sorted(p for p in tmp_path.iterdir())
    script = (
        "import os, sys\n"
        "sys.modules['pydicom'] = None\n"
        "from dicomvol.dicom.lean import read_lean\n"
        "path = sys.argv[1]\n"
        "with open(path, 'rb') as fp:\n"
        "    found = read_lean(fp, os.path.getsize(path))\n"
        "assert found is not None\n"
        "print(found[0].get('Rows'), found[0].get('Modality'))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(paths[0])], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[1] == "CT" and int(out[0]) > 0


def test_every_keyword_the_package_names_is_in_the_table() -> None:
    """A keyword named in the sources (a string literal) that pydicom's dictionary knows is
    listed, so that the lean readers never import pydicom to look it up."""
    import re

    import dicomvol

    package = Path(dicomvol.__file__).parent
    missing = set()
    for source in package.rglob("*.py"):
        for word in re.findall(r'"([A-Z][A-Za-z0-9]+)"', source.read_text()):
            tag = tag_for_keyword(word)
            if tag is not None and word not in KEYWORD_TAGS:
                missing.add(f'"{word}": (0x{int(tag):08X}, "{dictionary_VR(tag)}"),')
    assert not missing, "add to KEYWORD_TAGS:\n" + "\n".join(sorted(missing))
