#!/usr/bin/env python3
"""Run the conformance suite against several OVN installations and publish a
pass/fail matrix (one column per OVN/OVS version).

    ci/matrix.py [--out DIR] [INSTALL ...] [-- PYTEST ARGS]

Each INSTALL is `host` (the OVN on PATH) or a root filesystem holding
another OVN, e.g. one made by `ci/make-root.sh trixie /srv/ovn-trixie`.
`--upgrade FROM:TO` (repeatable; each an INSTALL) adds an upgrade run from
FROM to TO (`--ovn-upgrade-from`): a row of the page's upgrade section.  A
downgrade is run and shown, and fails nothing: OVN documents none.
Writes per installation DIR/<label>.xml (JUnit) and DIR/<label>.json (its
conformance report), then the matrix page DIR/matrix.html and table
DIR/matrix.md (features × installations, see `ovnlb-report`), a pass/fail
table per test DIR/tests.md and DIR/matrix.json; exits non-zero if any test
failed anywhere.
"""

import argparse
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_ovnlb.engine import install  # noqa: E402
from pytest_ovnlb.errors import LabError  # noqa: E402
from pytest_ovnlb.reporting import matrix, report  # noqa: E402


def outcomes(junit: Path) -> dict[str, str]:
    result = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        kinds = {child.tag for child in case}
        result[name] = ("failed" if kinds & {"failure", "error"} else
                        "skipped" if "skipped" in kinds else "passed")
    return result


def suite(junit: Path, options: list[str], extra: list[str]) -> tuple[Path, dict | None]:
    """One run of the suite with `options`: its JUnit file, and its report
    (None if it wrote none) beside it."""
    run_report = junit.with_suffix(".json")
    run_report.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "conformance",
                    f"--junitxml={junit}", f"--ovnlb-report={run_report}", *options,
                    *[a for a in extra if a != "--"]], cwd=ROOT)
    return junit, report.load(run_report) if run_report.exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("installs", nargs="*", default=["host"])
    parser.add_argument("--out", default="matrix", type=Path)
    parser.add_argument("--upgrade", action="append", default=[], metavar="FROM:TO")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []  # extra pytest arguments
    args = parser.parse_args(argv[:len(argv) - len(extra) - (1 if "--" in argv else 0)])
    args.pytest_args = extra
    args.out.mkdir(parents=True, exist_ok=True)

    columns, results, reports = [], {}, []
    for where in args.installs:
        root = None if where == "host" else where
        try:
            found = install.find(root)
        except LabError as exc:
            print(f"{where}: {exc}", file=sys.stderr)
            return 2
        label = f"OVN {found.ovn_version} / OVS {found.ovs_version}"
        print(f"== {label} ({where})", flush=True)
        junit, data = suite(args.out / f"ovn-{found.ovn_version}.xml",
                            ["--ovn-root", root] if root else [], args.pytest_args)
        columns.append(label)
        results[label] = outcomes(junit) if junit.exists() else {}
        if data is not None:
            reports.append(data)

    upgrades_failed = False
    for path in args.upgrade:
        source, _, target = path.partition(":")
        if not target:
            print(f"--upgrade {path}: FROM:TO, each host or a root filesystem", file=sys.stderr)
            return 2
        try:
            old, new = (install.find(None if w == "host" else w) for w in (source, target))
        except LabError as exc:
            print(f"--upgrade {path}: {exc}", file=sys.stderr)
            return 2
        print(f"== upgrade OVN {old.ovn_version} -> {new.ovn_version} ({path})", flush=True)
        _, data = suite(args.out / f"upgrade-{old.ovn_version}-{new.ovn_version}.xml",
                        [f"--ovn-upgrade-from={'/' if source == 'host' else source}",
                         *(["--ovn-root", target] if target != "host" else [])],
                        args.pytest_args)
        if data is None:
            upgrades_failed = True
            continue
        reports.append(data)
        walk = matrix.upgrade_of(data)
        downgrade = walk is not None and walk["procedure"] == "downgrade"
        upgrades_failed |= not downgrade and (walk is None or data["result"] == "failure")

    tests = sorted({t for r in results.values() for t in r})
    mark = {"passed": "pass", "failed": "FAIL", "skipped": "skip", None: "-"}
    lines = ["| test | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    lines += [f"| {t} | " + " | ".join(mark[results[c].get(t)] for c in columns) + " |"
              for t in tests]
    table = "\n".join(lines)
    (args.out / "tests.md").write_text(table + "\n")
    page, _ = matrix.write(reports, args.out)
    (args.out / "matrix.json").write_text(json.dumps(results, indent=1))
    print(table)
    print(f"matrix page: {page}")
    failed = any(v == "failed" for r in results.values() for v in r.values())
    empty = any(not r for r in results.values())
    return 1 if failed or empty or upgrades_failed else 0


if __name__ == "__main__":
    sys.exit(main())
