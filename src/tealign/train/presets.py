"""MACE training recipes, as the arguments tealign hands to ``mace_run_train``.

``osaka24-small|medium|large`` carry over the MACE-Osaka24 training scripts
(qiqb-osaka/mace-osaka24; the paper's appendix VII.B): ScaleShiftMACE with residual
interaction blocks, 2 interactions, correlation 3, max_ell 3, r_max 4.5 Å, max_L 0 / 1 / 2,
128 channels, 10 radial functions, MLP 16x0e, rms-forces scaling, the universal loss with
energy/forces/stress weights 1/10/100, per-atom MAE error table, lr 0.005, weight decay 1e-8,
EMA 0.995, scheduler patience 5, batch 16 / valid batch 32, 200 epochs with patience 50,
AMSGrad, seed 1, gradient clipping 100, kept checkpoints, CPU-saved model, restart from the
latest checkpoint.

``small-cpu`` and ``tiny`` keep the architecture family (ScaleShiftMACE, residual
interactions, r_max 4.5 Å, the same loss and optimiser) at sizes that train on a 2-core CPU in
tens of minutes and in about a minute.
"""

from __future__ import annotations

OSAKA24_COMMON: dict[str, object] = {
    "model": "ScaleShiftMACE",
    "interaction_first": "RealAgnosticResidualInteractionBlock",
    "interaction": "RealAgnosticResidualInteractionBlock",
    "num_interactions": 2,
    "correlation": 3,
    "max_ell": 3,
    "r_max": 4.5,
    "num_channels": 128,
    "num_radial_basis": 10,
    "MLP_irreps": "16x0e",
    "scaling": "rms_forces_scaling",
    "loss": "universal",
    "energy_weight": 1,
    "forces_weight": 10,
    "compute_stress": True,
    "stress_weight": 100,
    "error_table": "PerAtomMAE",
    "eval_interval": 1,
    "lr": 0.005,
    "weight_decay": 1e-8,
    "ema": True,
    "ema_decay": 0.995,
    "scheduler_patience": 5,
    "batch_size": 16,
    "valid_batch_size": 32,
    "max_num_epochs": 200,
    "patience": 50,
    "amsgrad": True,
    "seed": 1,
    "clip_grad": 100,
    "keep_checkpoints": True,
    "save_cpu": True,
    "restart_latest": True,
}

#: the keys that fix the architecture (a fine-tuning run takes them from its model)
ARCHITECTURE = ("interaction_first", "interaction", "num_interactions", "correlation",
                "max_ell", "r_max", "num_channels", "num_radial_basis", "MLP_irreps", "max_L",
                "hidden_irreps", "radial_MLP", "radial_type", "gate", "model")

PRESETS: dict[str, dict[str, object]] = {
    "osaka24-small": {**OSAKA24_COMMON, "max_L": 0},
    "osaka24-medium": {**OSAKA24_COMMON, "max_L": 1},
    "osaka24-large": {**OSAKA24_COMMON, "max_L": 2},
    "small-cpu": {**OSAKA24_COMMON, "max_L": 0, "num_channels": 32, "max_ell": 2,
                  "correlation": 2, "num_radial_basis": 8, "max_num_epochs": 60,
                  "patience": 15, "batch_size": 8, "valid_batch_size": 16, "lr": 0.01},
    "tiny": {**OSAKA24_COMMON, "max_L": 0, "num_channels": 8, "max_ell": 1,
             "correlation": 1, "num_interactions": 1, "num_radial_basis": 6,
             "MLP_irreps": "4x0e", "max_num_epochs": 4, "patience": 4, "batch_size": 8,
             "valid_batch_size": 16, "lr": 0.01, "ema": False, "keep_checkpoints": False},
}


def preset_args(name: str, **overrides) -> list[str]:
    """The ``--key value`` list for ``mace_run_train`` (booleans as flags when True)."""
    from tealign.errors import SetupError

    if name not in PRESETS:
        raise SetupError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}",
                         field="--preset")
    cfg = {**PRESETS[name], **overrides}
    return to_cli(cfg)


def to_cli(cfg: dict[str, object]) -> list[str]:
    args: list[str] = []
    for key, value in cfg.items():
        if value is None or value is False:
            continue
        if value is True:
            args.append(f"--{key}")
            if key in ("compute_stress",):  # mace parses these as str→bool options
                args.append("True")
            continue
        if isinstance(value, (list, tuple)):
            args += [f"--{key}", *map(str, value)]
        else:
            args += [f"--{key}", str(value)]
    return args
