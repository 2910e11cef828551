"""``swinx2s catalogue``: print the 55-class anatomy catalogue (table, JSON or Slicer colour table)."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "catalogue", help="print the anatomy catalogue (ids, names, anatomy, side, colours, terminology)"
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a JSON list of classes")
    fmt.add_argument("--color-table", action="store_true", help="print the Slicer colour table (CSV)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import catalogue

    if args.json:
        json.dump([c.to_dict() for c in catalogue.CLASSES], sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.color_table:
        sys.stdout.write(catalogue.color_table_text())
    else:
        print(f"{'id':>3}  {'name':<16} {'display name':<20} {'anatomy':<7} {'side':<8} {'colour':<8} TotalSegmentator")
        for c in catalogue.CLASSES:
            ts = ", ".join(f"{n} ({i})" for n, i in zip(c.totalseg_names, c.totalseg_ids, strict=True)) or "-"
            colour = "#{:02x}{:02x}{:02x}".format(*c.color)
            print(f"{c.id:>3}  {c.name:<16} {c.display_name:<20} {c.anatomy:<7} {c.side:<8} {colour:<8} {ts}")
    return 0
