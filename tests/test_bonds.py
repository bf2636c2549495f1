"""Bond graphs and the side of a bond that a dihedral turn moves."""

from ase.build import molecule

from tealign.bonds import bond_graph, side_of_bond


def test_side_of_the_cc_bond_of_ethanol():
    m = molecule("CH3CH2OH")
    # covalent radii alone (mult 1.0) miss the 1.43 Å C–O bond: a turn would tear it
    tight = bond_graph(m, mult=1.0)
    assert not any(m.numbers[k] == 8 for i in tight for k in tight[i] if m.numbers[i] == 6)
    adj = bond_graph(m, mult=1.1)
    c = [i for i, z in enumerate(m.numbers) if z == 6]
    o = next(i for i, z in enumerate(m.numbers) if z == 8)
    c_oh = next(i for i in c if o in adj[i])
    c_me = next(i for i in c if i != c_oh)
    side = side_of_bond(adj, c_me, c_oh)  # the CH2OH half: C, O, two H on C, H on O
    assert c_me not in side and o in side and len(side) == 5
    assert side_of_bond(adj, c_oh, c_me) | side == set(range(len(m)))


def test_a_ring_bond_reaches_back():
    m = molecule("C6H6")
    adj = bond_graph(m, mult=1.1)
    i = 0
    j = next(k for k in adj[i] if m.numbers[k] == 6)
    assert i in side_of_bond(adj, i, j)
