# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Whether a run may start on the hosts its inventory gave: an inventory that failed to load must fail the run.

Ansible turns an inventory source it cannot parse into a warning, and a play whose pattern then matches no host
into "skipping: no hosts matched" with rc 0: nothing contained, and a green AWX job. The GuardDuty inventory adds
every host it loads to the group `guardduty`, and adds that group even when it found no compromised instance, so
"loaded and found nothing" and "did not load" can be told apart from `groups` alone.
"""

LOADED_GROUP = "guardduty"


class InventoryCheckError(Exception):
    pass


def checked_hosts(pattern, groups, sources=(), allow_empty=False):
    """`pattern` itself when the run may start; InventoryCheckError naming the sources when the inventory gave no
    host and the GuardDuty inventory did not load."""
    groups = groups or {}
    if groups.get("all") or LOADED_GROUP in groups or allow_empty:
        return pattern
    named = ", ".join(str(s) for s in sources or ()) or "none"
    raise InventoryCheckError(
        f"no host to work on: the inventory ({named}) gave no host and the GuardDuty inventory did not load "
        "(its cause is in the warnings above: a file Ansible could not parse, no or invalid AWS credentials, a "
        "region that does not exist). Nothing was changed. Check it with `ansible-inventory -i SOURCE --graph`; "
        "to run on an inventory that is meant to be empty, set -e guardduty_allow_empty_inventory=true")
