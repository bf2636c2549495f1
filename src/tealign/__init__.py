"""tealign: Total Energy Alignment of quantum-chemistry datasets for universal MLIPs.

Implements TEA (inner-core energy alignment + atomization-energy correction) from
Shiota et al., arXiv:2412.13088 (MACE-Osaka24), with open reference codes.
"""

__version__ = "0.1.0"
