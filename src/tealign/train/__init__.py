"""MACE training recipes and launch (single process or torchrun)."""

from tealign.train.launch import build_command, train
from tealign.train.presets import PRESETS, preset_args

__all__ = ["PRESETS", "build_command", "preset_args", "train"]
