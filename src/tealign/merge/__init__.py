"""Merge N sources onto one target scale into a MACE-ready training set (``tealign merge``).

A TOML file lists the target's isolated-atom table and the sources::

    [target]
    e0 = "calib.atoms_pbe.json"     # the target scale's isolated atoms = MACE's E0s (or a
                                    # list of tables computed at the same settings: their union)
    r_max = 4.5                     # Å, for statistics.json
    seed = 0                        # for splits made here

    [[source]]
    name = "inorganic"
    path = "inorganic-mini.extxyz"
    energy_key = "energy_pbe"
    forces_key = "forces_pbe"
    stress_key = "stress_pbe"
    alignment = "target"            # already on the target scale
    config_type = "inorganic"

    [[source]]
    name = "organic"
    path = "organic-mini.extxyz"
    energy_key = "energy_wb97m"
    forces_key = "forces_wb97m"
    alignment = "alignment.json"    # from `tealign fit`
    # no D3 option: tealign's energy_<label> is already the DFT energy without D3(BJ)
    weights = { energy = 1.0, forces = 1.0 }

Dispersion (D3(BJ) is removed at most once; docs/architecture.md §1.2):

- tealign's own compute output (``energy_<label>`` beside ``d3_energy_<label>``, flagged
  ``d3_in_energy_<label> = F``) is dispersion-free already: use neither option. merge refuses
  either on such a key.
- totals that include D3 with the D3 part stored beside them (``energy_<label>`` + ``d3_energy_
  <label>``, both from elsewhere): ``d3_keys = true`` subtracts the stored part.
- totals that include D3 with nothing stored (SPICE ``dft_total_energy``, OFF23):
  ``remove_d3 = "wb97m"`` computes D3(BJ) with dftd3 and subtracts it.

The same config may be given as a dict of this schema (paths relative to the current
directory) or a :class:`MergeConfig`; it is parsed and validated once
(:mod:`tealign.merge.config`: schema, parsing, the one path rule), and streamed by
:mod:`tealign.merge.run`.

Per source: ``reader`` (format), ``remove_d3`` (functional: compute and subtract D3(BJ)),
``head`` (default: the name), ``weights`` (MACE per-config property weights), ``split_key``,
and, with ``--per-source`` only, ``e0`` (that head's own isolated-atom table: a multi-head
model whose heads keep their sources' own scales).
Molecules (non-periodic frames) get zero stress and virial weight.

Output directory: ``train/``, ``valid/``, ``test/`` shard directories (``--format h5``: MACE
sharded HDF5 with ``*.meta.jsonl`` sidecars; ``--format lmdb``: ASE-LMDB ``.aselmdb`` shards,
metadata inside each row; both train with mace-torch 0.3.16), ``statistics.json``,
``merged.extxyz`` (docs/architecture.md §4.3 keys; skipped with ``--no-extxyz``),
``report.json`` (every input frame counted, written or rejected with its reason) and
``merged.extxyz.rejects.jsonl``.
With ``per_source`` the same layout is written under one sub-directory per source (for MACE
multi-head training).

Streaming: each source is read once, batch by batch (a source keeps its ``split_key``
column when the first frames with its energy all carry one; then every frame must); frames
go to per-split shard writers run by ``--workers`` processes or a Dask ``--scheduler``, so
peak memory is a few batches and shards whatever the number of frames. Splits without a
``split_key`` are drawn per ``mol_id``, else per ``mp_id`` (an MPtrj material's frames stay
together), else per frame.
``statistics.json`` is accumulated on the way over every training frame (``mean``: E − ΣE0
per atom; ``std``: RMS force component, as mace-torch's ``compute_statistics``), except
``avg_num_neighbors``, counted with mace-torch's neighbour list on at most ~2,000 training
frames spread evenly over the split.
"""

from tealign.merge.config import (
    PROPS,
    SPLITS,
    MergeConfig,
    SourceConfig,
    load_config,
    parse_config,
    resolve_path,
)
from tealign.merge.run import (
    DEFAULT_FORMAT,
    SourceReport,
    check_provenance,
    identity_alignment,
    prepare_source,
    run_merge,
)

__all__ = ["DEFAULT_FORMAT", "PROPS", "SPLITS", "MergeConfig", "SourceConfig", "SourceReport",
           "check_provenance", "identity_alignment", "load_config", "parse_config",
           "prepare_source", "resolve_path", "run_merge"]
