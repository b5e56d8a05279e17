"""The plugins the controller loads for every playbook import no AWS SDK.

ansible-core loads every filter file of a collection the first time any of its filters is used (Jinja2Loader walks
plugins/filter/), so one filter file importing boto3 put it into every playbook's controller: 0.13-0.18 s of CPU on
the controller's own thread before the first batch (docs/benchmarks.md, `make bench-overhead`). boto3 belongs in the
module processes and the inventory plugin only."""

import os
import pathlib
import subprocess
import sys

from ansible_collections.cloudsec.guardduty import plugins

PLUGINS = pathlib.Path(plugins.__file__).parent
CONTROLLER_PLUGINS = ("filter", "action", "strategy")


def controller_modules():
    for kind in CONTROLLER_PLUGINS:
        for path in sorted((PLUGINS / kind).glob("*.py")):
            if path.name != "__init__.py":
                yield f"ansible_collections.cloudsec.guardduty.plugins.{kind}.{path.stem}"


def test_the_filter_action_and_strategy_plugins_import_no_aws_sdk():
    modules = list(controller_modules())
    assert any(m.endswith(".filter.securityhub") for m in modules)  # the file that once imported boto3
    script = ("import importlib, sys\n"
              f"for name in {modules!r}:\n"
              "    importlib.import_module(name)\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 's3transfer')))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"the controller's plugins import the AWS SDK: {done.stdout.strip()[:300]}"


def test_the_securityhub_filter_still_reads_a_custom_action_event():
    from ansible_collections.cloudsec.guardduty.plugins.filter.securityhub import securityhub_instances

    arn = "arn:aws:ec2:eu-west-1:111122223333:instance/i-0aaaaaaaaaaaaaaaa"
    assert securityhub_instances([{"Id": "x", "Resources": [{"Type": "AwsEc2Instance", "Id": arn}]}]) == [
        {"instance_id": "i-0aaaaaaaaaaaaaaaa", "region": "eu-west-1", "account_id": "111122223333", "finding_ids": [],
         "detector_id": None}]
