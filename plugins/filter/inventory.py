# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The playbooks' host pattern, refused when the inventory did not load (module_utils/inventory_check.py)."""

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudsec.guardduty.plugins.module_utils.inventory_check import InventoryCheckError
from ansible_collections.cloudsec.guardduty.plugins.module_utils.inventory_check import checked_hosts as _checked_hosts


def checked_hosts(pattern, groups, sources=None, allow_empty=False):
    try:
        return _checked_hosts(pattern, groups, sources or (), allow_empty=bool(allow_empty))
    except InventoryCheckError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"checked_hosts": checked_hosts}
