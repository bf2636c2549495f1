"""Evaluate a MACE model on a dataset, in batches (``tealign eval``).

Predictions go through mace-torch's own data pipeline (``AtomicData`` graphs batched by its
``DataLoader``), many structures per forward pass, instead of one ASE call per structure.
Errors: energy per atom (meV/atom), force components (meV/Å), stress components (meV/Å³,
periodic frames), overall and per ``config_type``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tealign.errors import SetupError
from tealign.io import iter_batches
from tealign.io.frames import FrameBatch, concat_batches
from tealign.keys import REF


@dataclass
class Predictions:
    energy: np.ndarray  # (n_frames,) eV
    forces: np.ndarray  # (n_atoms, 3) eV/Å
    stress: np.ndarray | None  # (n_frames, 3, 3) eV/Å³


def load_model(path: str | Path, device: str = "cpu", dtype: str | None = None):
    """Load a MACE model file (as saved by mace-torch) for inference.

    ``dtype`` ("float64" or "float32") converts the weights; None keeps the file's precision.
    float32 runs about twice as fast on CPU; energies move by ~1e-4 eV per small molecule.
    """
    import torch

    from tealign._mace import load_model as load_file

    model = load_file(path, device=device)
    if dtype is not None:
        if dtype not in ("float64", "float32"):
            raise SetupError(f"dtype must be float64 or float32, not {dtype!r}", field="--dtype")
        model = model.to(getattr(torch, dtype))
    for param in model.parameters():
        param.requires_grad = False
    model.eval()
    return model


def predict(model, batch: FrameBatch, head: str | None = None, batch_size: int = 32,
            compute_stress: bool = True, device: str = "cpu",
            compute_forces: bool = True) -> Predictions:
    """Energies, forces and stress of every frame of ``batch`` with a loaded MACE model.

    ``compute_forces=False`` (single-point energies only) skips the backward pass.
    """
    import torch

    from tealign._mace import import_mace

    import_mace()
    from mace import data
    from mace.tools import torch_geometric, utils

    z_table = utils.AtomicNumberTable([int(z) for z in model.atomic_numbers])
    heads = list(getattr(model, "heads", ["Default"]))
    # like MACECalculator: the head named Default when there is one (a replay fine-tuned
    # model's new head; its pt_head comes first), else the first
    head_name = head or next((h for h in heads if h.lower() == "default"), heads[0])
    if head_name not in heads:
        raise SetupError(f"model has no head {head_name!r}; heads: {heads}", field="--head")
    unknown = set(np.unique(batch.numbers).tolist()) - set(z_table.zs)
    if unknown:
        from ase.data import chemical_symbols

        raise SetupError("the model does not know element(s) "
                         + ", ".join(chemical_symbols[z] for z in sorted(unknown)),
                         field="numbers")
    energies, forces, stresses = [], [], []
    # mace-torch builds its graphs in torch's default dtype: the model's, for this call only;
    # forces and stress are gradients: autograd must record the forward pass for them only
    with _default_dtype(next(model.parameters()).dtype), \
            contextlib.nullcontext() if compute_forces else torch.no_grad():
        graphs = []
        for i in range(batch.n_frames):
            a, b = batch.offsets[i], batch.offsets[i + 1]
            cfg = data.Configuration(
                atomic_numbers=batch.numbers[a:b], positions=batch.positions[a:b],
                properties={}, property_weights={}, cell=batch.cell[i],
                pbc=tuple(bool(x) for x in batch.pbc[i]), head=head_name)
            graphs.append(data.AtomicData.from_config(cfg, z_table=z_table,
                                                      cutoff=float(model.r_max), heads=heads))
        loader = torch_geometric.dataloader.DataLoader(graphs, batch_size=batch_size,
                                                       shuffle=False, drop_last=False)
        for g in loader:
            g = g.to(device)
            out = model(g.to_dict(), compute_stress=compute_stress and compute_forces,
                        compute_force=compute_forces, training=False)
            energies.append(out["energy"].detach().cpu().numpy())
            if compute_forces:
                forces.append(out["forces"].detach().cpu().numpy())
            if compute_stress and out.get("stress") is not None:
                stresses.append(out["stress"].detach().cpu().numpy())
    return Predictions(
        energy=np.concatenate(energies) if energies else np.zeros(0),
        forces=np.concatenate(forces) if forces else np.zeros((0, 3)),
        stress=np.concatenate(stresses) if stresses else None,
    )


@contextlib.contextmanager
def _default_dtype(dtype):
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def metrics(b: FrameBatch, p: Predictions,
            keys: tuple[str, str, str] = (REF.energy, REF.forces, REF.stress)) -> dict:
    """Errors of predictions ``p`` against the reference ``keys`` (energy, forces, stress) of
    ``b``: energy per atom MAE/RMSE (meV/atom), force component MAE/RMSE (meV/Å), stress
    component MAE (meV/Å³, periodic frames); frames without a reference value are left out."""
    ek, fk, sk = keys
    out: dict = {"n": int(b.n_frames)}
    if b.n_frames == 0:
        return out
    if ek in b.info:
        has = b.has(ek)
        err = (p.energy[has] - np.asarray(b.info[ek], float)[has]) / b.n_atoms[has]
        out["energy_mae_meV_per_atom"] = float(np.mean(np.abs(err)) * 1000)
        out["energy_rmse_meV_per_atom"] = float(np.sqrt(np.mean(err**2)) * 1000)
    if fk in b.arrays:
        has = np.repeat(b.has(fk), b.n_atoms)
        err = p.forces[has] - np.asarray(b.arrays[fk], float)[has]
        if err.size:
            out["forces_mae_meV_per_A"] = float(np.mean(np.abs(err)) * 1000)
            out["forces_rmse_meV_per_A"] = float(np.sqrt(np.mean(err**2)) * 1000)
    if sk in b.info and p.stress is not None:
        has = b.has(sk) & b.pbc.any(axis=1)
        if has.any():
            ref = np.asarray(b.info[sk], float)[has].reshape(-1, 3, 3)
            err = p.stress[has] - ref
            out["stress_mae_meV_per_A3"] = float(np.mean(np.abs(err)) * 1000)
    return out


def evaluate(model_path: str | Path, data: str | Path, energy_key: str = REF.energy,
             forces_key: str = REF.forces, stress_key: str = REF.stress,
             head: str | None = None, batch_size: int = 32, device: str = "cpu",
             split: str | None = None) -> dict:
    """The ``eval`` JSON of docs/architecture.md §5.1:
    ``{"overall": {...}, "by_config_type": {name: {...}}}``."""
    model = load_model(model_path, device)
    parts = []
    rejects = 0
    for batch in iter_batches(data):
        rejects += len(batch.rejects)
        if split is not None and "split" in batch.info:
            batch = batch.select(np.asarray(batch.info["split"] == split))
        if batch.n_frames:
            parts.append(batch)
    if not parts:
        raise SetupError("no frames to evaluate", file=str(data))
    b = concat_batches(parts)
    if energy_key not in b.info and forces_key not in b.arrays:
        raise SetupError(f"no frame has {energy_key} or {forces_key}", file=str(data),
                         field=energy_key)
    pred = predict(model, b, head=head, batch_size=batch_size, device=device)
    keys = (energy_key, forces_key, stress_key)
    result = {"overall": metrics(b, pred, keys), "by_config_type": {}}
    if "config_type" in b.info:
        types = np.asarray(b.info["config_type"]).astype(str)
        for t in sorted(set(types)):
            mask = types == t
            sub = b.select(mask)
            atom_mask = np.repeat(mask, b.n_atoms)
            sp = Predictions(pred.energy[mask], pred.forces[atom_mask],
                             None if pred.stress is None else pred.stress[mask])
            result["by_config_type"][t] = metrics(sub, sp, keys)
    result["frames_rejected"] = rejects
    return result
