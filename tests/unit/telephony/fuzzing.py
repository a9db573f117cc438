"""Mutations of real messages for the fuzz tests: byte flips, truncation, duplicated
and swapped lines, inserted syntax characters."""

from __future__ import annotations

import random

from hypothesis import strategies as st

# Bytes that matter to SIP and SDP grammars, so mutations hit the interesting branches.
SPECIAL = b'\r\n \t:;,<>"\\@%=/?[]&*.+-0123456789\x00\x7f\xff\xc3'
OPERATIONS = ("flip", "special", "truncate", "duplicate", "delete", "insert", "swap")


def mutate(data: bytes, ops: list[tuple[str, int, int, bytes]]) -> bytes:
    """Apply ``(operation, position, length, payload)`` mutations in order."""
    buf = bytearray(data)
    for op, pos, length, payload in ops:
        n = len(buf)
        if n == 0:
            break
        pos %= n
        if op == "flip":
            buf[pos] ^= 1 << (length % 8)
        elif op == "special":
            buf[pos] = SPECIAL[length % len(SPECIAL)]
        elif op == "truncate":
            del buf[pos:]
        elif op == "delete":
            del buf[pos : pos + length]
        elif op == "insert":
            buf[pos:pos] = payload
        else:
            lines = bytes(buf).split(b"\r\n")
            i, j = pos % len(lines), (pos + length) % len(lines)
            if op == "duplicate":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            buf = bytearray(b"\r\n".join(lines))
    return bytes(buf)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = draw(st.sampled_from(seeds))
    ops = draw(
        st.lists(
            st.tuples(
                st.sampled_from(OPERATIONS),
                st.integers(0, 1 << 16),
                st.integers(0, 64),
                st.binary(min_size=1, max_size=8) | st.sampled_from([bytes([b]) for b in SPECIAL]),
            ),
            min_size=1,
            max_size=5,
        )
    )
    return mutate(data, ops)


def random_mutations(seeds: list[bytes], count: int, seed: int) -> list[bytes]:
    """A deterministic batch of mutated messages for the high-volume fuzz loop."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        ops = [
            (
                rng.choice(OPERATIONS),
                rng.randrange(1 << 16),
                rng.randrange(65),
                bytes([rng.choice(SPECIAL)]) if rng.random() < 0.5 else rng.randbytes(3),
            )
            for _ in range(rng.randint(1, 4))
        ]
        out.append(mutate(rng.choice(seeds), ops))
    return out
