"""python -m tests.lab --port PORT --scenario NAME [--faults FILE] : the lab in the foreground."""

import argparse
import json
import sys

import yaml


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--scenario", default="demo", help="a name in tests/lab/scenarios, or generated:N[:ACCOUNTS[:REGIONS]]")
    parser.add_argument("--faults", help="YAML/JSON file with the fault configuration (see tests/lab/faults.py)")
    parser.add_argument("--throttle", action="store_true", help="EC2-like token buckets (200/5 mutating, 100/20 describes)")
    parser.add_argument("--throttle-rate", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resources-file", help="write the scenario's resource map here as JSON once loaded")
    args = parser.parse_args(argv)
    faults = {}
    if args.faults:
        with open(args.faults, encoding="utf-8") as handle:
            faults = yaml.safe_load(handle) or {}
    if args.throttle:
        faults["token_buckets"] = True
    if args.throttle_rate:
        faults["throttle_rate"] = args.throttle_rate
    if args.error_rate:
        faults["error_rate"] = args.error_rate
    faults.setdefault("seed", args.seed)

    def ready(lab):
        if args.resources_file:
            with open(args.resources_file, "w", encoding="utf-8") as handle:
                json.dump({"endpoint": lab.endpoint, "resources": lab.scenario}, handle, indent=2)

    from tests.lab.server import serve

    serve(args.port, args.scenario, faults, ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
