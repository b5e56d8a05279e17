"""guardduty_support_case against the lab: one case per incident, no secrets in it, and accounts without a plan."""

MODULE = "cloudsec.guardduty.guardduty_support_case"
ARGS = {"incident_id": "INC-77", "summary": "web-1 talked to a C&C server. Found aws_secret_access_key=abcd1234SECRET "
        "and key AKIAABCDEFGHIJKLMNOP in /tmp.", "instance_ids": ["i-0123456789abcdef0"],
        "finding_types": ["Backdoor:EC2/C&CActivity.B"], "service_code": "amazon-elastic-compute-cloud-linux",
        "category_code": "other"}


def cases(lab):
    return lab.client("support").describe_cases(includeResolvedCases=True, includeCommunications=True)["cases"]


def test_opens_one_case_per_incident_without_secrets(demo):
    checked = demo.run_module(MODULE, ARGS, check=True)
    assert checked["changed"] is True and cases(demo) == []

    result = demo.run_module(MODULE, ARGS)
    assert result["changed"] is True and result["created"] is True
    assert "repost.aws" in result["re_post"]["url"]
    opened = cases(demo)
    assert len(opened) == 1
    case = opened[0]
    assert case["caseId"] == result["case"]["caseId"]
    assert case["subject"].startswith("[INC-77] ")
    assert case["severityCode"] == "high" and case["serviceCode"] == "amazon-elastic-compute-cloud-linux"
    body = case["recentCommunications"]["communications"][0]["body"]
    assert "i-0123456789abcdef0" in body and "Backdoor:EC2/C&CActivity.B" in body
    assert "abcd1234SECRET" not in body and "AKIAABCDEFGHIJKLMNOP" not in body

    mark = demo.mark()
    again = demo.run_module(MODULE, ARGS)
    assert again["changed"] is False and again["case"]["caseId"] == case["caseId"]
    assert demo.journal(since=mark, action="CreateCase") == []
    assert len(cases(demo)) == 1


def test_account_without_support_plan_is_reported(demo):
    demo.faults({"forced": [{"service": "support", "code": "SubscriptionRequiredException",
                             "message": "AWS Premium Support Subscription is required to use this service."}]})
    result = demo.run_module(MODULE, ARGS)
    assert result["changed"] is False and result["support_plan"] is False and result["case"] is None
    assert "SubscriptionRequiredException" in result["message"]
    assert any("SubscriptionRequiredException" in w for w in result.get("warnings", []))
    assert result["re_post"]["text"]
    failed = demo.run_module(MODULE, dict(ARGS, fail_without_plan=True), expect_rc=(2,))
    assert failed["failed"] is True and failed["code"] == "SubscriptionRequiredException"
    demo.faults({})
    assert cases(demo) == []
