#!/usr/bin/env python3
"""Checks that the folders of a project depend on each other one way (docs/architecture.md draws them).

Usage: scripts/check-layout.py grains gateway
For each folder directly under each given project folder, finds the top-level types it declares and which other
folders use them by name; prints each folder's dependencies, then any pair of folders that use each other, and
exits 1 when there is one. A name after '.' (a member access such as channel.Reader) is not counted as a use.
"""
import collections, os, re, sys

def check(root):
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
             if f.endswith('.cs') and '/obj' not in d and '/bin' not in d]
    def folder(p):
        parts = os.path.relpath(p, root).split(os.sep)[:-1]
        return parts[0] if parts else '.'
    defs = collections.defaultdict(set)
    for p in files:
        for m in re.finditer(r'(?m)^(?:public |internal )?(?:sealed |static |abstract |readonly |partial )*'
                             r'(?:class|record|struct|interface|enum)\s+([A-Z]\w*)', open(p).read()):
            defs[m.group(1)].add(folder(p))
    edges = collections.defaultdict(lambda: collections.defaultdict(set))
    for p in files:
        f = folder(p)
        text = re.sub(r'//.*', '', open(p).read())
        for name, owners in defs.items():
            if f in owners or not re.search(r'(?<![.\w])' + name + r'\b', text):
                continue
            for g in owners:
                edges[f][g].add(name)
    for f in sorted(edges):
        for g in sorted(edges[f]):
            print(f'{root}: {f} uses {g} ({", ".join(sorted(edges[f][g]))[:120]})')
    cycles = [(f, g) for f in edges for g in edges[f] if f < g and f in edges.get(g, {})]
    for f, g in cycles:
        print(f'{root}: CIRCLE {f} <-> {g}')
    return not cycles

ok = all([check(r) for r in (sys.argv[1:] or ['grains', 'gateway'])])
sys.exit(0 if ok else 1)
