# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""An AWS module's options checked, and its module_utils run, in the controller's own process.

cloudsec.guardduty.batch_stage runs the preflight (module_utils/responder_sessions.py: a few STS calls) here instead
of starting a cloudsec.guardduty.sts_responder_sessions process: that process spent 0.5-0.8 s of a run's wall time
starting Python, Ansible's module_utils and boto3 before its first call, with nothing else running meanwhile
(docs/benchmarks.md, `make bench-overhead`). The options are the module's: its own spec and amazon.aws's common AWS
options, checked by Ansible's ArgumentSpecValidator with the same environment fallbacks (AWS_PROFILE,
AWS_ACCESS_KEY_ID, AWS_URL...) the module process would read, so the credentials, endpoint and certificates are the
ones the module would use. boto3 is imported only when a stage needs it: this file is not loaded by every stage.
"""

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.amazon.aws.plugins.module_utils.modules import aws_argument_spec


class ControllerModuleFailed(Exception):
    """What the module would have failed with (fail_json)."""


class ControllerModule:
    """The part of AnsibleAWSModule that module_utils over a module read (`params`, `check_mode`, `fail_json`,
    `fail_json_aws`): a failure raises ControllerModuleFailed instead of ending a process."""

    def __init__(self, argument_spec, args, check_mode=False):
        validated = ArgumentSpecValidator(dict(aws_argument_spec(), **argument_spec)).validate(
            {k: v for k, v in args.items() if not k.startswith("_ansible_")})
        if validated.error_messages:
            raise ControllerModuleFailed("; ".join(validated.error_messages))
        self.params = validated.validated_parameters
        self.check_mode = check_mode

    def fail_json(self, msg, **_kwargs):
        raise ControllerModuleFailed(msg)

    def fail_json_aws(self, exception, msg=None, **_kwargs):
        raise ControllerModuleFailed(f"{msg}: {exception}" if msg else str(exception))
