# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The record codec every module shares, and the decisions that weigh a tag record against the incident store.

One tag shape: the record as compact JSON (keys sorted), cut into EC2 tag values of at most 256 characters,
in KEY, KEY:2, KEY:3... Records written by the earlier shapes of this version still decode:
  - JSON in KEY, KEY:2... (credentials, detach, protection, eip): the same shape;
  - guardduty:original-groups = number of parts, parts in KEY:1..KEY:N, comma-separated group ids.

Tags are written by anyone holding ec2:CreateTags in the member account: a tag record is a hint to resume
a run, never the authority. The incident store (incident_store.py) is. `for_change` and `for_release` say
which record a module may use, and why it must refuse.
"""

import json

TAG_VALUE_MAX = 256
TRUST_OPTION = "trust_tag_records"


class RecordError(ValueError):
    """A tag record that cannot be read."""


def tag_dict(tags):
    """{key: value} from EC2's [{"Key", "Value"}] or from a dict."""
    if isinstance(tags, dict):
        return dict(tags)
    return {t["Key"]: t["Value"] for t in tags or []}


def _part_number(key, tag_key):
    suffix = tag_key[len(key) + 1:]
    return int(suffix) if tag_key.startswith(key + ":") and suffix.isdigit() else None


def keys(tags, key):
    """The tag keys holding the record named `key`, in order: KEY, then its numbered parts."""
    found = [k for k in tag_dict(tags) if k == key or _part_number(key, k) is not None]
    return sorted(found, key=lambda k: 0 if k == key else _part_number(key, k))


def encode(key, data):
    """{tag key: value} holding `data`."""
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    parts = [text[i:i + TAG_VALUE_MAX] for i in range(0, len(text), TAG_VALUE_MAX)] or [""]
    return {key if n == 0 else f"{key}:{n + 1}": part for n, part in enumerate(parts)}


def decode(tags, key):
    """The record named `key` in the tags, or None when there is none; RecordError when it is damaged."""
    tags = tag_dict(tags)
    found = keys(tags, key)
    if not found:
        return None
    if key not in tags:
        raise RecordError(f"record incomplete: tag {key} is missing (found {', '.join(found)})")
    head = tags[key]
    if head.isdigit() and f"{key}:1" in tags:
        return _decode_counted(tags, key, int(head))
    expected = [key] + [f"{key}:{n}" for n in range(2, len(found) + 1)]
    if found != expected:
        raise RecordError(f"record incomplete: tags {', '.join(found)} are not {', '.join(expected)}")
    try:
        return json.loads("".join(tags[k] for k in found))
    except ValueError as exc:
        raise RecordError(f"unreadable record in tags {', '.join(found)}: {exc}") from None


def _decode_counted(tags, key, count):
    """The earlier shape of guardduty:original-groups: KEY = count, KEY:1..KEY:count comma-separated ids."""
    groups = []
    for index in range(1, count + 1):
        part = f"{key}:{index}"
        if part not in tags:
            raise RecordError(f"record incomplete: tag {part} is missing")
        groups.extend(g for g in tags[part].split(",") if g)
    if not groups:
        raise RecordError(f"record in tag {key} is empty")
    return groups


def rewrite(key, data, tags):
    """(tags to create, tag keys to delete): the record `data` in place of whatever the tags hold now."""
    wanted = encode(key, data)
    current = tag_dict(tags)
    create = {k: v for k, v in wanted.items() if current.get(k) != v}
    stale = [k for k in keys(current, key) if k not in wanted]
    return create, stale


def tag_calls(resource_id, key, data, old_tags=()):
    """The calls writing the record on a resource: CreateTags for what differs from `old_tags` (its tags now,
    [{"Key", "Value"}] or {key: value}), DeleteTags for the parts of it the new one no longer uses."""
    create, stale = rewrite(key, data, old_tags)
    calls = []
    if create:
        calls.append(("CreateTags", {"Resources": [resource_id], "Tags": [{"Key": k, "Value": v} for k, v in create.items()]}))
    if stale:
        calls.append(("DeleteTags", {"Resources": [resource_id], "Tags": [{"Key": k} for k in stale]}))
    return calls


def same(first, second):
    """Whether two records hold the same data (JSON's view: tuples and lists alike)."""
    return json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


# -- a tag record weighed against the incident store (pure) ------------------------------------------
def for_change(subject, key, stored, tagged, tag_error=None):
    """Which record a containment run keeps for `subject` (an instance or ENI) before it changes anything.

    (record or None, warning or None). The store's record wins. Without one, the tag is never adopted:
    the caller records the state it describes from AWS, and the tag is overwritten with it.
    """
    if stored is not None:
        if tag_error is not None or (tagged is not None and not same(tagged, stored)):
            return stored, (f"{subject}: tag {key} differs from the incident store's record; the store's record is "
                            "kept and the tag rewritten from it")
        return stored, None
    if tag_error is not None or tagged is not None:
        return None, (f"{subject}: tag {key} ignored: the incident store has no record of it (written by an earlier "
                      "version, or by someone else); the current state is recorded instead")
    return None, None


def for_release(subject, key, stored, tagged, tag_error=None, trust_tag_records=False):
    """Which record a release may apply for `subject`: (record or None, problem or None, warning or None).

    A problem means nothing of this subject may change. The store's record is applied only when the tag,
    if there is one, holds the same; a tag record without a store record only with trust_tag_records.
    """
    if stored is not None:
        if tag_error is not None:
            return None, f"{subject}: tag {key} is damaged ({tag_error}) and the incident store holds a record: " \
                         "refusing to release until they agree; nothing was changed", None
        if tagged is not None and not same(tagged, stored):
            return None, (f"{subject}: tag {key} differs from the incident store's record: refusing to apply it; "
                          "nothing was changed"), None
        if tagged is None:
            return stored, None, f"{subject}: tag {key} is missing; the incident store's record is applied"
        return stored, None, None
    if tag_error is not None:
        return None, f"{subject}: {tag_error}", None
    if tagged is None:
        return None, None, None
    if trust_tag_records:
        return tagged, None, (f"{subject}: tag {key} applied without an incident store record, because "
                              f"{TRUST_OPTION} is true")
    return None, (f"{subject}: tag {key} holds a record the incident store does not know (written by an earlier "
                  f"version, or forged): refusing to apply it; nothing was changed. Check it, then set "
                  f"{TRUST_OPTION}: true to apply it"), None
