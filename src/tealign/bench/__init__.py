"""Benchmarks (paper section IV): one module per benchmark, each taking any ASE calculator."""
