"""``python -m fcap.models.pretrain_tiny``: build (or find) the three pretrained tiny models.

Prints each model's cache folder and ``quality.json``, and the wall time of
this call (a second call finds them in the cache and takes a second or two).
"""
from __future__ import annotations

import argparse
import json
import logging
import time

from fcap.models.pretrain_tiny import build_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fcap.models.pretrain_tiny",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    built = build_all()
    seconds = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps({"models": built, "seconds": seconds}, indent=1, sort_keys=True))
        return 0
    for kind, quality in built.items():
        print(f"{kind}: {quality.pop('path')}")
        print("  " + json.dumps(quality, sort_keys=True))
    print(f"{seconds} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
