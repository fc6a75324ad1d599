"""Where report files live: MEDIA_ROOT/reports/<period>/<report id>/, written atomically."""
import os
import subprocess
from pathlib import Path

from django.conf import settings

from config.env import envstr

ROOT = "reports"


def product_version() -> str:
    """PRODUCT_VERSION from the environment (set by releases); else the git commit the code runs from."""
    configured = envstr("PRODUCT_VERSION", "")
    if configured:
        return configured
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unversioned"
    return f"git {commit}"


def report_directory(report_id: int, period_label: str) -> str:
    return f"{ROOT}/{period_label}/{report_id}"


def write_files(directory: str, files: dict[str, bytes]) -> None:
    target = Path(settings.MEDIA_ROOT) / directory
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        tmp = target / f".{name}.tmp"
        tmp.write_bytes(content)
        os.replace(tmp, target / name)


def file_path(directory: str, name: str) -> Path:
    """The stored file, refusing names that would leave the report's directory."""
    if not directory or "/" in name or name.startswith("."):
        raise FileNotFoundError(name)
    path = Path(settings.MEDIA_ROOT) / directory / name
    if not path.is_file():
        raise FileNotFoundError(name)
    return path
