"""``visionkit info``: versions, devices, precision and strategy."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show versions, devices, precision and strategy",
                       description="Print TensorFlow/Keras versions, devices, precision policy and strategy.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..device import info

    data = info()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    width = max(len(k) for k in data)
    for key, value in data.items():
        if key == "devices":
            value = ", ".join(f"{d['name']}" + (f" ({d['gpu_name']})" if d.get("gpu_name") else "") for d in value)
        print(f"{key:<{width}}  {value}")
    return 0
