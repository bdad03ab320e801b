"""Whole-slide microscopy: frame index, colour decision, decode and regions.

:func:`dicomvol.slide.index.index_slides` turns SM instances into
:class:`~dicomvol.model.slide.SlideInfo` values (headers and item headers
only); :class:`dicomvol.slide.regions.Slide` reads regions, levels and dask
arrays from them, decoding only the frames a read touches.
"""
