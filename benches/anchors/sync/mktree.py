#!/usr/bin/env python3
"""Make a web-root-like tree for whole-tree comparisons (failoverd mirror, rsync -a,
unison -batch): N files spread over nested folders (dDD/sSS/fN.dat), sizes from 1 KiB to
256 KiB (log-uniform), seeded.

Usage: mktree.py DIR N
Needs: python3 3.9+ (apt-get install -y python3)."""
import os, random, sys
if len(sys.argv) != 3:
    sys.exit(__doc__)
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
for i in range(n):
    d = os.path.join(root, f"d{i % 37}", f"s{i % 11}")
    os.makedirs(d, exist_ok=True)
    size = int(2 ** rng.uniform(10, 18))
    with open(os.path.join(d, f"f{i}.dat"), "wb") as f:
        f.write(rng.randbytes(size))
