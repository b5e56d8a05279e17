# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Network isolation, planned: described AWS state in, an ordered plan of calls out. No AWS calls here.

The sequence (seed step 2, issue 3):
  1. record   each ENI's original security groups in the incident store, then in tags on the ENI (the
              hint to resume), before any change;
  2. groups   per VPC, a conversion group (all traffic, in and out, IPv4 and IPv6) and an isolation
              group (no rules but the examiner's allowed_access), found by name and tag or created;
  3. move     each ENI to the conversion group, which makes its TCP/UDP flows untracked, then at once
              to the isolation group, which cuts them;
  4. tag      the instance as isolated.
Release restores each ENI's recorded groups, then removes the record and marks the instance released.
"""

import ipaddress

from ansible_collections.cloudsec.guardduty.plugins.module_utils import guards
from ansible_collections.cloudsec.guardduty.plugins.module_utils import records

TAG_STATE = "guardduty:isolation"
TAG_INCIDENT = "guardduty:incident"
TAG_ISOLATED_AT = "guardduty:isolated-at"
TAG_GROUP_ROLE = "guardduty:role"
RECORD_TAG = "guardduty:original-groups"  # value: number of parts; parts in RECORD_TAG + ":1", ":2", ...
TAG_VALUE_MAX = 256

ISOLATED = "isolated"
RELEASED = "released"
CONVERSION = "conversion"
ISOLATION = "isolation"

# Interfaces whose security groups the instance's owner may change. Anything else (a NAT gateway's,
# a load balancer's, a VPC endpoint's) or any requester-managed interface belongs to another service.
CHANGEABLE_INTERFACE_TYPES = ("interface", "efa", "efa-only")

OPEN_IPV4 = "0.0.0.0/0"
OPEN_IPV6 = "::/0"
# An all-traffic rule to and from everywhere, both directions: EC2 stops tracking TCP/UDP flows.
CONVERSION_RULES = frozenset(
    (direction, "-1", None, None, kind, target)
    for direction in ("ingress", "egress")
    for kind, target in (("cidr4", OPEN_IPV4), ("cidr6", OPEN_IPV6))
)
# What EC2 puts in every new VPC security group: all egress, IPv4, and IPv6 too when the VPC has an
# IPv6 block. Both must go from an isolation group.
DEFAULT_NEW_GROUP_RULES = frozenset([("egress", "-1", None, None, "cidr4", OPEN_IPV4)])
DEFAULT_NEW_GROUP_RULES_IPV6 = frozenset([("egress", "-1", None, None, "cidr6", OPEN_IPV6)])


class PlanError(ValueError):
    """Input the plan cannot be built from (bad allowed_access, a corrupt record)."""


# -- the record of original groups -----------------------------------------------------------------
# Kept in the incident store (the authority: section "network", {"enis": {eni_id: {"groups", "vpc_id"}}}) and
# in the ENI's tags as the hint to resume, through the shared codec (records.py).
def encode_record(group_ids):
    """Tags holding `group_ids` in order, each value within EC2's 256-character limit."""
    if not group_ids:
        raise PlanError("an empty security-group list cannot be recorded")
    return records.encode(RECORD_TAG, list(group_ids))


def decode_record(tags):
    """The recorded group ids, in order; None when there is no record; PlanError when it is damaged."""
    try:
        groups = records.decode(tags, RECORD_TAG)
    except records.RecordError as exc:
        raise PlanError(f"record of original security groups: {exc}") from None
    if groups is None:
        return None
    if not isinstance(groups, list) or not groups or not all(isinstance(g, str) and g.startswith("sg-") for g in groups):
        raise PlanError(f"record of original security groups in tag {RECORD_TAG} is not a list of group ids")
    return groups


def record_tag_keys(tags):
    return records.keys(tags, RECORD_TAG)


# -- normalised views of described resources -------------------------------------------------------
def tag_dict(tag_list):
    return {t["Key"]: t["Value"] for t in tag_list or []}


def interface_view(instance_nic, described):
    """One ENI of an instance: DescribeInstances' view completed by DescribeNetworkInterfaces' (tags,
    RequesterManaged), which DescribeInstances does not return."""
    described = described or {}
    return {
        "network_interface_id": instance_nic["NetworkInterfaceId"],
        "vpc_id": described.get("VpcId") or instance_nic.get("VpcId"),
        "device_index": (instance_nic.get("Attachment") or {}).get("DeviceIndex", 0),
        "security_groups": [g["GroupId"] for g in (described.get("Groups") or instance_nic.get("Groups") or [])],
        "interface_type": described.get("InterfaceType") or instance_nic.get("InterfaceType") or "interface",
        "requester_managed": bool(described.get("RequesterManaged")),
        "tags": tag_dict(described.get("TagSet")),
    }


def rule_atoms(permissions, direction):
    """IpPermissions as a set of single rules: (direction, protocol, from, to, kind, target)."""
    atoms = set()
    for perm in permissions or []:
        protocol = str(perm.get("IpProtocol", "-1")).lower()
        ports = (None, None) if protocol == "-1" else (perm.get("FromPort"), perm.get("ToPort"))
        for item in perm.get("IpRanges") or []:
            atoms.add((direction, protocol, *ports, "cidr4", item["CidrIp"]))
        for item in perm.get("Ipv6Ranges") or []:
            atoms.add((direction, protocol, *ports, "cidr6", item["CidrIpv6"]))
        for item in perm.get("UserIdGroupPairs") or []:
            atoms.add((direction, protocol, *ports, "group", item["GroupId"]))
        for item in perm.get("PrefixListIds") or []:
            atoms.add((direction, protocol, *ports, "prefix", item["PrefixListId"]))
    return atoms


def permissions_from_atoms(atoms):
    """IpPermissions (one per rule, sorted) for the API."""
    out = []
    for _direction, protocol, from_port, to_port, kind, target in sorted(atoms, key=_atom_key):
        perm = {"IpProtocol": protocol}
        if protocol != "-1":
            perm["FromPort"], perm["ToPort"] = from_port, to_port
        key, item = {"cidr4": ("IpRanges", {"CidrIp": target}), "cidr6": ("Ipv6Ranges", {"CidrIpv6": target}),
                     "group": ("UserIdGroupPairs", {"GroupId": target}),
                     "prefix": ("PrefixListIds", {"PrefixListId": target})}[kind]
        perm[key] = [item]
        out.append(perm)
    return out


def _atom_key(atom):
    return tuple("" if v is None else str(v) for v in atom)


def group_view(described):
    return {
        "group_id": described["GroupId"],
        "group_name": described["GroupName"],
        "vpc_id": described.get("VpcId"),
        "tags": tag_dict(described.get("Tags")),
        "rules": rule_atoms(described.get("IpPermissions"), "ingress")
        | rule_atoms(described.get("IpPermissionsEgress"), "egress"),
    }


def is_open_atom(atom):
    return atom[4] in ("cidr4", "cidr6") and ipaddress.ip_network(atom[5], strict=False).prefixlen == 0


# -- allowed_access --------------------------------------------------------------------------------
def allowed_access_rules(entries, acknowledge_public=False):
    """The examiner's access as rule atoms (guards.allowed_access_atoms); a bad entry is a PlanError."""
    try:
        return guards.allowed_access_atoms(entries, acknowledge_public)
    except guards.AccessError as exc:
        raise PlanError(str(exc)) from None


# -- security groups per VPC -----------------------------------------------------------------------
def plan_groups(vpc_ids, described_groups, names, allowed_rules, ipv6_vpcs=(), exclusive=False):
    """Per VPC, the conversion and isolation groups: which exist, which to create, which rules to change.

    `exclusive`: the isolation group's rules are made exactly `allowed_rules`. Without it rules are only
    added: examiner access another run added stays (guards.kept_examiner_access); other rules are revoked.

    `ipv6_vpcs`: the VPCs with an IPv6 block, whose new groups also get an IPv6 egress rule.
    Returns (steps, groups, errors): steps in order; groups {(vpc, role): group_id or None when created
    by a step}; errors {vpc_id: message} for VPCs where a group of that name exists but is not ours.
    """
    wanted = {CONVERSION: CONVERSION_RULES, ISOLATION: allowed_rules}
    by_name = {(g["vpc_id"], g["group_name"]): g for g in described_groups}
    creates, steps, groups, errors = [], [], {}, {}
    for vpc_id in sorted(vpc_ids):
        for role in (CONVERSION, ISOLATION):
            name = names[role]
            found = by_name.get((vpc_id, name))
            if found is not None and found["tags"].get(TAG_GROUP_ROLE) != role:
                errors[vpc_id] = (f"security group {name} ({found['group_id']}) in {vpc_id} exists but is not tagged "
                                  f"{TAG_GROUP_ROLE}={role}; refusing to use a group this module did not create")
                continue
            ref = {"vpc_id": vpc_id, "role": role, "group_name": name}
            if found is None:
                groups[(vpc_id, role)] = None
                creates.append(dict(ref, action="CreateSecurityGroup", description=_group_description(role)))
                current = DEFAULT_NEW_GROUP_RULES | (DEFAULT_NEW_GROUP_RULES_IPV6 if vpc_id in ipv6_vpcs else set())
            else:
                groups[(vpc_id, role)] = found["group_id"]
                ref["group_id"] = found["group_id"]
                current = found["rules"]
            # Revoke before authorize on the isolation group: an open rule is never added, and stray
            # rules go first so the group never holds more than it should.
            extra, missing = current - wanted[role], wanted[role] - current
            if role == ISOLATION and not exclusive:
                extra = {a for a in extra if not guards.kept_examiner_access(a)}
            for direction in ("ingress", "egress"):
                atoms = {a for a in extra if a[0] == direction}
                if atoms:
                    steps.append(dict(ref, action=f"RevokeSecurityGroup{direction.title()}",
                                      permissions=permissions_from_atoms(atoms)))
            for direction in ("ingress", "egress"):
                atoms = {a for a in missing if a[0] == direction}
                if atoms:
                    steps.append(dict(ref, action=f"AuthorizeSecurityGroup{direction.title()}",
                                      permissions=permissions_from_atoms(atoms)))
    # Every group is created before any rule changes: creation is what a concurrent run can race on.
    steps = [s for s in creates + steps if s["vpc_id"] not in errors]
    return steps, groups, errors


def _group_description(role):
    if role == CONVERSION:
        return "GuardDuty containment: all traffic, briefly, so tracked flows become untracked"
    return "GuardDuty containment: isolated instances, no traffic but the examiner's"


def group_placeholder(names, role):
    """How a group not created yet is named in a plan or a check-mode result."""
    return f"(new) {names[role]}"


# -- per instance ----------------------------------------------------------------------------------
def changeable_problem(eni):
    if eni["requester_managed"]:
        return "requester-managed: owned by another AWS service, its security groups cannot be changed"
    if eni["interface_type"] not in CHANGEABLE_INTERFACE_TYPES:
        return f"interface type {eni['interface_type']!r} is managed by another AWS service"
    return None


def _tag_record(eni):
    """(recorded groups or None, error or None) of the ENI's tags."""
    try:
        return decode_record(eni["tags"]), None
    except PlanError as exc:
        return None, str(exc)


def stored_interfaces(stored):
    """{eni_id: {"groups", "vpc_id"}} of an instance's "network" record in the incident store."""
    return dict((stored or {}).get("enis") or {})


def plan_isolate(instance_id, instance_tags, enis, groups, names, incident_id, now, vpc_errors=None, stored=None):
    """The steps isolating one instance, and its predicted result.

    `groups` maps (vpc_id, role) to a group id (None for a group the plan creates); `stored` is the instance's
    "network" record in the incident store (or None). Returns a dict with `steps` (record, move, tag, in
    order), the per-ENI view of the result, and `store`: the network record to write to the store before
    any step, or None when the store already holds it. A tag record the store does not know is never
    adopted: the ENI's actual groups (the containment groups excepted) are recorded and the tag rewritten.
    """
    vpc_errors = vpc_errors or {}
    result = {"instance_id": instance_id, "state": ISOLATED, "enis": [], "warnings": [], "errors": [], "steps": [],
              "store": None}
    record_steps, move_steps = [], []
    known = stored_interfaces(stored)
    to_store = dict(known)
    for eni in sorted(enis, key=lambda e: e["device_index"]):
        eni_id, vpc_id = eni["network_interface_id"], eni["vpc_id"]
        out = {"network_interface_id": eni_id, "vpc_id": vpc_id, "device_index": eni["device_index"],
               "original_security_groups": None, "security_groups": list(eni["security_groups"]), "error": None}
        result["enis"].append(out)
        problem = changeable_problem(eni)
        if problem is None and vpc_id in vpc_errors:
            problem = vpc_errors[vpc_id]
        if problem:
            out["error"] = f"{eni_id}: {problem}"
            result["errors"].append(out["error"])
            continue
        tagged, tag_error = _tag_record(eni)
        stored_eni = known.get(eni_id)
        record, warning = records.for_change(eni_id, RECORD_TAG, stored_eni["groups"] if stored_eni else None,
                                             tagged, tag_error)
        ours = {groups.get((vpc_id, CONVERSION)), groups.get((vpc_id, ISOLATION))} - {None}
        isolation_ref = groups.get((vpc_id, ISOLATION)) or group_placeholder(names, ISOLATION)
        if record is None:
            original = [g for g in eni["security_groups"] if g not in ours]
            if original:
                if warning:
                    result["warnings"].append(warning)
                record = original
                to_store[eni_id] = {"groups": original, "vpc_id": vpc_id}
            elif tagged is not None:
                # Isolated by an earlier version, which kept its record in tags only: the tag stays for a
                # release that acknowledges it (trust_tag_records), never adopted here.
                result["warnings"].append(f"{eni_id}: already on the containment groups; its tag {RECORD_TAG} is not "
                                          "in the incident store (an earlier version's record, or forged): release "
                                          "applies it only with trust_tag_records: true")
            else:
                result["warnings"].append(f"{eni_id}: already on the containment groups without a record of its "
                                          "original groups: release cannot restore it")
        elif warning:
            result["warnings"].append(warning)
        if record is not None:
            out["original_security_groups"] = record
            create, stale = records.rewrite(RECORD_TAG, record, eni["tags"])
            if create:
                record_steps.append({"action": "CreateTags", "resource": eni_id, "instance_id": instance_id,
                                     "tags": create})
            if stale:
                record_steps.append({"action": "DeleteTags", "resource": eni_id, "instance_id": instance_id,
                                     "tags": stale})
        if eni["security_groups"] != [isolation_ref]:
            move_steps.append({"action": "ModifyNetworkInterfaceAttribute", "resource": eni_id,
                               "instance_id": instance_id, "vpc_id": vpc_id,
                               "groups": [CONVERSION, ISOLATION]})
        out["security_groups"] = [isolation_ref]
    if to_store != known:
        result["store"] = {"enis": to_store}
    tags = {}
    if instance_tags.get(TAG_STATE) != ISOLATED:
        tags = {TAG_STATE: ISOLATED, TAG_ISOLATED_AT: now}
    if incident_id and instance_tags.get(TAG_INCIDENT) != incident_id:
        tags[TAG_INCIDENT] = incident_id
    if result["errors"] and not move_steps and not record_steps and instance_tags.get(TAG_STATE) != ISOLATED:
        tags = {}  # nothing of this instance can be isolated: do not claim it is
    result["steps"] = record_steps + move_steps
    if tags:
        result["steps"].append({"action": "CreateTags", "resource": instance_id, "instance_id": instance_id,
                                "tags": tags})
    if result["errors"] and not any(e["error"] is None for e in result["enis"]):
        result["state"] = "failed"
    return result


def record_problem(eni_id, vpc_id, record, groups, described_groups):
    """Why a record must not be applied to the ENI, or None.

    A record naming a containment group (by its guardduty:role tag, or by the id of this VPC's conversion
    or isolation group) or a group of another VPC is refused: restoring it would open the ENI.
    `described_groups`: {group_id: {"vpc_id", "role"}} of the recorded groups that exist.
    """
    containment = {groups.get((vpc_id, CONVERSION)): CONVERSION, groups.get((vpc_id, ISOLATION)): ISOLATION}
    for group_id in record:
        described = described_groups.get(group_id) or {}
        role = containment.get(group_id) or (described.get("role") if described.get("role") in (CONVERSION, ISOLATION)
                                             else None)
        if role:
            return (f"{eni_id}: the record names {group_id}, the {role} group of the containment: refusing to "
                    "apply it; nothing was changed")
        if described.get("vpc_id") and described["vpc_id"] != vpc_id:
            return (f"{eni_id}: the record names {group_id} of {described['vpc_id']}, not of the ENI's {vpc_id}: "
                    "refusing to apply it; nothing was changed")
    return None


def recorded_group_ids(enis, stored):
    """Every group id a release could apply (store and tags), to describe them once."""
    ids = set()
    for value in stored_interfaces(stored).values():
        ids.update(value.get("groups") or [])
    for eni in enis:
        tagged, _error = _tag_record(eni)
        ids.update(tagged or [])
    return ids


def plan_release(instance_id, instance_tags, enis, groups, stored=None, described_groups=None, trust_tag_records=False):
    """The steps restoring one instance's recorded groups, and its predicted result.

    The record applied is the incident store's (`stored`, the instance's "network" record), and only when the
    ENI's tag, if any, holds the same; a tag record alone only with trust_tag_records. Any ENI whose record
    is refused fails the instance, and nothing of it changes. `forget`: the store record to drop once done.
    """
    described_groups = described_groups or {}
    result = {"instance_id": instance_id, "state": RELEASED, "enis": [], "warnings": [], "errors": [], "steps": [],
              "forget": False}
    restore_steps, forget_steps, recorded = [], [], 0
    known = stored_interfaces(stored)
    for eni in sorted(enis, key=lambda e: e["device_index"]):
        eni_id, vpc_id = eni["network_interface_id"], eni["vpc_id"]
        out = {"network_interface_id": eni_id, "vpc_id": vpc_id, "device_index": eni["device_index"],
               "original_security_groups": None, "security_groups": list(eni["security_groups"]), "error": None}
        result["enis"].append(out)
        tagged, tag_error = _tag_record(eni)
        stored_eni = known.get(eni_id)
        record, problem, warning = records.for_release(eni_id, RECORD_TAG, stored_eni["groups"] if stored_eni else None,
                                                       tagged, tag_error, trust_tag_records)
        if problem is None and record is not None:
            if stored_eni and stored_eni.get("vpc_id") not in (None, vpc_id):
                problem = (f"{eni_id}: recorded in {stored_eni['vpc_id']}, now in {vpc_id}: refusing to apply the "
                           "record; nothing was changed")
            else:
                problem = record_problem(eni_id, vpc_id, record, groups, described_groups)
        if problem:
            out["error"] = problem
            result["errors"].append(problem)
            continue
        if warning:
            result["warnings"].append(warning)
        if record is None:
            ours = {groups.get((vpc_id, CONVERSION)), groups.get((vpc_id, ISOLATION))} - {None}
            if ours & set(eni["security_groups"]):
                out["error"] = (f"{eni_id}: on the containment groups but no record of its original security groups "
                                f"(incident store or tag {RECORD_TAG}); set its groups by hand")
                result["errors"].append(out["error"])
            continue
        recorded += 1
        out["original_security_groups"] = record
        if eni["security_groups"] != record:
            restore_steps.append({"action": "ModifyNetworkInterfaceAttribute", "resource": eni_id,
                                  "instance_id": instance_id, "vpc_id": vpc_id, "groups": list(record)})
        if record_tag_keys(eni["tags"]):
            forget_steps.append({"action": "DeleteTags", "resource": eni_id, "instance_id": instance_id,
                                 "tags": record_tag_keys(eni["tags"])})
        out["security_groups"] = list(record)
    if result["errors"]:
        # All of an instance's ENIs are restored or none: a partly released instance is neither contained nor whole.
        result["state"] = "failed"
        return result
    result["forget"] = bool(known)
    state = instance_tags.get(TAG_STATE)
    if not recorded and state != ISOLATED:
        if state == RELEASED and not result["errors"]:
            return result  # released before: nothing left to do
        if not result["errors"]:
            result["errors"].append(f"{instance_id}: no isolation record: neither the instance (tag {TAG_STATE}) nor "
                                    f"its network interfaces (incident store, tag {RECORD_TAG}) show it was isolated "
                                    "by this module")
        result["state"] = "failed"
        return result
    result["steps"] = restore_steps + forget_steps
    if state != RELEASED:
        result["steps"].append({"action": "CreateTags", "resource": instance_id, "instance_id": instance_id,
                                "tags": {TAG_STATE: RELEASED}})
    stale = sorted(k for k in (TAG_ISOLATED_AT, TAG_INCIDENT) if k in instance_tags)
    if stale:
        result["steps"].append({"action": "DeleteTags", "resource": instance_id, "instance_id": instance_id,
                                "tags": stale})
    return result


def diff_view(results):
    """{instance_id: {eni_id: groups}} for --diff's before and after."""
    return {r["instance_id"]: {e["network_interface_id"]: e["security_groups"] for e in r["enis"]} for r in results}


# -- ENIs left on a conversion group -----------------------------------------------------------------
# A controller killed between an ENI's two moves leaves it on the conversion group: every port open to
# and from everywhere, until a run moves it on. Every run (isolate, release) looks for such ENIs in its
# VPCs, its own instances' and others', and finishes or reports them; the inventory groups their hosts.
def is_conversion_group(group):
    """A group this collection made for the conversion step: tagged so and allowing all traffic both ways.

    The tag alone is not trusted (anyone with ec2:CreateTags can write it): an ENI is only taken for one left
    by a crash when its group is also open to everything, so moving it on can only reduce its exposure."""
    return group["tags"].get(TAG_GROUP_ROLE) == CONVERSION and CONVERSION_RULES <= group["rules"]


def plan_conversion_recovery(state, stuck, handled, groups):
    """What to do with each ENI found on a conversion group of the run's VPCs.

    `stuck`: interface views of those ENIs plus `instance_id` (None when detached), `conversion_group` and
    `held_by` (who holds the lock of its instance, when another live run does);
    `handled`: ids of the ENIs the run's own instance plans move off the conversion group (an isolate moves
    them on to the isolation group, a release restores their record); `groups`: {(vpc, role): id or None
    for a group this run creates}. Returns (steps, findings): a move onto the VPC's isolation group for each
    ENI to finish, and one finding per ENI (what was found, what is done, or why nothing can be).

    An ENI of another instance is moved on only when it carries a readable record of its original groups:
    every ENI this collection moves is recorded first, so one without a record was not put there by it and
    is reported, not moved. An ENI of the run's own instances that its plan cannot handle (a damaged record
    on release) is moved on to the isolation group whatever its record: the responder named its instance.
    """
    steps, findings = [], []
    for eni in sorted(stuck, key=lambda e: e["network_interface_id"]):
        eni_id, vpc_id = eni["network_interface_id"], eni["vpc_id"]
        finding = {"network_interface_id": eni_id, "instance_id": eni.get("instance_id"), "vpc_id": vpc_id,
                   "conversion_group": eni["conversion_group"], "in_run": eni_id in handled or eni.get("in_run", False),
                   "action": None, "isolation_group": None, "error": None}
        findings.append(finding)
        if eni.get("held_by") and not finding["in_run"]:
            # its instance's lock is held: a live run (another AWX slice, a second responder) is between this
            # ENI's two moves and finishes it; a second move here would only race it
            finding["action"], finding["held_by"] = "left to the run holding its instance's lock", eni["held_by"]
            continue
        if eni_id in handled:
            finding["action"] = "isolated by this run" if state == ISOLATED else "restored by this run"
            continue
        problem = changeable_problem(eni)
        if problem is None and not finding["in_run"]:
            try:
                if decode_record(eni["tags"]) is None:
                    problem = (f"no record of its original groups (tag {RECORD_TAG}): not put there by this collection; "
                               "move it by hand")
            except PlanError as exc:
                problem = f"{exc}; move it by hand"
        target = groups.get((vpc_id, ISOLATION), False)
        if problem is None and target is False:
            problem = f"no isolation group in {vpc_id} to move it to; run isolate on its instance"
        if problem is None and target is None and state != ISOLATED:
            problem = f"the isolation group of {vpc_id} does not exist; run isolate on its instance"
        if problem:
            finding["error"] = problem
            continue
        finding["action"] = "move to the isolation group"
        finding["isolation_group"] = target
        steps.append({"action": "ModifyNetworkInterfaceAttribute", "resource": eni_id,
                      "instance_id": eni.get("instance_id"), "vpc_id": vpc_id, "groups": [ISOLATION], "recovery": True})
    return steps, findings


def conversion_recovery_warning(finding, check_mode=False):
    """One line per ENI found on a conversion group, for the run's warnings: what it was, what was done."""
    owner = f"instance {finding['instance_id']}" if finding.get("instance_id") else "no instance"
    found = (f"{finding['network_interface_id']} ({owner}, {finding['vpc_id']}) was on the conversion group "
             f"{finding['conversion_group']}, open to all traffic in and out: a run stopped between its two moves "
             "(or one is moving it now)")
    if finding.get("error"):
        return f"{found}; not finished: {finding['error']}"
    if check_mode:
        return f"{found}; check mode: {finding['action']}"
    if finding.get("restored"):
        return f"{found}; restored to its recorded groups by this release"
    if not finding.get("moved"):
        return f"{found}; not moved by this run (see its instance's error)"
    done = f"moved on to the isolation group {finding['isolation_group']}"
    if not finding["in_run"] and finding.get("instance_id"):
        done += f"; {finding['instance_id']} is not marked isolated: run isolate on it to finish it"
    return f"{found}; {done}"
