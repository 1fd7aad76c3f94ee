#!/usr/bin/env python3
"""Bug injection: does the simulator find real bugs fast?

Applies one catalogued bug (scripts/bugs.toml) at a time to a throw-away worktree of HEAD,
builds the simulator, runs the default sweep on one thread until the first failure (at most
--max-time seconds), minimises the failing trace, and prints one table row per bug. When the
first failure minimises above --max-steps, the sweep goes on over the following seeds for the
rest of the --max-time budget and the row gives the smallest failure of the same invariant found
in that time (and the first one beside it). With
--rates, each race bug's failing world (configuration and workload) is also rerun under 1,000
schedule seeds with the random and the PCT (depth 2) scheduler, counting the runs that fail.

With --fuzz, each bug is hunted by a fuzz target instead (cargo fuzz, -O -s none, one core): a
race bug by ops_concurrent (whose bytes drive the schedule too), every other bug by
ops_differential; from the committed corpus and from an empty one, at most --max-time seconds
each, reporting the seconds to the first crash and what broke. The unmodified tree runs both
targets first from their corpora as the control and must not crash.

Exit status 1 if a bug survives, or a minimised trace is longer than --max-steps or (for a
race) uses more than two vCPUs; with --fuzz, if a bug is not found from the committed corpus.
"""

import argparse
import fcntl
import json
import os
import re
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
    """The simulator built from `tree`, or None (with the compiler's message) if it does not build."""
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    r = run(["cargo", "build", "-q", "--release", "-p", "pgmsim-sim"], cwd=tree, env=env)
    if r.returncode != 0:
        print(f"build failed:\n{r.stderr}", file=sys.stderr)
        return None
    return os.path.join(target, "release", "pgmsim")


def fuzz_flags(name):
    """libFuzzer flags of every run of fuzz target `name`: the target's own options, a fixed
    mutation seed, the smoke test's limits."""
    flags = []
    for line in open(os.path.join(ROOT, "fuzz", "options", f"{name}.options")):
        line = line.strip()
        if "=" in line and not line.startswith("#"):
            k, v = (x.strip() for x in line.split("=", 1))
            flags.append(f"-{k}={v}")
    return flags + ["-seed=1", "-timeout=25", "-rss_limit_mb=2048"]


def build_fuzz(tree, target, name):
    """Fuzz target `name` built from `tree` (`-O -s none`), or None."""
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    r = run(["cargo", "fuzz", "build", "-O", "-s", "none", name, "--target-dir", target],
            cwd=os.path.join(tree, "fuzz"), env=env)
    if r.returncode != 0:
        print(f"fuzz build failed:\n{r.stderr}", file=sys.stderr)
        return None
    return os.path.join(target, "x86_64-unknown-linux-gnu", "release", name)


def fuzz_once(binary, name, seeds, seconds, scratch):
    """Runs the fuzz target for at most `seconds` on a copy of corpus `seeds` (empty if None);
    (seconds to the first crash, what broke) or None."""
    corpus, artifacts = os.path.join(scratch, "corpus"), os.path.join(scratch, "artifacts")
    for d in (corpus, artifacts):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    if seeds:
        for f in sorted(os.listdir(seeds)):
            if not f.startswith("."):
                shutil.copy(os.path.join(seeds, f), corpus)
    start = time.monotonic()
    r = run([binary, corpus, *fuzz_flags(name), f"-max_total_time={seconds}", f"-artifact_prefix={artifacts}/"])
    elapsed = time.monotonic() - start
    if not any(f.startswith("crash-") for f in os.listdir(artifacts)):
        return None
    log = r.stdout + r.stderr
    m = re.search(r"invariant (\w+) failed", log) or re.search(r"panicked at ([^:]+)", log)
    what = m.group(1) if m else "crash"
    return elapsed, what.split("/tree/")[-1]


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


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="bugs to inject (default: all)")
    p.add_argument("--list", action="store_true", help="print the catalogue and exit")
    p.add_argument("--check", action="store_true",
                   help="check that every bug's edits apply to the working tree (each text occurs once), build nothing")
    p.add_argument("--seeds", default="0..10000", help="the sweep's seed range (default: the default sweep's)")
    p.add_argument("--max-time", type=int, default=60, help="seconds a sweep (or a fuzz run) may take")
    p.add_argument("--shrink-budget", type=int, default=20000)
    p.add_argument("--max-steps", type=int, default=10, help="longest acceptable minimised trace")
    p.add_argument("--rates", action="store_true", help="hit rates of race bugs over 1,000 schedules")
    p.add_argument("--runs", type=int, default=1000, help="schedules per hit rate")
    p.add_argument("--fuzz", action="store_true",
                   help="hunt with a fuzz target instead of the sweep (ops_concurrent for a race bug, "
                        "ops_differential for the others): from the committed corpus and from an empty one, at "
                        "most --max-time seconds each (the unmodified tree runs both first as the control)")
    p.add_argument("--corpus-only", action="store_true",
                   help="with --fuzz: only the runs from the committed corpus (the empty-corpus column does "
                        "not depend on the corpus, so a corpus change needs only these)")
    p.add_argument("--json", help="also write the rows as JSON to this file")
    p.add_argument("--keep", help="copy each caught bug's failing and minimised traces to this folder "
                                  "(NAME.json, NAME.min.json)")
    return p.parse_args()


def sweep_row(bug, tree, target, scratch, args):
    """One row of the sweep table; `ok` says whether the bug was caught and minimised as required."""
    row = {"bug": bug["name"], "race": bool(bug.get("race")), "caught": False, "ok": False}
    pgmsim = build(tree, target)
    if pgmsim is None:
        row["error"] = "does not build"
        return row
    out = os.path.join(scratch, bug["name"])
    found = sweep(pgmsim, args, out)
    if not found:
        return row
    row.update(found, caught=True, min=shrink(pgmsim, found["trace"], args.shrink_budget))
    if row["min"] and row["min"]["steps"] > args.max_steps:
        smaller = smaller_failure(pgmsim, args, found, out)
        if smaller and smaller["min"]["steps"] < row["min"]["steps"]:
            row["first"] = {"seed": found["seed"], "steps": row["min"]["steps"]}
            row.update(seed=smaller["seed"], seconds=smaller["seconds"], min=smaller["min"], trace=smaller["trace"])
    if args.rates and row["race"]:
        row["random"] = hit_rate(pgmsim, row["trace"], "random", args.runs, out)
        row["pct2"] = hit_rate(pgmsim, row["trace"], "pct:2", args.runs, out)
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        shutil.copy(row["trace"], os.path.join(args.keep, f"{bug['name']}.json"))
        if row["min"]:
            shutil.copy(row["min"]["path"], os.path.join(args.keep, f"{bug['name']}.min.json"))
    m = row["min"]
    row["ok"] = m is not None and m["steps"] <= args.max_steps and not (row["race"] and m["concurrent"] and m["vcpus"] > 2)
    return row


def smaller_failure(pgmsim, args, found, out):
    """When the first failure minimises above --max-steps: the rest of the sweep's time budget
    runs the seeds after it (--keep-going, each signature minimised), and the smallest failure of
    the same invariant found within the budget is the row's; the first one is reported beside it."""
    left = args.max_time - found["seconds"]
    end = args.seeds.split("..")[1]
    if left < 1:
        return None
    cmd = [pgmsim, "sweep", "--seeds", f"{found['seed'] + 1}..{end}", "--steps", "2000", "--jobs", "1",
           "--keep-going", "--max-time", str(int(left)), "--shrink-budget", str(args.shrink_budget),
           "--json", "--out", out + "-more"]
    r = run(cmd)
    if r.returncode not in (0, 1):
        return None
    best = None
    for sig in json.loads(r.stdout)["signatures"]:
        if not sig["signature"].startswith(found["invariant"] + "@") or not sig.get("minimised"):
            continue
        t = json.load(open(sig["minimised"]))
        m = {"steps": len(t["ops"]), "vcpus": t["config"]["vcpus"],
             "concurrent": bool(t["config"].get("concurrency")), "path": sig["minimised"]}
        if best is None or m["steps"] < best["min"]["steps"]:
            best = {"seed": sig["first_seed"], "min": m, "trace": sig["trace"]}
    if best is None:
        return None
    # When the sweep reached it: the seeds up to it again, without minimising anything.
    start = time.monotonic()
    run([pgmsim, "sweep", "--seeds", f"{found['seed'] + 1}..{best['seed'] + 1}", "--steps", "2000", "--jobs", "1",
         "--keep-going", "--shrink-budget", "0", "--json", "--out", out + "-timed"])
    best["seconds"] = found["seconds"] + time.monotonic() - start
    return best if best["seconds"] <= args.max_time else None


def fuzz_target_of(bug):
    """The fuzz target that hunts `bug`: a race needs a schedule, so ops_concurrent."""
    return "ops_concurrent" if bug.get("race") else "ops_differential"


def fuzz_row(bug, tree, target, scratch, args, name=None):
    """One row of the fuzz table: seconds to the first crash from the corpus and from nothing
    (the control, `bug` None, runs target `name` from its corpus only)."""
    name = name or fuzz_target_of(bug)
    row = {"bug": bug["name"] if bug else "(none)", "target": name, "caught": False, "ok": False}
    binary = build_fuzz(tree, target, name)
    if binary is None:
        row["error"] = "does not build"
        return row
    corpus = os.path.join(tree, "fuzz", "corpus", name)
    row["corpus"] = fuzz_once(binary, name, corpus, args.max_time, scratch)
    if bug is None:
        row["ok"] = row["corpus"] is None
        return row
    if not args.corpus_only:
        row["empty"] = fuzz_once(binary, name, None, args.max_time, scratch)
    row["caught"] = row["ok"] = row["corpus"] is not None
    return row


def main():
    args = parse_args()
    bugs = load_catalogue()
    if args.list:
        for b in bugs:
            kind = "race" if b.get("race") else "    "
            print(f"{b['name']:40} {kind}  {b['area']}")
        return 0
    if args.check:
        stale = [f"{b['name']}: {e['file']}: the text to replace occurs {n} times (must be once)"
                 for b in bugs for e in b["edit"]
                 for n in [open(os.path.join(ROOT, e["file"])).read().count(e["from"])] if n != 1]
        print("\n".join(stale) or f"all {len(bugs)} bugs apply")
        return 1 if stale else 0
    unknown = set(args.names) - {b["name"] for b in bugs}
    if unknown:
        sys.exit(f"unknown bug(s): {sorted(unknown)} (see --list)")
    chosen = [b for b in bugs if not args.names or b["name"] in args.names]

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target", "inject" + ("-fuzz" if args.fuzz else "")))
    # Two runs sharing a target directory would run each other's builds (one run's bug in the
    # other's rows): refuse the second instead. The lock lasts as long as this process.
    os.makedirs(target, exist_ok=True)
    lock = open(os.path.join(target, ".inject-bugs.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"inject_bugs: another run is using the build directory {target}; "
              "give this one its own CARGO_TARGET_DIR", file=sys.stderr)
        return 2
    scratch = tempfile.mkdtemp(prefix="pgmsim-inject-")
    tree = os.path.join(scratch, "tree")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", tree, "HEAD"], check=True, capture_output=True)
    rows = []
    print(FUZZ_HEADER if args.fuzz else SWEEP_HEADER)
    try:
        if args.fuzz:
            for name in ("ops_differential", "ops_concurrent"):
                control = fuzz_row(None, tree, target, scratch, args, name)
                print(format_fuzz_row(control), flush=True)
                if not control["ok"]:
                    sys.exit(f"the unmodified tree crashes {name} (or does not build): fix that first")
        for bug in chosen:
            subprocess.run(["git", "-C", tree, "checkout", "-q", "--", "."], check=True)
            apply(tree, bug)
            hunt = fuzz_row if args.fuzz else sweep_row
            rows.append(hunt(bug, tree, target, scratch, args))
            print((format_fuzz_row if args.fuzz else format_row)(rows[-1]), flush=True)
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", tree], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)
    caught, bad = sum(r["caught"] for r in rows), sum(not r["ok"] for r in rows)
    if args.fuzz:
        empty = sum(bool(r.get("empty")) for r in rows)
        print(f"\n{caught}/{len(rows)} found from the corpus"
              + ("" if args.corpus_only else f", {empty}/{len(rows)} from an empty corpus"))
    else:
        print(f"\n{caught}/{len(rows)} caught; {bad} missed or minimised above {args.max_steps} steps")
    return 1 if bad else 0


SWEEP_HEADER = """| bug | race | caught | seed | seconds | invariant | minimised steps | vCPUs | random | pct:2 |
|---|---|---|---|---|---|---|---|---|---|"""
FUZZ_HEADER = """| bug | target | from corpus: s | what broke | from empty: s | what broke |
|---|---|---|---|---|---|"""


def format_fuzz_row(r):
    cell = lambda hit: (f"{hit[0]:.1f} | {hit[1]}" if hit else "- | -")
    if "error" in r:
        return f"| {r['bug']} | {r['target']} | {r['error']} | | | |"
    if r["bug"] == "(none)":
        return f"| (none) | {r['target']} | {'clean' if r['ok'] else 'CRASHES'} | | | |"
    empty = cell(r["empty"]) if "empty" in r else "not run | -"
    return f"| {r['bug']} | {r['target']} | {cell(r['corpus'])} | {empty} |"


def format_row(r):
    if "error" in r:
        return f"| {r['bug']} | {'yes' if r['race'] else ''} | **{r['error']}** | | | | | | | |"
    if not r["caught"]:
        return f"| {r['bug']} | {'yes' if r['race'] else ''} | **no** | | | | | | | |"
    m = r["min"] or {}
    rate = lambda k: f"{r[k]}/1000" if k in r else ""
    first = f" (first: seed {r['first']['seed']}, {r['first']['steps']} steps)" if "first" in r else ""
    return (f"| {r['bug']} | {'yes' if r['race'] else ''} | yes | {r['seed']} | {r['seconds']:.1f} | {r['invariant']} | "
            f"{m.get('steps', '?')}{first} | {m.get('vcpus', '?') if m.get('concurrent') else 'seq'} | {rate('random')} | {rate('pct2')} |")


if __name__ == "__main__":
    sys.exit(main())
