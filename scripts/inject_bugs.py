#!/usr/bin/env python3
"""Bug injection: does the simulator find real bugs fast?

Applies one catalogued bug (scripts/bugs.toml) at a time to a throw-away worktree of HEAD,
builds the simulator, runs the default sweep on one thread until the first failure (at most
--max-time seconds), minimises the failing trace, and prints one table row per bug. With
--rates, each race bug's failing world (configuration and workload) is also rerun under 1,000
schedule seeds with the random and the PCT (depth 2) scheduler, counting the runs that fail.

Exit status 1 if a bug survives, or a minimised trace is longer than --max-steps or (for a
race) uses more than two vCPUs.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def load_catalogue():
    with open(os.path.join(ROOT, "scripts", "bugs.toml"), "rb") as f:
        bugs = tomllib.load(f)["bug"]
    names = [b["name"] for b in bugs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit(f"bugs.toml: duplicate names {sorted(dup)}")
    return bugs


def apply(tree, bug):
    for edit in bug["edit"]:
        path = os.path.join(tree, edit["file"])
        text = open(path).read()
        count = text.count(edit["from"])
        if count != 1:
            sys.exit(f"{bug['name']}: {edit['file']}: the text to replace occurs {count} times (must be once)")
        open(path, "w").write(text.replace(edit["from"], edit["to"]))


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def build(tree, target):
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    r = run(["cargo", "build", "-q", "--release", "-p", "pgmsim-sim"], cwd=tree, env=env)
    if r.returncode != 0:
        sys.exit(f"build failed:\n{r.stderr}")
    return os.path.join(target, "release", "pgmsim")


def sweep(pgmsim, args, out):
    cmd = [pgmsim, "sweep", "--seeds", args.seeds, "--steps", "2000", "--jobs", "1",
           "--max-time", str(args.max_time), "--shrink-budget", "0", "--json", "--out", out]
    start = time.monotonic()
    r = run(cmd)
    seconds = time.monotonic() - start
    if r.returncode not in (0, 1):
        sys.exit(f"sweep failed ({r.returncode}):\n{r.stderr}")
    report = json.loads(r.stdout)
    if not report["failing"]:
        return None
    first = report["failing"][0]
    trace = report["signatures"][0]["trace"]
    return {"seed": first["seed"], "invariant": first["invariant"], "seconds": seconds, "trace": trace}


def shrink(pgmsim, trace, budget):
    out = trace.replace(".json", ".shrunk.json")
    r = run([pgmsim, "shrink", trace, "--budget", str(budget), "-o", out])
    if r.returncode != 0:
        return None
    t = json.load(open(out))
    threads = t.get("threads") or []
    return {"steps": len(t["ops"]), "vcpus": t["config"]["vcpus"], "concurrent": bool(t["config"].get("concurrency")),
            "threads": len(set(threads)), "path": out}


def hit_rate(pgmsim, trace, scheduler, runs, scratch):
    """Runs of the trace's world and workload (config and seed) under `runs` schedule seeds."""
    t = json.load(open(trace))
    world = os.path.join(scratch, "world.json")
    json.dump(t["config"], open(world, "w"))
    failed = 0
    for k in range(runs):
        r = run([pgmsim, "run", "--seed", str(t["seed"]), "--config", world, "--schedule-seed", str(k),
                 "--scheduler", scheduler, "--steps", "2000", "--shrink-budget", "0", "--json",
                 "--out", os.path.join(scratch, "rates")])
        failed += r.returncode == 1
    return failed


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="bugs to inject (default: all)")
    p.add_argument("--list", action="store_true", help="print the catalogue and exit")
    p.add_argument("--seeds", default="0..10000", help="the sweep's seed range (default: the default sweep's)")
    p.add_argument("--max-time", type=int, default=60, help="seconds a sweep may take to find the bug")
    p.add_argument("--shrink-budget", type=int, default=20000)
    p.add_argument("--max-steps", type=int, default=10, help="longest acceptable minimised trace")
    p.add_argument("--rates", action="store_true", help="hit rates of race bugs over 1,000 schedules")
    p.add_argument("--runs", type=int, default=1000, help="schedules per hit rate")
    p.add_argument("--json", help="also write the rows as JSON to this file")
    args = p.parse_args()

    bugs = load_catalogue()
    if args.list:
        for b in bugs:
            kind = "race" if b.get("race") else "    "
            print(f"{b['name']:40} {kind}  {b['area']}")
        return 0
    unknown = set(args.names) - {b["name"] for b in bugs}
    if unknown:
        sys.exit(f"unknown bug(s): {sorted(unknown)} (see --list)")
    chosen = [b for b in bugs if not args.names or b["name"] in args.names]

    scratch = tempfile.mkdtemp(prefix="pgmsim-inject-")
    tree = os.path.join(scratch, "tree")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", tree, "HEAD"], check=True, capture_output=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target", "inject"))
    rows, bad = [], 0
    print("| bug | race | caught | seed | seconds | invariant | minimised steps | vCPUs | random | pct:2 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    try:
        for bug in chosen:
            subprocess.run(["git", "-C", tree, "checkout", "-q", "--", "."], check=True)
            apply(tree, bug)
            pgmsim = build(tree, target)
            out = os.path.join(scratch, bug["name"])
            found = sweep(pgmsim, args, out)
            row = {"bug": bug["name"], "race": bool(bug.get("race")), "caught": found is not None}
            if found:
                row.update(found)
                row["min"] = shrink(pgmsim, found["trace"], args.shrink_budget)
                if args.rates and row["race"]:
                    row["random"] = hit_rate(pgmsim, found["trace"], "random", args.runs, out)
                    row["pct2"] = hit_rate(pgmsim, found["trace"], "pct:2", args.runs, out)
            ok = found is not None and row["min"] is not None and row["min"]["steps"] <= args.max_steps
            if ok and row["race"] and row["min"]["concurrent"]:
                ok = row["min"]["vcpus"] <= 2
            bad += not ok
            rows.append(row)
            print(format_row(row), flush=True)
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", tree], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)
    caught = sum(r["caught"] for r in rows)
    print(f"\n{caught}/{len(rows)} caught; {bad} missed or minimised above {args.max_steps} steps")
    return 1 if bad else 0


def format_row(r):
    if not r["caught"]:
        return f"| {r['bug']} | {'yes' if r['race'] else ''} | **no** | | | | | | | |"
    m = r["min"] or {}
    rate = lambda k: f"{r[k]}/1000" if k in r else ""
    return (f"| {r['bug']} | {'yes' if r['race'] else ''} | yes | {r['seed']} | {r['seconds']:.1f} | {r['invariant']} | "
            f"{m.get('steps', '?')} | {m.get('vcpus', '?') if m.get('concurrent') else 'seq'} | {rate('random')} | {rate('pct2')} |")


if __name__ == "__main__":
    sys.exit(main())
