"""``imagedesk styles``: the profile's named prompt styles (an Automatic1111
``styles.csv`` in the config folder): list, add, remove, import and export.

These commands read and write the styles file only: no engine, no profile lock,
so they run while the window is open.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from desktop_app.cli.errors import EXIT_BAD_INPUT, EXIT_OK, CliError
from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.styles import Style
from desktop_app.paths import AppPaths
from desktop_app.store.styles import StyleLibrary, StylesFileError


def add_parser(sub: Any) -> None:
    styles = sub.add_parser("styles", help="named prompt styles (Automatic1111 styles.csv)")
    ssub = styles.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = ssub.add_parser("list", help="list the styles")
    listing.add_argument("--json", action="store_true")
    add = ssub.add_parser("add", help="add or replace a style; {prompt} marks where the "
                                      "job's prompt goes (else the style is appended)")
    add.add_argument("name")
    add.add_argument("--prompt", default="", dest="style_prompt")
    add.add_argument("--negative", default="", dest="style_negative")
    remove = ssub.add_parser("remove", help="remove a style")
    remove.add_argument("name")
    imp = ssub.add_parser("import", help="merge an Automatic1111 styles.csv into yours")
    imp.add_argument("file", type=Path)
    imp.add_argument("--json", action="store_true")
    exp = ssub.add_parser("export", help="write your styles as an Automatic1111 styles.csv")
    exp.add_argument("file", type=Path)


async def styles(args: argparse.Namespace) -> int:
    library = StyleLibrary(AppPaths.discover().ensure().styles_path)
    try:
        return _run(args, library)
    except StylesFileError as error:
        raise CliError(error.message, EXIT_BAD_INPUT) from None
    except InvalidRequest as error:
        raise CliError(error.message, EXIT_BAD_INPUT) from None


def _run(args: argparse.Namespace, library: StyleLibrary) -> int:
    if args.action == "list":
        found = library.all()
        if args.json:
            print(json.dumps({"styles": [{"name": s.name, "prompt": s.prompt,
                                          "negative_prompt": s.negative_prompt}
                                         for s in found]}, ensure_ascii=False))
        else:
            for style in found:
                print(f"{style.name}: {style.prompt}"
                      + (f"  [negative: {style.negative_prompt}]" if style.negative_prompt
                         else ""))
            if not found:
                print(f"no styles yet ({library.path})")
        return EXIT_OK
    if args.action == "add":
        library.save(Style(args.name, args.style_prompt, args.style_negative))
        print(f"saved style {args.name.strip()!r}")
        return EXIT_OK
    if args.action == "remove":
        if not library.remove(args.name):
            raise CliError(f"There is no style named {args.name!r}.", EXIT_BAD_INPUT)
        print(f"removed style {args.name!r}")
        return EXIT_OK
    if args.action == "import":
        count, skipped = library.import_file(args.file)
        if args.json:
            print(json.dumps({"imported": count, "skipped": skipped}, ensure_ascii=False))
        else:
            print(f"imported {count} style(s) from {args.file}")
            for line in skipped:
                print(f"  skipped {line}")
        return EXIT_OK
    count = library.export_file(args.file)
    print(f"wrote {count} style(s) to {args.file}")
    return EXIT_OK
