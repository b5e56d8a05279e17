"""docs/iam/securityhub.json is what the roles' Security Hub option needs on top of the job's policy, and each
of its actions is needed: the runs under the lab's IAM enforcement (see test_least_privilege.py)."""

import json

from tests.integration_lab.test_least_privilege import (  # noqa: F401 (enforced is a fixture)
    OPERATOR_USER, called, denied, describe, enforced, failures, grant, load_policy, run, set_responder_policy, statements,
    without)

LIMIT = "web-1,worker-1"


def merged(*names):
    return {"Version": "2012-10-17", "Statement": [s for n in names for s in statements(load_policy(n))]}


def hub_status(lab, name):
    inst = lab.instance(name)
    client = lab.client("securityhub", inst["account"], inst["region"])
    resource = f"arn:aws:ec2:{inst['region']}:{inst['account']}:instance/{inst['id']}"
    found = client.get_findings(Filters={"ResourceId": [{"Value": resource, "Comparison": "EQUALS"}]})["Findings"]
    # every record: release archives the GuardDuty findings (their Security Hub records become ARCHIVED, RESOLVED)
    return {f["Workflow"]["Status"] for f in found}


def limit_ids(lab):
    return ",".join(lab.instance(n)["id"] for n in LIMIT.split(","))


def test_isolate_and_release_with_security_hub_need_only_securityhub_json_more(enforced, tmp_path):
    identity = grant(enforced, load_policy("inventory-readonly.json"), merged("responder.json", "securityhub.json"))
    enforced.iam_enforcement(True)
    mark = enforced.mark()
    out = run(identity, tmp_path, "isolate.yml", limit=limit_ids(enforced), expect_rc=None,
              extra_vars={"isolate_securityhub_update": True, "isolate_scan": False, "isolate_snapshots": False,
                          "isolate_evidence": False})
    refused = denied(enforced, mark)
    assert not refused, "isolate with Security Hub needs more than responder.json + securityhub.json:\n" + describe(refused)
    assert out["rc"] == 0, "\n".join(failures(out)) or out["stderr"][-3000:]
    used = called(enforced, mark)
    assert {a for s in statements(load_policy("securityhub.json")) for a in [s["Action"]]} <= used
    enforced.iam_enforcement(False)
    for name in LIMIT.split(","):
        assert hub_status(enforced, name) == {"NOTIFIED"}, name

    set_responder_policy(enforced, merged("release.json", "securityhub.json"))
    # release archives the released findings as the GuardDuty administrator: the operator's own credentials
    enforced.client("iam").put_user_policy(UserName=OPERATOR_USER, PolicyName="operator-findings",
                                           PolicyDocument=json.dumps(load_policy("operator-findings.json")))
    enforced.iam_enforcement(True)
    mark = enforced.mark()
    out = run(identity, tmp_path, "release.yml", limit=limit_ids(enforced), expect_rc=None,
              extra_vars={"release_confirm": "INC-LP", "release_securityhub_update": True})
    refused = denied(enforced, mark)
    assert not refused, "release with Security Hub needs more than release.json + securityhub.json:\n" + describe(refused)
    assert out["rc"] == 0, "\n".join(failures(out)) or out["stderr"][-3000:]
    enforced.iam_enforcement(False)
    for name in LIMIT.split(","):
        assert hub_status(enforced, name) == {"RESOLVED"}, name


def test_without_batch_update_findings_the_hosts_fail_naming_it_and_containment_stands(enforced, tmp_path):
    policy = without(merged("responder.json", "securityhub.json"), "securityhub:BatchUpdateFindings")
    identity = grant(enforced, load_policy("inventory-readonly.json"), policy)
    enforced.iam_enforcement(True)
    mark = enforced.mark()
    out = run(identity, tmp_path, "isolate.yml", limit=enforced.instance("web-1")["id"], expect_rc=None,
              extra_vars={"isolate_securityhub_update": True, "isolate_scan": False, "isolate_snapshots": False,
                          "isolate_evidence": False})
    assert out["rc"] != 0
    refused = denied(enforced, mark)
    assert {f"{e['service']}:{e['action']}" for e in refused} == {"securityhub:BatchUpdateFindings"}, describe(refused)
    named = [m for m in failures(out) if "BatchUpdateFindings" in m and "AccessDenied" in m]
    assert named, "\n".join(failures(out))
    # the Security Hub stage runs last: the instance was contained all the same
    assert "ec2:ModifyNetworkInterfaceAttribute" in called(enforced, mark)
