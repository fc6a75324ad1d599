"""Rebuilds static/vendor/plotly-finance.min.js from npm's plotly.js-finance-dist-min@4.1.0.

Run: python scripts/vendor_plotly.py   (needs npm and the npm registry; the result is committed)

The bundle is npm's, unchanged but for two config defaults that name hosts on the internet, which the
product's users may not reach and the pages never need: `topojsonURL` (where geo traces, absent from this
bundle, would fetch maps) and `plotlyServerURL` (where "edit in Chart Studio" would send a chart). Both
become empty. Each replacement must match exactly once, and the input must be the release checked here.
"""
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "plotly.js-finance-dist-min@4.1.0"
UPSTREAM_SHA256 = "9993f6d57ffd52d7417a9e89b666679ff69078e7c2816b43ab9ecdea9fa4709d"
OFFLINE = [
    ('topojsonURL:{valType:"string",noBlank:!0,dflt:"https://cdn.plot.ly/un/"}',
     'topojsonURL:{valType:"string",noBlank:!0,dflt:""}'),
    ('plotlyServerURL:{valType:"string",dflt:"https://cloud.plotly.com/newchart"}',
     'plotlyServerURL:{valType:"string",dflt:""}'),
]
VENDOR = Path(__file__).resolve().parent.parent / "static" / "vendor"


def offline(text: str) -> str:
    for old, new in OFFLINE:
        if text.count(old) != 1:
            sys.exit(f"expected exactly one {old!r} in the bundle, found {text.count(old)}")
        text = text.replace(old, new)
    return text


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        with tarfile.open(next(Path(tmp).glob("*.tgz"))) as tgz:
            bundle = tgz.extractfile("package/plotly-finance.min.js").read()
            license_text = tgz.extractfile("package/LICENSE").read()
    if hashlib.sha256(bundle).hexdigest() != UPSTREAM_SHA256:
        sys.exit(f"{PACKAGE}'s bundle is not the release this script was written for")
    out = offline(bundle.decode()).encode()
    (VENDOR / "plotly-finance.min.js").write_bytes(out)
    (VENDOR / "plotly-finance.LICENSE").write_bytes(license_text)
    print(f"static/vendor/plotly-finance.min.js sha256 {hashlib.sha256(out).hexdigest()}")


if __name__ == "__main__":
    main()
