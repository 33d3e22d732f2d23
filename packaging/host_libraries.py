"""What a Linux bundle took from the build host, and what it still needs from the user's system.

    python packaging/host_libraries.py dist/imagedesk-cloud

Prints two lists: (1) shared libraries PyInstaller copied into the bundle from
the host (not from a wheel), with the Debian package each came from; (2)
libraries the bundle's binaries load from the system at run time (resolved by
``ldd`` outside the bundle), which is what a user's machine must provide.
Linux only; elsewhere it says so and exits 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SHARED = re.compile(r"\.so(\.\d+)*$")


def owner_package(name: str) -> str:
    """The Debian package that ships a library of this name on the host, if any."""
    try:
        found = subprocess.run(["dpkg", "-S", f"*/{name}"], capture_output=True, text=True,
                               check=False, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    owners = sorted({line.split(":")[0] for line in found.splitlines() if ":" in line})
    return ", ".join(owners) if owners else "not from a Debian package"


def top_level_libraries(internal: Path) -> list[Path]:
    # Libraries from wheels stay inside their package folders (PySide6/Qt/lib, pillow.libs,
    # ...); what PyInstaller took from the host lands directly in _internal/.
    # (Top-level symlinks point into those folders and are not host libraries.)
    # Python extension modules (name.cpython-*.so) come from wheels too.
    return sorted(p for p in internal.iterdir()
                  if p.is_file() and not p.is_symlink() and SHARED.search(p.name)
                  and ".cpython-" not in p.name)


def system_dependencies(bundle: Path) -> dict[str, set[str]]:
    # The bootloader puts _internal/ on the library path; ldd needs telling.
    env = dict(os.environ, LD_LIBRARY_PATH=str((bundle / "_internal").resolve()))
    needed: dict[str, set[str]] = {}
    binaries = [p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()
                and (SHARED.search(p.name) or p.name == "imagedesk")]
    for binary in binaries:
        try:
            out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                                 check=False, timeout=30, env=env).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in out.splitlines():
            name, _, where = line.strip().partition(" => ")
            where = where.split(" (")[0].strip()
            if not where or str(bundle.resolve()) in str(Path(where).resolve()):
                continue
            needed.setdefault(name, set()).add(where)
    return needed


def main(argv: list[str]) -> int:
    if not sys.platform.startswith("linux"):
        print("host library report: Linux only")
        return 0
    bundle = Path(argv[0] if argv else "dist/imagedesk-cloud")
    internal = bundle / "_internal"
    print(f"# Host libraries of {bundle}\n")
    print("## Copied into the bundle from the build host\n")
    for lib in top_level_libraries(internal):
        print(f"- {lib.name} (a file of this name is in: {owner_package(lib.name)})")
    print("\n## Loaded from the user's system at run time (not bundled)\n")
    for name, where in sorted(system_dependencies(bundle).items()):
        shown = sorted(where)[0]
        if shown == "not found":
            print(f"- {name}: not found here (needed only by an optional plugin)")
        else:
            print(f"- {name} ({owner_package(Path(shown).name)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
