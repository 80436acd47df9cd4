"""Verifies every DKIM-Signature of a message with dkimpy, an independent
implementation, reading the public keys from a table instead of DNS.

usage: dkim_verify.py MESSAGE RECORDS
  RECORDS: lines "NAME<TAB>TXT value", NAME as SELECTOR._domainkey.DOMAIN
prints one word per signature, in order: pass or fail
"""
import sys

import dkim

message = open(sys.argv[1], "rb").read()
records = {}
with open(sys.argv[2], encoding="utf-8") as f:
    for line in f:
        if line.strip():
            name, value = line.rstrip("\n").split("\t", 1)
            records[name.rstrip(".").lower()] = value


def lookup(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return records.get(name.rstrip(".").lower(), "").encode()


count = sum(
    1 for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    if line.lower().startswith(b"dkim-signature:")
)
results = []
for i in range(count):
    try:
        ok = dkim.DKIM(message).verify(idx=i, dnsfunc=lookup)
    except Exception as e:  # a malformed signature or key counts as failed
        print(f"signature {i}: {e}", file=sys.stderr)
        ok = False
    results.append("pass" if ok else "fail")
print(" ".join(results))
