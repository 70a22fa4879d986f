#!/usr/bin/env python3
"""Vellum's PRONOM identification beside siegfried's, file by file, over a corpus.

    scripts/agreement.py CORPUS [--vellum BIN] [--show N]

Runs `vellum identify --json CORPUS` (BIN, default the newer of target/release/vellum and
target/debug/vellum) and siegfried (pygfried, from the project's .venv: scripts/setup
installs it) on every file under CORPUS, and prints the agreement over the files siegfried
gives a PUID — the measure issue 31 sets (goal: at least 97 %) — with each side's signature
versions and the disagreements, commonest first. Exit 0 always: it measures, it does not
judge (tests/tests/signatures.rs holds the floor).
"""

import collections
import json
import subprocess
import sys
from pathlib import Path


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    corpus = Path(args[0]).resolve()
    root = Path(__file__).resolve().parent.parent
    vellum = None
    show = 40
    if "--vellum" in args:
        vellum = Path(args[args.index("--vellum") + 1])
    if "--show" in args:
        show = int(args[args.index("--show") + 1])
    if vellum is None:
        built = [p for p in (root / "target/release/vellum", root / "target/debug/vellum") if p.exists()]
        vellum = max(built, key=lambda p: p.stat().st_mtime, default=None)
    if vellum is None:
        sys.exit("build Vellum first: cargo build --release -p vellum-cli")
    import pygfried

    ours = {}
    out = subprocess.run([str(vellum), "identify", "--json", str(corpus)], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        found = json.loads(line)
        ours[found["path"]] = found
    theirs = {}
    sf_version = ""
    for path in sorted(ours):
        answer = pygfried.identify(path, detailed=True)
        sf_version = answer["identifiers"][0]["details"]
        match = answer["files"][0]["matches"][0]
        theirs[path] = match
    vellum_version = next(iter(ours.values()))["signatures"] if ours else ""
    judged = [p for p in ours if theirs[p]["id"] != "UNKNOWN"]
    agree = [p for p in judged if ours[p]["puid"] == theirs[p]["id"]]
    by_signature = [p for p in judged if ours[p]["basis"] in ("signature", "container") and not theirs[p].get("warning")]
    agree_by_signature = [p for p in by_signature if ours[p]["puid"] == theirs[p]["id"]]
    unknown_both = sum(1 for p in ours if theirs[p]["id"] == "UNKNOWN" and ours[p]["puid"] is None)
    print(f"corpus: {corpus} ({len(ours)} files)")
    print(f"vellum: {vellum_version}")
    print(f"siegfried {pygfried.version()}: {sf_version}")
    pct = lambda n, d: f"{100 * n / d:.1f} %" if d else "n/a"
    print(f"agreement where siegfried gives a PUID: {len(agree)} / {len(judged)} = {pct(len(agree), len(judged))}")
    print(f"agreement where siegfried matched by signature or container: {len(agree_by_signature)} / {len(by_signature)} = {pct(len(agree_by_signature), len(by_signature))}")
    print(f"both UNKNOWN: {unknown_both}")
    named_alone = [p for p in ours if theirs[p]["id"] == "UNKNOWN" and ours[p]["puid"] is not None]
    print(f"Vellum names a format where siegfried says nothing: {len(named_alone)}")
    for p in named_alone[:show]:
        print(f"     {ours[p]['puid']} ({ours[p]['basis']}) | {Path(p).relative_to(corpus)}")
    differ = collections.Counter()
    examples = {}
    for p in judged:
        if ours[p]["puid"] != theirs[p]["id"]:
            key = (ours[p]["puid"] or "UNKNOWN", ours[p]["basis"], theirs[p]["id"], theirs[p]["basis"])
            differ[key] += 1
            examples.setdefault(key, p)
    if differ:
        print(f"\n{'n':>3}  vellum (basis) | siegfried (basis) | e.g.")
        for (v, vb, s, sb), n in differ.most_common(show):
            print(f"{n:>3}  {v} ({vb}) | {s} ({sb}) | {Path(examples[(v, vb, s, sb)]).relative_to(corpus)}")


if __name__ == "__main__":
    main()
