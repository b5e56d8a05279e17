"""The one record codec and the decisions weighing a tag record against the incident store."""

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import records

KEY = "guardduty:detach-record"


# -- codec -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [["sg-1"], {"a": None, "t": [["arn:x", 443]] * 20, "e": ["lb"]}, {"p": "x" * 600}])
def test_round_trip_in_tag_values_of_at_most_256_characters(data):
    tags = records.encode(KEY, data)
    assert all(len(v) <= records.TAG_VALUE_MAX for v in tags.values())
    assert list(tags) == [KEY] + [f"{KEY}:{n}" for n in range(2, len(tags) + 1)]
    as_list = [{"Key": k, "Value": v} for k, v in reversed(list(tags.items()))] + [{"Key": "Name", "Value": "x"}]
    assert records.decode(as_list, KEY) == data and records.decode(dict(tags), KEY) == data
    assert records.keys(as_list, KEY) == list(tags)


def test_records_written_by_the_earlier_shapes_still_decode():
    # credentials, detach, protection, eip: JSON in KEY, KEY:2 (key order as those codecs wrote it)
    assert records.decode({KEY: '{"p":"arn:a","a":"iip-1"}'}, KEY) == {"p": "arn:a", "a": "iip-1"}
    # guardduty:original-groups: a count, then comma-separated parts from :1
    groups = "guardduty:original-groups"
    assert records.decode({groups: "2", groups + ":1": "sg-1,sg-2", groups + ":2": "sg-3"}, groups) == ["sg-1", "sg-2", "sg-3"]


def test_damaged_records_raise_and_absent_ones_are_none():
    assert records.decode({"Name": "x"}, KEY) is None
    with pytest.raises(records.RecordError, match="unreadable"):
        records.decode({KEY: "{broken"}, KEY)
    with pytest.raises(records.RecordError, match="incomplete"):
        records.decode({KEY + ":2": "x"}, KEY)
    with pytest.raises(records.RecordError, match="incomplete"):
        records.decode({KEY: "{", KEY + ":3": "}"}, KEY)
    with pytest.raises(records.RecordError, match=r":2 is missing"):
        records.decode({KEY: "2", KEY + ":1": "sg-1"}, KEY)


def test_rewrite_writes_only_what_differs_and_deletes_stale_parts():
    old = {KEY: "1", KEY + ":1": "sg-9"}
    create, stale = records.rewrite(KEY, ["sg-1"], old)
    assert create == {KEY: '["sg-1"]'} and stale == [KEY + ":1"]
    assert records.rewrite(KEY, ["sg-1"], records.encode(KEY, ["sg-1"])) == ({}, [])


# -- decisions -------------------------------------------------------------------------------------
def test_change_keeps_the_store_record_and_never_adopts_a_tag_alone():
    assert records.for_change("i-1", KEY, {"x": 1}, {"x": 1}) == ({"x": 1}, None)
    record, warning = records.for_change("i-1", KEY, {"x": 1}, {"x": 2})
    assert record == {"x": 1} and "differs from the incident store" in warning
    record, warning = records.for_change("i-1", KEY, None, {"x": 2})
    assert record is None and warning.startswith(f"i-1: tag {KEY} ignored")
    record, warning = records.for_change("i-1", KEY, None, None, tag_error="unreadable")
    assert record is None and "ignored" in warning
    assert records.for_change("i-1", KEY, None, None) == (None, None)


def test_release_applies_only_the_store_record_the_tag_agrees_with():
    assert records.for_release("i-1", KEY, {"x": 1}, {"x": 1}) == ({"x": 1}, None, None)
    record, problem, _warning = records.for_release("i-1", KEY, {"x": 1}, {"x": 2})
    assert record is None and problem == (f"i-1: tag {KEY} differs from the incident store's record: refusing to apply "
                                          "it; nothing was changed")
    record, problem, _warning = records.for_release("i-1", KEY, {"x": 1}, None, tag_error="unreadable")
    assert record is None and "damaged" in problem
    record, problem, warning = records.for_release("i-1", KEY, {"x": 1}, None)
    assert record == {"x": 1} and problem is None and "missing" in warning


def test_release_of_a_tag_alone_needs_trust_tag_records():
    record, problem, _warning = records.for_release("i-1", KEY, None, {"x": 2})
    assert record is None and "does not know" in problem and "trust_tag_records: true" in problem
    record, problem, warning = records.for_release("i-1", KEY, None, {"x": 2}, trust_tag_records=True)
    assert record == {"x": 2} and problem is None and "trust_tag_records is true" in warning
    assert records.for_release("i-1", KEY, None, None) == (None, None, None)
    assert records.for_release("i-1", KEY, None, None, tag_error="bad") == (None, "i-1: bad", None)
