"""Records line tables from a real interpreter as C++ test data.

Run with each interpreter (3.8 .. 3.13); prints one `LineTableCase` initializer:
the code object's raw table bytes, co_firstlineno and, for every byte offset of
the bytecode, the line CPython itself reports for it (-1: no line).
  for v in 3.8.18 3.9.18 ...; do ~/.pyenv/versions/$v/bin/python3 gen_line_table_data.py; done
"""
import sys

GAP = "\n" * 150  # line deltas > 127 force multi-entry encodings
WIDE = "(" + ", ".join("a" for _ in range(130)) + ")"  # > 255 bytes of bytecode on one line
SRC = f"""
def sample(a, b):
    total = 0
    for i in range(a):
        if i % 2:
            total += i
        else:
            total -= b
    x = [j * 2 for j in range(b)]
{GAP}
    try:
        y = (a +
             b)
    finally:
        total += 1
    z = {WIDE}
    with open(__file__) as f:
        w = f.read(1); v = w;                                                                                     u = v
    return total + len(x) + y + len(z) + len(u)
"""


def expected(co):
    v = sys.version_info[:2]
    n = len(co.co_code)
    lines = [-1] * n
    if v >= (3, 11):
        # co_positions(): one entry per code unit, caches included.
        for unit, pos in enumerate(co.co_positions()):
            line = pos[0]
            for b in (2 * unit, 2 * unit + 1):
                lines[b] = -1 if line is None else line
    elif v >= (3, 10):
        for start, end, line in co.co_lines():
            for b in range(start, end):
                lines[b] = -1 if line is None else line
    else:
        import dis
        starts = dict(dis.findlinestarts(co))
        cur = co.co_firstlineno
        for b in range(n):
            cur = starts.get(b, cur)
            lines[b] = cur
    return lines


def main():
    ns = {}
    exec(compile(SRC, "/sample.py", "exec"), ns)
    co = ns["sample"].__code__
    v = sys.version_info[:2]
    table = co.co_lnotab if v < (3, 10) else co.co_linetable
    lines = expected(co)
    hexes = ", ".join(f"0x{b:02x}" for b in table)
    print(f"// Python {sys.version.split()[0]}: {len(table)} table bytes, {len(lines)} code bytes")
    print(f"{{{v[0]}, {v[1]}, {co.co_firstlineno}, {{{hexes}}},")
    print(f" {{{', '.join(str(x) for x in lines)}}}}},")


main()
