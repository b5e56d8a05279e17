"""The lab: a local stand-in for AWS (see docs/lab.md)."""

import os
import pathlib

# moto loads ~1,300 public AMIs into every EC2 backend (half of a scenario reset); the lab's
# scenarios launch from the few images listed here, and the AWS APIs behave the same.
os.environ.setdefault("MOTO_AMIS_PATH", str(pathlib.Path(__file__).with_name("amis.json")))
