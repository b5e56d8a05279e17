# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The run's incident, and what the roles hand to incident_report: built in Python rather than in Jinja programs."""

from ansible_collections.cloudsec.guardduty.plugins.module_utils.incident import incident_plan as _incident_plan
from ansible_collections.cloudsec.guardduty.plugins.module_utils.report_overview import report_entries


def report_instances(hosts, hostvars, record=None):
    return report_entries(list(hosts or []), hostvars, record or {})


def incident_plan(hosts, hostvars, incident_id, given=False):
    return _incident_plan(list(hosts or []), hostvars, incident_id, bool(given))


class FilterModule:
    def filters(self):
        return {"report_instances": report_instances, "incident_plan": incident_plan}
