# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters for the Security Hub custom action ("Contain with Ansible") path of extensions/eda."""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudsec.guardduty.plugins.module_utils.securityhub_action import instances_from_findings


def securityhub_instances(findings):
    try:
        return instances_from_findings(findings)
    except ValueError as exc:
        raise AnsibleFilterError(f"cloudsec.guardduty.securityhub_instances: the findings are not JSON: {exc}") from None


class FilterModule:
    def filters(self):
        return {"securityhub_instances": securityhub_instances}
