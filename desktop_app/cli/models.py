"""``imagedesk models``: list the models ImageDesk finds on this machine, and add or
remove the folders it looks in (the ``local.model_folders`` setting).

These commands read and write settings and model files only: no engine, no
profile lock, so they run while the window is open.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from desktop_app.cli.errors import EXIT_BAD_INPUT, EXIT_OK, CliError
from desktop_app.config import LoadResult, load_settings, problem_lines, save_settings
from desktop_app.config.env import variable_name
from desktop_app.paths import AppPaths
from desktop_app.providers import registry

FOLDERS_SETTING = ("local", "model_folders")


def add_parser(sub: Any) -> None:
    """The ``models`` command and its actions, on the CLI's subcommand list."""
    models = sub.add_parser("models", help="the checkpoints, LoRAs and embeddings found here")
    msub = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = msub.add_parser("list", help="list the models, with family, hash and "
                                           "whether they can be loaded")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--no-hash", action="store_true", dest="no_hash",
                         help="show only hashes already known; read no model file whole")
    for action, helptext in (("add-folder", "also look for models in FOLDER (an A1111 or "
                                            "ComfyUI models folder...)"),
                             ("remove-folder", "stop looking in FOLDER")):
        folder = msub.add_parser(action, help=helptext)
        folder.add_argument("folder", type=Path, metavar="FOLDER")
        folder.add_argument("--json", action="store_true")


async def models(args: argparse.Namespace) -> int:
    paths = AppPaths.discover()
    loaded = load_settings(paths.settings_path)
    for line in problem_lines(loaded.problems):
        print(f"imagedesk: settings: {line}", file=sys.stderr)
    if args.action == "list":
        return await _list(args, paths, loaded)
    return await _change_folders(args, paths, loaded)


async def _list(args: argparse.Namespace, paths: AppPaths, loaded: LoadResult) -> int:
    folders = loaded.settings.local.model_folders
    progress = _progress if sys.stderr.isatty() and not args.json else None
    library = await registry.local_model_library(paths.models_dir, folders,
                                                 hashed=not args.no_hash, progress=progress)
    for note in library.notes:
        print(f"imagedesk: models: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps({"models": [entry.as_json() for entry in library.entries],
                          "folders": [str(folder) for folder in folders],
                          "notes": list(library.notes)}, ensure_ascii=False))
        return EXIT_OK
    rows = [{"name": e.name, "kind": e.kind, "family": e.family, "hash": e.hash or "-",
             "loadable": "yes" if e.loadable else "no", "path": str(e.path)}
            for e in library.entries]
    if not rows:
        print("No models found. Add the folder that holds yours: "
              "imagedesk models add-folder ~/stable-diffusion-webui/models")
        return EXIT_OK
    columns = ("name", "kind", "family", "hash", "loadable", "path")
    widths = {c: min(40, max(len(c), *(len(r[c]) for r in rows))) for c in columns[:-1]}
    print("  ".join(c.upper().ljust(widths.get(c, 0)) for c in columns).rstrip())
    for row, entry in zip(rows, library.entries, strict=True):
        print("  ".join(row[c][:40].ljust(widths[c]) for c in columns[:-1]) + "  " + row["path"])
        if entry.note:
            print(f"    {entry.note}")
    return EXIT_OK


def _progress(done: int, total: int, path: Path) -> None:
    print(f"\rhashing {done + 1}/{total}: {path.name[:50]:<50}", end="", file=sys.stderr,
          flush=True)
    if done + 1 == total:
        print(file=sys.stderr)


async def _change_folders(args: argparse.Namespace, paths: AppPaths, loaded: LoadResult) -> int:
    variable = variable_name(FOLDERS_SETTING)
    if variable in loaded.overrides:
        raise CliError(f"{variable} is set and decides the model folders; change or unset it "
                       "instead", EXIT_BAD_INPUT)
    try:
        folder = Path(args.folder).expanduser().absolute()
    except RuntimeError:  # ~someone who is not a user here
        raise CliError(f"{str(args.folder)[:60]!r} names a home folder that does not exist "
                       "here", EXIT_BAD_INPUT) from None
    current = list(loaded.settings.local.model_folders)
    if args.action == "add-folder":
        if not folder.exists():
            raise CliError(f"{folder} does not exist: give the folder that holds your models",
                           EXIT_BAD_INPUT)
        if not folder.is_dir():
            raise CliError(f"{folder} is a file, not a folder: give the folder that holds it",
                           EXIT_BAD_INPUT)
        changed = folder not in current
        new = [*current, folder] if changed else current
    else:
        matches = [f for f in current if f == folder or _same(f, folder)]
        if not matches:
            listed = ", ".join(str(f) for f in current) or "none"
            raise CliError(f"{folder} is not one of the model folders (they are: {listed})",
                           EXIT_BAD_INPUT)
        changed = True
        new = [f for f in current if f not in matches]
    if changed:
        save_settings(loaded.settings.updated({"local": {"model_folders": new}}),
                      paths.settings_path)
    found = None
    if args.action == "add-folder":
        library = await registry.local_model_library(paths.models_dir, [folder], hashed=False)
        found = sum(1 for e in library.entries if e.source == str(folder))
    if args.json:
        print(json.dumps({"folders": [str(f) for f in new], "changed": changed,
                          "models_found": found}, ensure_ascii=False))
    elif args.action == "add-folder":
        print(f"{'added' if changed else 'already listed'}: {folder} "
              f"({found} model{'s' if found != 1 else ''} found there)")
    else:
        print(f"removed: {folder}")
    return EXIT_OK


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False
