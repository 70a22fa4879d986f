#!/usr/bin/env python3
"""Archivematica's own sample transfers through Vellum, as its users would bring them.

    scripts/archivematica-samples.py SAMPLEDATA [NAME ...]

SAMPLEDATA is a checkout of github.com/artefactual/archivematica-sampledata. Each transfer
folder of SampleTransfers/ and TestTransfers/ (and each bag of BagExamples/ and bagitTests/,
each example of acceptance-tests/ and StructMapTransferSamples/) is zipped inside its folder,
as an archivist zips one, and ingested with `vellum ingest` under `standard/` (a folder with
bagit.txt at its top under `bags/`); the zipped and tarred bags of BagExamples/ go in as
they are. Every stored AIP is then checked with bagit-python and its METS against the
METS/PREMIS schemas (scripts/validate-mets.py). One line per transfer: its status, file
count, the reason of a refusal or failure, and the checks of its AIP.

Normalization, thumbnails and OCR are turned off (a copy of config/profiles.json): this
judges the shapes of the transfers, not the tools (OCR of the council minutes alone takes
minutes a file). Environment: VELLUM (the binary; default target/debug/vellum), WORK (a
scratch folder; default a new temporary one).
"""
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VELLUM = os.environ.get("VELLUM", os.path.join(ROOT, "target", "debug", "vellum"))
PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
SPLIT = ("bagitTests", "acceptance-tests", "StructMapTransferSamples")


def transfers(sampledata):
    for group in ("SampleTransfers", "TestTransfers"):
        base = os.path.join(sampledata, group)
        for name in sorted(os.listdir(base)):
            path = os.path.join(base, name)
            if not os.path.isdir(path):
                continue
            if name == "BagExamples":
                for kind in ("UnzippedBags", "ZippedBags", "TarGzBags"):
                    for bag in sorted(os.listdir(os.path.join(path, kind))):
                        yield f"{name}-{bag}", os.path.join(path, kind, bag)
            elif name in SPLIT:
                for sub in sorted(os.listdir(path)):
                    if os.path.isdir(os.path.join(path, sub)):
                        yield f"{name}-{sub}", os.path.join(path, sub)
            else:
                yield name, path


def zip_folder(folder, dest):
    parent = os.path.dirname(folder.rstrip("/"))
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for root, dirs, files in os.walk(folder):
            rel = os.path.relpath(root, parent)
            if not files and not dirs:
                z.writestr(rel + "/", b"")
            for f in files:
                if not os.path.islink(os.path.join(root, f)):
                    z.write(os.path.join(root, f), os.path.join(rel, f))


def check_aip(aip, scratch):
    """bagit-python's verdict and the METS's schema errors, in words."""
    dest = tempfile.mkdtemp(dir=scratch)
    with tarfile.open(aip) as t:
        t.extractall(dest, filter="data")
    bag = os.path.join(dest, os.listdir(dest)[0])
    valid = subprocess.run(
        [PYTHON, "-c", "import bagit, sys; bagit.Bag(sys.argv[1]).validate()", bag], capture_output=True, text=True
    )
    mets = [f for f in os.listdir(os.path.join(bag, "data")) if f.startswith("METS.")][0]
    report = subprocess.run(
        [PYTHON, os.path.join(ROOT, "scripts", "validate-mets.py"), os.path.join(ROOT, ".tools", "schemas"),
         os.path.join(bag, "data", mets)],
        capture_output=True, text=True,
    )
    errors = json.loads(report.stdout)["xsd_errors"] if report.returncode == 0 else [report.stderr.strip()[-200:]]
    bag_words = "bag valid" if valid.returncode == 0 else "BAG INVALID: " + valid.stderr.strip()[-200:]
    mets_words = "METS valid" if not errors else f"METS: {len(errors)} schema error(s), first {errors[0]}"
    return f"{bag_words}; {mets_words}"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sampledata, only = sys.argv[1], sys.argv[2:]
    scratch = os.environ.get("WORK") or tempfile.mkdtemp(prefix="vellum-samples-")
    config = json.load(open(os.path.join(ROOT, "config", "profiles.json")))
    for profile in config["profiles"]:
        for switch in ("normalize_for_preservation", "normalize_for_access", "thumbnails", "transcribe"):
            profile[switch] = False
    config_path = os.path.join(scratch, "profiles.json")
    json.dump(config, open(config_path, "w"))
    counts = {}
    for name, path in transfers(sampledata):
        if only and not any(o in name for o in only):
            continue
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        if os.path.isdir(path):
            package, ending = os.path.join(scratch, safe + ".zip"), ".zip"
            zip_folder(path, package)
            prefix = "bags" if os.path.exists(os.path.join(path, "bagit.txt")) else "standard"
        else:
            ending = ".tar.gz" if path.endswith(".tar.gz") else ".zip"
            package, prefix, safe = path, "bags", safe[: -len(ending)] if safe.endswith(ending) else safe
        data = os.path.join(scratch, "data")
        run = subprocess.run(
            [VELLUM, "ingest", package, "--key", f"{prefix}/{safe}{ending}", "--json", "--data-dir", data,
             "--config", config_path],
            capture_output=True, text=True,
        )
        try:
            result = json.loads(run.stdout)
        except json.JSONDecodeError:
            print(f"{name:58} ERROR {run.stderr.strip()[-300:]}", flush=True)
            continue
        status = result["status"]
        counts[status] = counts.get(status, 0) + 1
        checks = check_aip(result["aip"], scratch) if result.get("aip") else ""
        print(f"{name:58} {prefix:8} {status:9} files={result.get('files')} {result.get('reason') or ''} {checks}",
              flush=True)
    print("; ".join(f"{n} {s}" for s, n in sorted(counts.items())))


if __name__ == "__main__":
    main()
