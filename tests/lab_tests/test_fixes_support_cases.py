"""AWS Support in the lab: cases are described as they were opened; no support plan is a forced fault."""

import pytest
from botocore.exceptions import ClientError


def test_describe_cases_returns_the_case_as_opened(lab):
    lab.reset("empty")
    support = lab.client("support")
    case_id = support.create_case(subject="[INC-1] test", communicationBody="body", severityCode="high",
                                  serviceCode="amazon-elastic-compute-cloud-linux", categoryCode="other")["caseId"]
    for _ in range(3):  # AWS: describing a case does not change it
        case = support.describe_cases(caseIdList=[case_id], includeResolvedCases=True)["cases"][0]
        assert case["severityCode"] == "high"
        assert case["status"] == "opened"
        assert case["subject"] == "[INC-1] test"


def test_account_without_support_plan(lab):
    lab.reset("empty", faults={"forced": [{"service": "support", "code": "SubscriptionRequiredException"}]})
    try:
        with pytest.raises(ClientError) as raised:
            lab.client("support").describe_cases(includeResolvedCases=True)
        assert raised.value.response["Error"]["Code"] == "SubscriptionRequiredException"
    finally:
        lab.faults({})
