# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters the roles use to run each module once per account and region, then show results per host."""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudsec.guardduty.plugins.module_utils.batch_engine import BatchError
from ansible_collections.cloudsec.guardduty.plugins.module_utils.batch_engine import account_batches as _account_batches
from ansible_collections.cloudsec.guardduty.plugins.module_utils import batch_engine as _batches
from ansible_collections.cloudsec.guardduty.plugins.module_utils import guards as _guards


def account_batches(hosts, hostvars, size=None):
    try:
        return _account_batches(list(hosts), hostvars, size=int(size) if size else None)
    except BatchError as exc:
        raise AnsibleFilterError(f"cloudsec.guardduty.account_batches: {exc}") from None


def run_summary(run, steps, check_mode=False):
    return _batches.run_summary(_batches.decode_run(run), list(steps or []), bool(check_mode))


def run(value):
    """The run's state from its fact (ansible_facts.cloudsec_guardduty_run, JSON text: module_utils/batch_engine.py)."""
    try:
        return _batches.decode_run(value) or {}
    except ValueError as exc:
        raise AnsibleFilterError(f"cloudsec.guardduty.run: the run's fact is not a run: {exc}") from None


def host_parts(hosts, hostvars, variable):
    """{instance_id: the host's `variable`} for the hosts with an instance: parts a role decided per host."""
    parts = {}
    for host in hosts or []:
        variables = hostvars[host]
        if variables.get("instance_id"):
            parts[variables["instance_id"]] = variables.get(variable)
    return parts


def option_problems(values, checks):
    try:
        return _guards.option_problems(dict(values or {}), dict(checks or {}))
    except ValueError as exc:
        raise AnsibleFilterError(f"cloudsec.guardduty.option_problems: {exc}") from None


class FilterModule:
    def filters(self):
        return {"account_batches": account_batches, "option_problems": option_problems, "run_summary": run_summary,
                "host_parts": host_parts, "run": run}
