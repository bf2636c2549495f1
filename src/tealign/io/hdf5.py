"""Opening HDF5 files for reading at bounded memory."""

from __future__ import annotations

import os

from tealign.errors import SetupError

#: HDF5 metadata cache size (bytes) while reading, fixed. With the library's adaptive defaults
#: the cache grew with the groups visited: reading every group of a SPICE-shaped file of
#: 20,000 molecule groups peaked at 414 MB RSS. An adaptive cache bounded at 2 MB still grew
#: with the file (2,000 groups read: 55 MB in a file of 2,000 groups, 67 MB in one of
#: 20,000); fixed at 1 MB it does not (53 and 51 MB), and reads as fast.
METADATA_CACHE_BYTES = 1 << 20


def open_hdf5(path: str | os.PathLike):
    """``h5py.File(path, "r")`` with its metadata cache held at :data:`METADATA_CACHE_BYTES`
    (so memory stays flat over files of many groups); a file that is not HDF5 is a
    :class:`SetupError` naming it."""
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise SetupError(f"cannot open as HDF5: {exc}", file=str(path)) from None
    cfg = fh.id.get_mdc_config()
    cfg.set_initial_size = True
    cfg.initial_size = cfg.min_size = cfg.max_size = METADATA_CACHE_BYTES
    fh.id.set_mdc_config(cfg)
    return fh
