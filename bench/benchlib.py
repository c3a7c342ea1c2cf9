#!/usr/bin/env python3
"""Rounds and statistics shared by the bench scripts, so each compares the same way.

A benchmark runs ROUNDS rounds; in each round every tool (Cove and its references) runs
once, in an order rotated by one tool per round (round 0: cove, ref; round 1: ref, cove;
...), so neither always runs first on a warm or a busy machine. Each figure is reported
as min / median / max over the rounds, and the ratio is cove's median over each
reference's median.

From Python (the scripts' here-documents put bench/ on sys.path):

    from benchlib import Samples, order, rounds_default
    s = Samples(["cove", "qemu"])
    for r in range(rounds):
        for tool in order(r, s.tools):
            s.add("seqread MB/s", tool, value)
    s.table("virtio-blk ...", higher={"seqread MB/s"})

From bash: record one sample a line ("FIGURE<TAB>TOOL<TAB>VALUE") in a file, then

    for tool in $(python3 bench/benchlib.py order ROUND cove qemu-img); do ...; done
    python3 bench/benchlib.py table FILE --tools cove,qemu-img --title "..." [--higher]

The first tool is Cove: the one every ratio divides.
"""
import argparse
import os
import statistics
import sys


def rounds_default(n=5):
    """ROUNDS from the environment (bench/smoke.sh sets it low), else n."""
    v = os.environ.get("ROUNDS", "")
    return int(v) if v else n


def order(rnd, tools):
    """The tools in round rnd's order: rotated by one per round."""
    tools = list(tools)
    k = rnd % len(tools)
    return tools[k:] + tools[:k]


def fmt(x):
    if x is None:
        return "-"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 0.1 or a == 0:
        return f"{x:.3f}"
    return f"{x:.3g}"


class Samples:
    def __init__(self, tools):
        self.tools = list(tools)
        self.data = {}  # figure -> tool -> [values], figures in first-seen order

    def add(self, figure, tool, value):
        if tool not in self.tools:
            raise ValueError(f"unknown tool {tool}")
        self.data.setdefault(figure, {}).setdefault(tool, []).append(float(value))

    def stats(self, figure, tool):
        v = self.data.get(figure, {}).get(tool)
        if not v:
            return None
        return min(v), statistics.median(v), max(v)

    def ratio(self, figure, tool):
        c, t = self.stats(figure, self.tools[0]), self.stats(figure, tool)
        if not c or not t or not t[1]:
            return None
        return c[1] / t[1]

    def table(self, title, higher=(), neutral=(), out=sys.stdout):
        """Prints each figure: one line per tool with min, median, max and cove/this.
        higher: the figures where more is better (rates); neutral: neither (checks, such as
        how many frames arrived); the others are times or costs (less is better)."""
        cove = self.tools[0]
        w = max(24, max(len(t) for t in self.tools) + 2)
        n = max((len(v) for d in self.data.values() for v in d.values()), default=0)
        print(f"{title}: {n} rounds, the order rotated each round", file=out)
        print(f"{'figure, tool':<{w}}{'min':>10}{'median':>10}{'max':>10}{'cove/this':>11}",
              file=out)
        for fig, d in self.data.items():
            better = ("" if fig in neutral else
                      " (higher is better)" if fig in higher else " (lower is better)")
            print(f"{fig}{better}", file=out)
            for tool in self.tools:
                s = self.stats(fig, tool)
                if s is None:
                    continue
                r = "" if tool == cove else fmt_ratio(self.ratio(fig, tool))
                print(f"  {tool:<{w - 2}}{fmt(s[0]):>10}{fmt(s[1]):>10}{fmt(s[2]):>10}{r:>11}",
                      file=out)
        print(f"cove/this = {cove}'s median / that row's median (times and costs: below 1, "
              f"{cove} is better; rates: above 1, {cove} is better)", file=out)


def fmt_ratio(r):
    if r is None:
        return "-"
    return f"{r:.2f}" if r >= 1 else f"{r:.3f}"


def main(argv):
    p = argparse.ArgumentParser(description="bench rounds and statistics")
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("order", help="the tools in a round's order")
    o.add_argument("round", type=int)
    o.add_argument("tools", nargs="+")
    t = sub.add_parser("table", help="min/median/max table from a samples file")
    t.add_argument("file")
    t.add_argument("--tools", required=True, help="comma-separated, cove first")
    t.add_argument("--title", default="")
    t.add_argument("--higher", action="store_true", help="every figure is a rate")
    a = p.parse_args(argv)
    if a.cmd == "order":
        print(" ".join(order(a.round, a.tools)))
        return 0
    s = Samples(a.tools.split(","))
    with open(a.file) as f:
        for line in f:
            if line.strip():
                fig, tool, val = line.rstrip("\n").split("\t")
                s.add(fig, tool, val)
    s.table(a.title, higher=set(s.data) if a.higher else ())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
