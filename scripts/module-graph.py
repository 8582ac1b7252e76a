#!/usr/bin/env python3
"""Which top-level modules of a crate refer to which (`crate::X` paths outside tests), and
any import loop among them.

    python3 scripts/module-graph.py runtime/src        # fer-runtime
    python3 scripts/module-graph.py runtime/core/src   # fer-core

Prints one line per module, `module -> modules it uses`, then `loop: a -> b -> a` for
each cycle found, or `no loop`. Exits 1 when there is a loop.
"""
import os
import re
import sys


def modules(root):
    found = {}
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        name = entry[:-3] if entry.endswith(".rs") else entry
        if name in ("lib", "main") or not (entry.endswith(".rs") or os.path.isdir(path)):
            continue
        if os.path.isdir(path):
            files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith(".rs")]
        else:
            files = [path]
        found[name] = files
    return found


def uses(files, names, own):
    out = set()
    for f in files:
        if f.endswith("tests.rs") or f.endswith("testutil.rs"):
            continue
        text = open(f).read()
        text = re.sub(r"(?s)#\[cfg\(test\)\]\s*mod tests \{.*", "", text)
        out |= {m for m in re.findall(r"crate::([a-z_0-9]+)", text) if m != own and m in names}
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "runtime/src"
    mods = modules(root)
    edges = {m: uses(files, mods, m) for m, files in mods.items()}
    for m in sorted(edges):
        print(f"{m:12} -> {', '.join(sorted(edges[m])) or '-'}")
    loops, state = [], {}

    def visit(u, stack):
        state[u] = 1
        stack.append(u)
        for v in sorted(edges[u]):
            if state.get(v) == 1:
                loops.append(stack[stack.index(v):] + [v])
            elif not state.get(v):
                visit(v, stack)
        stack.pop()
        state[u] = 2

    for m in sorted(edges):
        if not state.get(m):
            visit(m, [])
    for cycle in loops:
        print("loop: " + " -> ".join(cycle))
    if not loops:
        print("no loop")
    sys.exit(1 if loops else 0)


if __name__ == "__main__":
    main()
