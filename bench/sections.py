"""Each benchmark writes its own section of docs/benchmarks.md, between <!-- bench:NAME --> markers."""
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_section(name: str, text: str) -> None:
    """Replace the section `name` (or append it) with `text`."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in current and end in current:
        current = current[: current.index(start)] + block + current[current.index(end) + len(end):]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(current)
