"""The ``generate`` / ``queue add`` flags that work on an existing image.

``--init-image FILE`` (or ``--from-gallery ID``) names the source; with it alone the
job is image-to-image (``--strength``), with ``--mask FILE`` an inpaint, with
``--outpaint L,T,R,B`` an outpaint, with ``--upscale SCALE`` an upscale. Which
flags go together is checked before anything is stored (``check``); the files are
then stored in the profile's input store and the request gets its work
(``attach``). Every mistake is bad input (exit 2) in one line saying what to fix.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.cli import arguments
from desktop_app.cli.errors import EXIT_BAD_INPUT, CliError
from desktop_app.domain.image_work import (
    MAX_MASK_BLUR,
    MAX_UPSCALE,
    MIN_UPSCALE,
    ImageRef,
    ImageToImage,
    ImageWork,
    Inpaint,
    Outpaint,
    Padding,
    Upscale,
)
from desktop_app.domain.request import GenerationRequest

if TYPE_CHECKING:
    from desktop_app.engine.engine import Engine

STRENGTH = arguments.number("Strength", 0.0, 1.0)
UPSCALE = arguments.number("Upscale", MIN_UPSCALE, MAX_UPSCALE)
MASK_BLUR = arguments.whole("Mask blur", 0, MAX_MASK_BLUR)
GALLERY_ID = arguments.whole("The gallery image id", 1, arguments.MAX_JOB_ID)

# the flags that choose a kind of work on the source; at most one of them
_KIND_FLAGS = (("mask", "--mask"), ("outpaint", "--outpaint"), ("upscale", "--upscale"))


def outpaint(text: str) -> Padding:
    """An argparse type: ``left,top,right,bottom`` in pixels."""
    from desktop_app.domain.errors import InvalidRequest

    try:
        return Padding.parse(text)
    except InvalidRequest as error:
        raise argparse.ArgumentTypeError(error.message) from None


def add_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "work on an existing image",
        "give a source with --init-image or --from-gallery; alone it is image-to-image, "
        "with --mask an inpaint, --outpaint an outpaint, --upscale an upscale; "
        "the result's size follows from the source")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--init-image", type=Path, default=None, metavar="FILE",
                        help="the source image (PNG, JPEG or WebP)")
    source.add_argument("--from-gallery", type=GALLERY_ID, default=None, metavar="ID",
                        help="a gallery image as the source (see `imagedesk gallery search`)")
    group.add_argument("--strength", type=STRENGTH, default=None,
                       help="above 0 to 1: how far from the source the result may go "
                            "(default 0.75 image-to-image, 1 inpaint/outpaint, 0.3 upscale)")
    group.add_argument("--mask", type=Path, default=None, metavar="FILE",
                       help="inpaint: white repaints, black keeps; the source's size")
    group.add_argument("--mask-blur", type=MASK_BLUR, default=None, metavar="PIXELS",
                       help=f"soften the mask's edge for inpaint or outpaint, 0 to {MAX_MASK_BLUR}")
    group.add_argument("--outpaint", type=outpaint, default=None, metavar="L,T,R,B",
                       help="extend the canvas by these pixels on the left, top, right, bottom")
    group.add_argument("--upscale", type=UPSCALE, default=None, metavar="SCALE",
                       help=f"enlarge by SCALE (above {MIN_UPSCALE:g}, at most {MAX_UPSCALE:g}), "
                            "then repaint lightly for detail")


def has_source(args: argparse.Namespace) -> bool:
    return getattr(args, "init_image", None) is not None \
        or getattr(args, "from_gallery", None) is not None


def check(args: argparse.Namespace) -> None:
    """Refuse wrong combinations of flags, before anything is stored."""
    chosen = [flag for attr, flag in _KIND_FLAGS if getattr(args, attr, None) is not None]
    if not has_source(args):
        needs = chosen + [flag for attr, flag in (("strength", "--strength"),
                                                  ("mask_blur", "--mask-blur"))
                          if getattr(args, attr, None) is not None]
        if needs:
            raise CliError(f"{needs[0]} works on a source image: add --init-image FILE or "
                           "--from-gallery ID", EXIT_BAD_INPUT)
        return
    if len(chosen) > 1:
        raise CliError(f"{' and '.join(chosen)} cannot be combined: one job does one kind of "
                       "work (give one of them)", EXIT_BAD_INPUT)
    if args.size is not None:
        raise CliError("--size does not go with a source image: the result's size follows "
                       "from the source (and --outpaint or --upscale)", EXIT_BAD_INPUT)
    if args.mask_blur is not None and args.mask is None and args.outpaint is None:
        raise CliError("--mask-blur goes with --mask or --outpaint", EXIT_BAD_INPUT)
    for attr, flag in (("init_image", "--init-image"), ("mask", "--mask")):
        path = getattr(args, attr)
        if path is not None and not Path(path).is_file():
            what = "is a folder" if Path(path).is_dir() else "does not exist"
            raise CliError(f"{flag} {path} {what}: give an image file", EXIT_BAD_INPUT)


async def attach(engine: Engine, args: argparse.Namespace,
                 request: GenerationRequest) -> GenerationRequest:
    """Store the source (and mask) and give ``request`` its work; a text job is
    returned as it is."""
    from desktop_app.store.input_images import InputImageError

    if not has_source(args):
        return request
    flag = "--from-gallery" if args.from_gallery is not None else "--init-image"
    try:
        if args.from_gallery is not None:
            source = await engine.use_as_source(args.from_gallery)
        else:
            source = await engine.add_input_image(Path(args.init_image), "source")
        flag = "--mask"
        mask = await engine.add_input_image(Path(args.mask), "mask") \
            if args.mask is not None else None
    except InputImageError as error:
        raise CliError(f"{flag}: {error.message}", EXIT_BAD_INPUT) from None
    return request.replace(work=_work(args, source, mask))


def _work(args: argparse.Namespace, source: ImageRef, mask: ImageRef | None) -> ImageWork:
    strength = {} if args.strength is None else {"strength": args.strength}
    blur = {} if args.mask_blur is None else {"mask_blur": args.mask_blur}
    if mask is not None:
        return Inpaint(source=source, mask=mask, **strength, **blur)
    if args.outpaint is not None:
        return Outpaint(source=source, padding=args.outpaint, **strength, **blur)
    if args.upscale is not None:
        return Upscale(source=source, scale=args.upscale, **strength)
    return ImageToImage(source=source, **strength)
