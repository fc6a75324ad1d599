"""Compile the C extension modules in place (collectors/_book.c -> collectors/_book<EXT_SUFFIX>).

    python scripts/build_ext.py [--force]

Run by `make venv` (so by `make demo`, `make test` and CI) and by the Dockerfile. Needs only a C
compiler and the interpreter's own headers — no setuptools: the compiler, flags and file suffix
come from the running interpreter's sysconfig. A module is rebuilt when missing or older than
its source or this script.
"""
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = {"collectors._book": ROOT / "collectors" / "_book.c"}
# -ffp-contract=off: no fused multiply-add, so sums round exactly as CPython's float arithmetic
# (the book's band sums are held bit for bit equal to compliance.metrics by the tests).
FLAGS = ["-O2", "-fPIC", "-shared", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter",
         "-Wno-missing-field-initializers", "-Wno-cast-function-type", "-ffp-contract=off",
         "-fno-strict-aliasing"]


def target(module):
    package, _, name = module.rpartition(".")
    return ROOT.joinpath(*package.split(".")) / (name + sysconfig.get_config_var("EXT_SUFFIX"))


def build(module, source, force=False):
    output = target(module)
    newest_input = max(source.stat().st_mtime, Path(__file__).stat().st_mtime)
    if not force and output.exists() and output.stat().st_mtime >= newest_input:
        return False
    compiler = shlex.split(sysconfig.get_config_var("CC") or "cc")
    include = sysconfig.get_paths()["include"]
    partial = output.with_name(output.name + ".part")
    command = [*compiler, *FLAGS, f"-I{include}", str(source), "-o", str(partial)]
    print("building", module + ":", " ".join(command))
    subprocess.run(command, check=True)
    partial.replace(output)  # atomic: a running process never loads a half-written module
    return True


def main():
    force = "--force" in sys.argv[1:]
    try:
        for module, source in MODULES.items():
            build(module, source, force)
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"Could not compile the C extension ({exc}). It needs a C compiler (Debian: apt-get install gcc) "
                 "and the Python headers.")


if __name__ == "__main__":
    main()
