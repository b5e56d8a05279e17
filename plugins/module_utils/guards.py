# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Guards: the options checked before the first AWS change, as plain functions over plain values.

Each `*_problem` function returns None when the value is acceptable, else one sentence naming the option,
the value and what is accepted. The modules call them before any AWS call; the roles call them through
the `cloudsec.guardduty.option_problems` filter before the first stage (roles/isolate tasks/guards.yml), and
batch_stage checks every batch leader's options with them (plugin_utils/leader_options.py, roles/isolate tasks/place.yml).
"""

import ipaddress
import re

# -- incident id --------------------------------------------------------------------------------------
# It names a directory (evidence, report), a tag value (instances, snapshots) and a RoleSessionName part:
# the characters all of them accept, a letter or digit first (never '.', '..', or an option-like '-').
INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
INCIDENT_ID_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters"


def incident_id_problem(value, name="incident_id"):
    """Why `value` cannot be an incident id, or None. An integer (JSON extra vars: 42) reads as its digits."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return f"{name} must be a string, not {type(value).__name__}"
    text = str(value)
    if not INCIDENT_ID.fullmatch(text):
        shown = text if len(text) <= 64 else text[:64] + "..."
        return f"{name} {shown!r} is not a valid incident id: use {INCIDENT_ID_RULE}"
    return None


# -- security group names -----------------------------------------------------------------------------
# CreateSecurityGroup's GroupName (botocore ec2 model, CreateSecurityGroupRequest.GroupName): "Up to 255
# characters in length. Can't start with sg-. Valid characters: a-z, A-Z, 0-9, spaces, and
# ._-:/()#,@[]+=&;{}!$*". Names are case-insensitive, so "SG-" is refused as well.
GROUP_NAME_MAX = 255
GROUP_NAME_CHARS = re.compile(r"^[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+$")


def group_name_problem(value, name="group name"):
    if not isinstance(value, str) or not value:
        return f"{name} must be a non-empty string"
    if len(value) > GROUP_NAME_MAX:
        return f"{name} is {len(value)} characters long; AWS accepts at most {GROUP_NAME_MAX}"
    if value.lower().startswith("sg-"):
        return f"{name} {value!r} starts with 'sg-', which AWS refuses (it is the prefix of group ids)"
    if not GROUP_NAME_CHARS.fullmatch(value):
        return f"{name} {value!r} has characters AWS refuses: use letters, digits, spaces and ._-:/()#,@[]+=&;{{}}!$*"
    return None


# -- numbers ------------------------------------------------------------------------------------------
def non_negative_problem(value, name):
    """A wait timeout (seconds) or a count: an integer >= 0."""
    if isinstance(value, bool):
        return f"{name} must be a whole number of seconds >= 0, not {value!r}"
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return f"{name} must be a whole number >= 0, not {value!r}"
    if number < 0:
        return f"{name} is {number}; it must be >= 0"
    return None


def positive_problem(value, name):
    problem = non_negative_problem(value, name)
    if problem is None and int(str(value)) < 1:
        return f"{name} is {value}; it must be >= 1"
    return problem


# ICMP in a security group rule (botocore ec2 model, IpPermission.FromPort / ToPort): FromPort is the ICMP
# type or -1 (all types), ToPort the ICMP code or -1 (all codes); "If the start port is -1 (all ICMP
# types), then the end port must be -1 (all ICMP codes)". Types and codes are octets: -1..255.
def icmp_problem(icmp_type, icmp_code, where="rule"):
    for label, value in (("type", icmp_type), ("code", icmp_code)):
        if not -1 <= int(value) <= 255:
            return f"{where}: ICMP {label} {value} is not within -1 (all) to 255"
    if int(icmp_type) == -1 and int(icmp_code) != -1:
        return f"{where}: ICMP code {icmp_code} needs an ICMP type: with type -1 (all types) the code must be -1 too"
    return None


# -- examiner access (allowed_access) ------------------------------------------------------------------
# The isolation group is shared by every isolated instance of the VPC: a rule on it opens all of them. A
# range is accepted as it is when it is private (RFC 1918, or IPv6 unique local fc00::/7) and no broader
# than /16 (IPv4) or /48 (IPv6), at most an office or VPC network. A public or broader range needs the
# explicit acknowledgement; a range broader than /8 (IPv4) or /32 (IPv6) is never accepted: it is the
# internet in a few rules (0.0.0.0/1 + 128.0.0.0/1, ::/1).
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
NARROW_PREFIX = {4: 16, 6: 48}      # at least this long without the acknowledgement
BROADEST_PREFIX = {4: 8, 6: 32}     # never shorter than this


def is_private_network(network):
    return any(network.version == p.version and network.subnet_of(p) for p in PRIVATE_NETWORKS)


def cidr_problem(network, acknowledge_public, where="allowed_access", acknowledge_option="allowed_access_acknowledge_public"):
    """Why this network may not be allowed on the shared isolation group, or None."""
    if network.prefixlen == 0:
        return (f"{where}: cidr {network} is open to everyone; the isolation group is shared by every isolated "
                "instance in the VPC and must never hold an open rule")
    if network.prefixlen < BROADEST_PREFIX[network.version]:
        return (f"{where}: cidr {network} is broader than /{BROADEST_PREFIX[network.version]}: a few such ranges open "
                "the shared isolation group to the internet; it is refused even with the acknowledgement")
    if acknowledge_public:
        return None
    if not is_private_network(network):
        return (f"{where}: cidr {network} is not a private range (RFC 1918, fc00::/7): it would expose every instance "
                f"isolated in the VPC to it; set {acknowledge_option}: true to allow it knowingly")
    if network.prefixlen < NARROW_PREFIX[network.version]:
        return (f"{where}: cidr {network} is broader than /{NARROW_PREFIX[network.version]}: name the examiner's hosts "
                f"or subnet, or set {acknowledge_option}: true to allow it knowingly")
    return None


def kept_examiner_access(atom):
    """Whether a CIDR rule found on the isolation group is examiner access some run may have added
    (kept by a run that only adds rules): a CIDR no broader than BROADEST_PREFIX. Open or broader CIDRs,
    group and prefix-list references were not added by allowed_access and are always revoked."""
    kind, target = atom[4], atom[5]
    if kind not in ("cidr4", "cidr6"):
        return False
    network = ipaddress.ip_network(target, strict=False)
    return network.prefixlen >= BROADEST_PREFIX[network.version]


class AccessError(ValueError):
    """An allowed_access entry that cannot become a rule on the isolation group."""


def allowed_access_atoms(entries, acknowledge_public=False):
    """The examiner's access as rule atoms. The isolation group is shared: a rule on it opens every instance
    isolated in the VPC, so public or broad ranges need `acknowledge_public` and open ones are always refused
    (cidr_problem)."""
    atoms = set()
    for index, entry in enumerate(entries or []):
        where = f"allowed_access[{index}]"
        try:
            network = ipaddress.ip_network(str(entry.get("cidr")), strict=False)
        except ValueError:
            raise AccessError(f"{where}: cidr {entry.get('cidr')!r} is not an IPv4 or IPv6 network") from None
        problem = cidr_problem(network, acknowledge_public, where)
        if problem:
            raise AccessError(problem)
        kind = "cidr6" if network.version == 6 else "cidr4"
        protocol = str(entry.get("protocol") or "tcp").lower()
        if protocol in ("all", "-1"):
            protocol, from_port, to_port = "-1", None, None
        elif protocol in ("tcp", "udp"):
            if entry.get("port") is None:
                raise AccessError(f"{where}: protocol {protocol} needs a port")
            from_port = int(entry["port"])
            to_port = int(entry.get("to_port") if entry.get("to_port") is not None else from_port)
            if not 0 <= from_port <= to_port <= 65535:
                raise AccessError(f"{where}: port range {from_port}-{to_port} is not within 0-65535")
        elif protocol == "icmp":
            protocol = "icmpv6" if network.version == 6 else "icmp"
            from_port = int(entry["port"]) if entry.get("port") is not None else -1
            to_port = int(entry["to_port"]) if entry.get("to_port") is not None else -1
            problem = icmp_problem(from_port, to_port, where)
            if problem:
                raise AccessError(problem)
        else:
            raise AccessError(f"{where}: protocol {protocol!r} is not one of tcp, udp, icmp, all")
        direction = entry.get("direction") or "ingress"
        if direction not in ("ingress", "egress"):
            raise AccessError(f"{where}: direction {direction!r} is not ingress or egress")
        atoms.add((direction, protocol, from_port, to_port, kind, str(network)))
    return frozenset(atoms)


# -- a role's options ---------------------------------------------------------------------------------
def allowed_access_problem(entries, acknowledge_public, name="allowed_access"):
    """The isolation module's own check of examiner access (allowed_access_atoms), for a role."""
    if entries in (None, "", []):
        return None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return f"{name} must be a list of {{cidr, protocol, port, to_port, direction}}"
    try:
        allowed_access_atoms(entries, bool(acknowledge_public))
    except AccessError as exc:
        return str(exc).replace("allowed_access", name, 1)
    except (TypeError, ValueError) as exc:
        return f"{name}: {exc}"
    return None


def option_problems(values, checks):
    """[problem] for a role's options: `values` {option: value}, `checks` {option: kind}, kind one of
    incident_id, group_name, non_negative, positive, allowed_access (which reads <option>_acknowledge_public)."""
    problems = []
    for option, kind in checks.items():
        value = values.get(option)
        if kind == "incident_id":
            problem = incident_id_problem(value, option)
        elif kind == "group_name":
            problem = group_name_problem(value, option)
        elif kind == "non_negative":
            problem = non_negative_problem(value, option)
        elif kind == "positive":
            problem = positive_problem(value, option)
        elif kind == "allowed_access":
            problem = allowed_access_problem(value, values.get(option + "_acknowledge_public"), option)
        else:
            raise ValueError(f"unknown option check {kind!r} for {option}")
        if problem:
            problems.append(problem)
    return problems
