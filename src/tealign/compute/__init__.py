"""Reference calculations: SPEC parsing, backends (PySCF, GPAW, xTB), a resumable job store,
isolated atoms and calibration sets."""
