# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Which incident a run belongs to, said at its start, and the instances already contained under another one.

Without `incident_id` a run is named `gd-<UTC date>`: a check run then planned a second set of snapshots for
instances already contained under the incident someone gave the day before. The instances' `guardduty:incident`
tag (in the inventory's `guardduty_tags`) says which incident contained them. It is a hint only - anyone who can
tag the instance can write it - so it never picks the incident: a run without `incident_id` over such instances
stops and names the incident to give; a run with one says which instances were contained under another.
"""

INCIDENT_TAG = "guardduty:incident"


def incident_plan(hosts, hostvars, incident_id, given):
    """{"incident_id", "given", "contained_under": {incident: [host (instance)]}, "refuse": message or None,
    "lines": what the run prints at its start}."""
    contained_under = {}
    for host in hosts or []:
        host_vars = hostvars.get(host) or {}
        tags = host_vars.get("guardduty_tags") or {}
        other = tags.get(INCIDENT_TAG) if isinstance(tags, dict) else None
        if other and str(other) != str(incident_id):
            label = f"{host} ({host_vars.get('instance_id') or '?'})"
            contained_under.setdefault(str(other), []).append(label)
    origin = "given" if given else "none given: named after today's UTC date"
    lines = [f"incident: {incident_id} ({origin})"]
    refuse = None
    for other, labels in sorted(contained_under.items()):
        lines.append(f"already under incident {other!r} (tag {INCIDENT_TAG}): {', '.join(sorted(labels))}")
    if contained_under and not given:
        names = ", ".join(repr(o) for o in sorted(contained_under))
        refuse = (f"no incident_id was given and {sum(len(v) for v in contained_under.values())} instance(s) are already "
                  f"contained under incident {names} (their tag {INCIDENT_TAG}): give -e incident_id=<that incident> to "
                  "continue it, or a new id to start another; nothing was changed")
    return {"incident_id": incident_id, "given": bool(given), "contained_under": contained_under, "refuse": refuse,
            "lines": lines}
