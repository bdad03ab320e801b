"""Checksums of every output of a whole-corpus conversion (the layout-move regression).

``python tests/regression/outputs.py record`` converts each corpus set with
``ConvertOptions(compress=False, jobs=2)`` and writes the SHA-256 of every
output file (images, sidecars, bval/bvec, the JSON run report) to
``corpus_outputs.json`` beside this file. ``test_outputs_unchanged`` converts
again and compares. Uncompressed NIfTI is hashed so that the check does not
depend on the gzip library's version. A deliberate change of behaviour
re-records the file in the same commit, which then lists what changed.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "corpus_outputs.json"
#: Corpus sets converted (every set with radiology images).
SETS = ("ct_tilt", "ct_lung1", "pet_wholebody_seg", "edge_cases", "mr_orientation",
        "mr_4d_nih", "transfer_syntaxes", "enhanced_mr", "seg_dcmqi", "seg_highdicom")
#: Outputs that are not compared byte for byte (pyarrow's metadata names its version).
UNCOMPARED = ("dicomvol_report.parquet", "dicomvol_report.csv")


def checksums(out_dir: Path) -> dict[str, object]:
    """What is compared of every output file, by name.

    The SHA-256 of the bytes; for a resampled (interpolated) image the SHA-256
    of its header and the min, max, mean and standard deviation of its data,
    compared with a tolerance (interpolated floats may differ in the last bit
    between numpy/scipy builds).
    """
    import numpy as np

    resampled = set()
    for side in out_dir.glob("*.json"):
        meta = json.loads(side.read_text())
        if meta.get("Resampled") is True and "LabelMap" not in meta:  # label maps: integers
            resampled.add(side.name[:-len(".json")] + ".nii")
    out: dict[str, object] = {}
    for p in sorted(out_dir.iterdir()):
        if not p.is_file() or p.name in UNCOMPARED:
            continue
        raw = p.read_bytes()
        if p.name in resampled:
            data = np.frombuffer(raw[352:], dtype=np.float32).astype(np.float64)
            out[p.name] = {"header_sha256": hashlib.sha256(raw[:352]).hexdigest(),
                           "stats": [float(data.min()), float(data.max()),
                                     float(data.mean()), float(data.std())]}
        else:
            out[p.name] = hashlib.sha256(raw).hexdigest()
    return out


def convert_all(corpus: Path, work: Path) -> dict[str, dict[str, object]]:
    """Convert every set into ``work/<set>`` and return the checksums per set."""
    import dicomvol

    result = {}
    for name in SETS:
        dest = work / name
        dicomvol.convert([corpus / name], dest, dicomvol.ConvertOptions(compress=False, jobs=2))
        result[name] = checksums(dest)
    return result


def main(argv: list[str]) -> int:
    if argv[1:2] != ["record"]:
        print(__doc__)
        return 2
    sys.path.insert(0, str(HERE.parent))
    from conftest import corpus_root

    corpus = corpus_root()
    if corpus is None:
        print("corpus not found", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        sums = convert_all(corpus, Path(tmp))
    GOLDEN.write_text(json.dumps(sums, indent=1, sort_keys=True) + "\n")
    print(f"recorded {sum(len(v) for v in sums.values())} checksums in {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
