"""``visionkit tfrecords DIR -o OUT``: write an image folder as sharded TFRecords."""

from __future__ import annotations

import argparse

from . import _common as C


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tfrecords", help="write an image folder as sharded TFRecords",
        description="List and check a class-per-folder tree once and write it as sharded TFRecords with a "
                    "manifest, for data.read_tfrecords. Shards are written atomically; an interrupted run resumes.",
    )
    p.add_argument("directory", help="class-per-folder tree of images")
    p.add_argument("-o", "--output", required=True, help="folder to write the shards and manifest.json into")
    p.add_argument("--shard-size", type=C.positive_int, default=2048, help="images per shard (default 2048)")
    p.add_argument("--image-size", type=C.image_size(), default=None,
                   help="store the images resized to N or HxW (JPEG quality 95); default: the files' own bytes")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable images (with a warning) instead of failing")
    p.add_argument("--follow-links", action="store_true", help="enter links to folders inside the class folders")
    C.add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import write_tfrecords

    manifest = write_tfrecords(
        args.directory, args.output, shard_size=args.shard_size, image_size=args.image_size,
        follow_links=args.follow_links, on_error="skip" if args.skip_bad else "raise", progress=not args.quiet,
    )
    print(manifest)
    return 0
