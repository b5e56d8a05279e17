# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the roles hand to incident_report, built in Python rather than in a Jinja program."""

from ansible_collections.cloudsec.guardduty.plugins.module_utils.report_overview import report_entries


def report_instances(hosts, hostvars, record=None):
    return report_entries(list(hosts or []), hostvars, record or {})


class FilterModule:
    def filters(self):
        return {"report_instances": report_instances}
