# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The support case: one per incident, found by subject, and no secrets in its body."""

from ansible_collections.cloudsec.guardduty.plugins.module_utils import guardduty_support_case as support


def test_redact_removes_keys_and_secrets():
    text = "key AKIAABCDEFGHIJKLMNOP secret aws_secret_access_key = wJalrXUtnFEMI/K7MDENG token: x password=hunter2"
    out = support.redact(text)
    assert "AKIAABCDEFGHIJKLMNOP" not in out and "wJalrXUtnFEMI" not in out and "hunter2" not in out
    assert "[redacted access key id]" in out


def test_subject_and_body():
    assert support.case_subject("INC-1", "x" * 400).startswith("[INC-1] x") and len(support.case_subject("INC-1", "x" * 400)) == 255
    body = support.case_body("INC-1", "summary", ["i-1"], ["B", "A", "A"])
    assert "Instances: i-1" in body and "Finding types: A, B" in body


def test_find_case_by_incident_prefix_oldest_first():
    cases = [{"caseId": "c2", "subject": "[INC-1] b", "timeCreated": "2026-02"},
             {"caseId": "c1", "subject": "[INC-1] a", "timeCreated": "2026-01"},
             {"caseId": "c3", "subject": "[INC-10] a", "timeCreated": "2025-01"}]
    assert support.find_case(cases, "INC-1")["caseId"] == "c1"
    assert support.find_case(cases, "INC-2") is None
