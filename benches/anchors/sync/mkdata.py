#!/usr/bin/env python3
"""Make an old/new file pair for delta-engine comparisons (failoverd mirror, rsync
--no-whole-file, rdiff): SIZE MiB of random bytes, then N scattered edits (overwrite, insert,
delete) of a few hundred bytes each. Deterministic (seeded).

Usage: mkdata.py SIZE_MIB EDITS DIR   (writes DIR/old.bin and DIR/new.bin)
Needs: python3 3.9+ (apt-get install -y python3)."""
import os, random, sys
if len(sys.argv) != 4:
    sys.exit(__doc__)
size_mib, edits, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(42)
old = bytearray(b"".join(rng.randbytes(1 << 20) for _ in range(size_mib)))
new = bytearray(old)
for _ in range(edits):
    pos = rng.randrange(len(new) - 1024)
    kind = rng.choice("oid")
    n = rng.randrange(16, 512)
    if kind == "o": new[pos:pos+n] = rng.randbytes(n)
    elif kind == "i": new[pos:pos] = rng.randbytes(n)
    else: del new[pos:pos+n]
open(f"{out}/old.bin", "wb").write(old)
open(f"{out}/new.bin", "wb").write(new)
