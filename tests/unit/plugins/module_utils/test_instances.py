# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""split_instance_ids: the first check every batch goes through, so a bad id never reaches AWS."""

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import split_instance_ids

SHORT_ID = "i-0123abcd"  # the 8-hex-digit form of instances launched before 2016
LONG_ID = "i-0123456789abcdef0"


def test_valid_ids_keep_their_order():
    assert split_instance_ids([LONG_ID, SHORT_ID]) == ([LONG_ID, SHORT_ID], {})


def test_duplicates_are_described_once():
    assert split_instance_ids([SHORT_ID, LONG_ID, SHORT_ID]) == ([SHORT_ID, LONG_ID], {})


def test_surrounding_whitespace_is_ignored():
    assert split_instance_ids([f"  {LONG_ID}\n"]) == ([LONG_ID], {})


@pytest.mark.parametrize("bad_id", [
    "i-0123abc",               # 7 hex digits
    "i-0123456789abcdef",      # 16 hex digits
    "i-0123456789ABCDEF0",     # AWS ids are lower case
    "i-0123456789abcdefg",     # not hexadecimal
    "0123456789abcdef0",       # no prefix
    "sg-0123456789abcdef0",    # another resource's id
    "",
])
def test_malformed_ids_are_reported_and_not_returned(bad_id):
    valid, bad = split_instance_ids([LONG_ID, bad_id])
    assert valid == [LONG_ID]
    assert list(bad) == [bad_id]
    assert "malformed instance id" in bad[bad_id]


def test_non_string_ids_are_reported_by_their_text():
    valid, bad = split_instance_ids([12345678])
    assert valid == []
    assert list(bad) == ["12345678"]


@pytest.mark.parametrize("empty", [None, []])
def test_no_ids_is_an_empty_batch(empty):
    assert split_instance_ids(empty) == ([], {})
