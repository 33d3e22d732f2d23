"""Write the licence notices of every third-party package a bundle ships.

Run with the build venv's Python (the one PyInstaller runs in), so the list is
what the bundle really holds:

    build/venv-cloud/bin/python packaging/collect_licenses.py --out build/licenses-cloud
    build/venv-full/bin/python packaging/collect_licenses.py --extra local --out ...

It walks ImageDesk's requirements (plus the given extras) through the installed
packages' metadata, and writes ``THIRD-PARTY-NOTICES.md`` (name, version,
licence, home page) and each package's own licence files under
``<out>/<package>/``. The hand-written notices in ``desktop_app/data/licenses/``
(Qt / PySide6 under the LGPL, the LGPL and GPL texts, Python, the PyInstaller
bootloader) are copied next to them.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import shutil
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
HANDWRITTEN = ROOT / "desktop_app" / "data" / "licenses"
INDEX = "THIRD-PARTY-NOTICES.md"
APP = "imagedesk"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    license: str
    url: str
    files: tuple[str, ...]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def licence_of(meta: Any) -> str:
    expression = meta.get("License-Expression")
    if expression:
        return str(expression)
    text = (meta.get("License") or "").strip()
    if text and len(text) <= 80 and "\n" not in text:
        return text
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or []
                   if c.startswith("License ::")]
    if classifiers:
        return " / ".join(classifiers)
    return text.splitlines()[0][:80] if text else "see the package's licence files"


def home_page(meta: Any) -> str:
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() in {"homepage", "home", "source", "repository", "source code"}:
            return url.strip()
    return str(meta.get("Home-page") or "")


def dependency_closure(extras: list[str]) -> list[md.Distribution]:
    """ImageDesk's installed requirements, recursively; markers evaluated here."""
    seen: dict[str, md.Distribution] = {}
    queue: deque[tuple[str, tuple[str, ...]]] = deque([(APP, tuple(extras))])
    while queue:
        name, wanted = queue.popleft()
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            print(f"note: {name} is not installed here; skipped", file=sys.stderr)
            continue
        key = canonical(dist.metadata["Name"])
        if key in seen and not wanted:
            continue
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(e) for e in envs):
                continue
            if canonical(req.name) not in seen:
                queue.append((req.name, tuple(req.extras)))
    seen.pop(APP, None)
    return sorted(seen.values(), key=lambda d: canonical(d.metadata["Name"]))


def copy_licence_files(dist: md.Distribution, target: Path) -> tuple[str, ...]:
    names = list(dist.metadata.get_all("License-File") or [])
    if not names:  # older metadata: look for the usual names in the dist-info
        names = [str(f) for f in dist.files or []
                 if ".dist-info/" in str(f) and re.search(r"(LICEN[CS]E|COPYING|NOTICE)",
                                                          Path(str(f)).name, re.I)]
        names = [n.split(".dist-info/", 1)[1] for n in names]
    copied: list[str] = []
    for name in names:
        text = dist.read_text(f"licenses/{name}") or dist.read_text(name)
        if text is None:
            continue
        out = target / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        copied.append(name)
    return tuple(copied)


def collect(out: Path, extras: list[str]) -> list[Package]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    packages: list[Package] = []
    for dist in dependency_closure(extras):
        meta = dist.metadata
        folder = f"{canonical(meta['Name'])}-{dist.version}"
        files = copy_licence_files(dist, out / folder)
        packages.append(Package(meta["Name"], dist.version, licence_of(meta), home_page(meta),
                                tuple(f"{folder}/{f}" for f in files)))
    for notice in sorted(HANDWRITTEN.iterdir()):
        if notice.is_file() and notice.name != INDEX:
            shutil.copy2(notice, out / notice.name)
    return packages


def render(packages: list[Package], extras: list[str]) -> str:
    flavour = "full (" + ", ".join(extras) + ")" if extras else "cloud-only"
    lines = [
        "# Third-party software in ImageDesk",
        "",
        f"Flavour: {flavour}. Generated by `packaging/collect_licenses.py` from the installed",
        "packages' metadata; each package's own licence files are in the folder named",
        "after it next to this file (in a bundle: `_internal/desktop_app/data/licenses/`).",
        "",
        "Qt and PySide6 are used under the LGPL-3.0: see `Qt-PySide6-LGPL.md`. Python, the",
        "PyInstaller bootloader and other notices: see `OTHER-NOTICES.md`.",
        "",
        "| package | version | licence | home page |",
        "|---|---|---|---|",
    ]
    for p in packages:
        lines.append(f"| {p.name} | {p.version} | {p.license} | {p.url} |")
    missing = [p.name for p in packages if not p.files]
    if missing:
        lines += ["", "Packages that ship no licence file in their metadata (their licence is "
                  "the one named above): " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to (re)write")
    parser.add_argument("--extra", action="append", default=[], help="an extra of imagedesk")
    parser.add_argument("--index-only", type=Path, default=None,
                        help="also write just the index to this file (for the repository)")
    args = parser.parse_args(argv)
    packages = collect(args.out, args.extra)
    text = render(packages, args.extra)
    (args.out / INDEX).write_text(text, encoding="utf-8")
    if args.index_only is not None:
        args.index_only.write_text(text, encoding="utf-8")
    print(f"{len(packages)} packages' notices written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
