"""numpy on first use, for modules that are imported on every run but compute with numpy
only for some inputs (vendor diffusion encodings): a plain series' processes never load
numpy (issue 15: 22 MiB of resident memory in each).

``from dicomvol._lazy import numpy as np`` at run time, ``import numpy as np`` for the
type checker; the first attribute read imports numpy.
"""

from __future__ import annotations

from typing import Any


class _Numpy:
    """A stand-in for the numpy module that imports it on first attribute access."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        import numpy

        return getattr(numpy, name)


numpy = _Numpy()
