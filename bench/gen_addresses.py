#!/usr/bin/env python3
"""Writes N address lines `email;name;var1;...;var10` to stdout: 10 % repeat an
earlier address (in another case), 1 % are not addresses. Deterministic."""
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
rng = random.Random(20261126)
out = sys.stdout
seen = []
for i in range(n):
    r = rng.random()
    if r < 0.01:
        email = f"not-an-address-{i}"
    elif r < 0.11 and seen:
        email = rng.choice(seen).upper()
    else:
        email = f"user{i}.{rng.randrange(10**6)}@example{i % 97}.com"
        if len(seen) < 100_000:
            seen.append(email)
        else:
            seen[rng.randrange(100_000)] = email
    fields = [email, f"Name {i}"] + [f"v{k}-{i % 1000}" for k in range(1, 11)]
    out.write(";".join(fields) + "\n")
