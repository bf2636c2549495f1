"""The benchmarks, one entry each: what ``tealign bench NAME`` runs, the keys of its ``--json``
object, its file in a run directory (``bench_NAME.json``) and how the report shows it.

The API (``api.bench_NAME``), the command line (``tealign bench NAME``), the run directory
(:data:`tealign.rundir.RESULT_FILES`) and the report (the Benchmarks section, the summary's
cards) iterate over :data:`BENCHMARKS`. To add a benchmark, write ``tealign/bench/NAME.py``
with ``run(calculator, output_dir, *, progress=None, **options) -> dict`` (the dict it also
writes as ``output_dir/results.json``: the entry's ``keys`` and ``calculator``) and add its
:class:`Benchmark` here; the API's generic :func:`tealign.api.run_benchmark`, a generated
command (its :class:`Option`\\ s) and the report's generic table (its ``columns``) then take
it up. The benchmark data files themselves are the dataset registry's
(:mod:`tealign.bench.registry`).

This module imports nothing of tealign: the layers above read it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    """A command-line option of a benchmark's generated command (``--NAME``, dashes for
    underscores), passed to its ``run`` as keyword ``name``."""

    name: str
    type: type          #: int, float, str or bool
    default: object
    help: str


@dataclass(frozen=True)
class Column:
    """One number of the benchmark's results: its key, heading and format."""

    key: str
    heading: str
    fmt: str


@dataclass(frozen=True)
class Headline:
    """The benchmark's number on the report's summary card."""

    key: str
    label: str
    fmt: str
    unit: str


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: ``tealign bench NAME``, ``api.bench_NAME``, ``bench_NAME.json``."""

    name: str
    title: str                  #: one line: the generated command's help, the report heading
    keys: tuple[str, ...]       #: the ``--json`` keys taken from its results (``results`` added)
    module: str = ""            #: ``tealign.bench.<module>`` holding ``run`` (default: name)
    #: the report section that shows it: ``benchmarks`` (one part each) or its own (``cross``)
    section: str = "benchmarks"
    headline: Headline | None = None  #: its summary card
    caption: str = ""           #: the caption of its figures in the report
    columns: tuple[Column, ...] = ()  #: the report's table where it has no part of its own
    options: tuple[Option, ...] = ()  #: the generated command's own options
    #: the kinds of item its results break down by (``by_kind``): (key, title) each, in the
    #: order of the report's table
    kinds: tuple[tuple[str, str], ...] = ()

    @property
    def kind(self) -> str:
        """Its result kind (:data:`tealign.rundir.RESULT_FILES`): ``bench_NAME``."""
        return f"bench_{self.name}"


#: Every benchmark, in the order of the report's Benchmarks section.
BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("lattice", "Lattice constants of cubic crystals (cell relaxation) vs PBE and "
              "experiment", ("n", "mae_A", "mae_exp_A", "mae_by_structure", "excluded",
                             "skipped", "r_max_A"),
              headline=Headline("mae_A", "lattice MAE vs PBE", ".3f", " Å"),
              caption="lattice-constant errors"),
    Benchmark("eos", "Si E–V curve: a0, B0 and RMSE against a reference curve",
              ("a0_A", "b0_GPa", "rmse_vs_reference_meV_per_atom"),
              headline=Headline("a0_A", "Si a₀", ".3f", " Å"),
              caption="E–V curves relative to their minima"),
    Benchmark("torsion", "Relaxed biaryl torsion scans against OpenFF B3LYP-D3(BJ) profiles",
              ("n", "barrier_mae_kcal_mol", "profile_mae_kcal_mol", "unconverged_points",
               "skipped", "force_calls", "max_force_calls", "cap_reached", "cap_bit"),
              headline=Headline("barrier_mae_kcal_mol", "torsion barrier MAE", ".2f",
                                " kcal/mol"),
              caption="torsion profiles vs reference"),
    Benchmark("reactions", "Forward reaction barriers (RDB7) against CCSD(T)-F12 references",
              ("n", "mae_kcal_mol", "mae_eV", "rmse_kcal_mol"),
              headline=Headline("mae_kcal_mol", "reaction barrier MAE", ".1f", " kcal/mol"),
              caption="barrier errors"),
    Benchmark("water", "Liquid water NVT at 300 K: O–O RDF vs X-ray experiment and "
              "TIP3P/TIP4P", ("peak_r_A", "peak_g", "rmse_vs_exp", "mean_temperature_K",
                              "skipped"),
              headline=Headline("peak_r_A", "water O–O first peak", ".2f", " Å"),
              caption="O–O RDF"),
    Benchmark("cross", "Cross-domain consistency against target-level truth",
              ("mode", "n", "mae_eV", "rmse_eV", "reaction_mae_eV", "adsorption_mae_eV",
               "lattice_mae_eV", "skipped"), section="cross",
              kinds=(("reaction", "gas–solid reactions"), ("adsorption", "adsorption"),
                     ("lattice", "molecular-crystal lattice energies"))),
)}


def get(name: str) -> Benchmark:
    """The benchmark ``name``; KeyError naming the known ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


def in_section(section: str) -> tuple[Benchmark, ...]:
    """The benchmarks a report section shows, in registry order."""
    return tuple(b for b in BENCHMARKS.values() if b.section == section)
