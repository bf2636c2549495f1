"""MACE training recipes and launch (single process or torchrun)."""

from tealign.train.launch import build_command, parse_mace_args, plan, train
from tealign.train.presets import PRESETS, preset_args

__all__ = ["PRESETS", "build_command", "parse_mace_args", "plan", "preset_args",
           "train"]
