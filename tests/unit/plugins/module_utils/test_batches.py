import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils.batches import BatchError, account_batches, result_for

ROLE_A = "arn:aws:iam::111122223333:role/GuardDutyResponder"


def hostvars(**hosts):
    return hosts


def test_hosts_are_grouped_by_account_region_and_role_in_a_stable_order():
    hv = hostvars(
        web={"instance_id": "i-1", "region": "us-east-1", "account_id": "123456789012"},
        api={"instance_id": "i-2", "region": "eu-west-1", "account_id": "123456789012"},
        w1={"instance_id": "i-3", "region": "us-east-1", "account_id": "111122223333", "responder_role_arn": ROLE_A},
        w2={"instance_id": "i-4", "region": "us-east-1", "responder_role_arn": ROLE_A},
        app={"instance_id": "i-5", "aws_region": "us-east-1", "account_id": "123456789012"},
    )
    batches = account_batches(["web", "api", "w1", "w2", "app"], hv)
    assert [(b["account_id"], b["region"], b["role_arn"], b["instance_ids"]) for b in batches] == [
        ("111122223333", "us-east-1", ROLE_A, ["i-3", "i-4"]),
        ("123456789012", "eu-west-1", None, ["i-2"]),
        ("123456789012", "us-east-1", None, ["i-1", "i-5"]),
    ]
    assert batches[0]["hosts"] == {"i-3": "w1", "i-4": "w2"}


def test_size_splits_a_large_batch():
    hv = {f"h{n}": {"instance_id": f"i-{n}", "region": "us-east-1"} for n in range(5)}
    batches = account_batches(list(hv), hv, size=2)
    assert [b["instance_ids"] for b in batches] == [["i-0", "i-1"], ["i-2", "i-3"], ["i-4"]]


@pytest.mark.parametrize("variables, message", [
    ({"region": "us-east-1"}, "no instance_id"),
    ({"instance_id": "i-1"}, "not an AWS region"),
    ({"instance_id": "i-1", "region": "mars"}, "not an AWS region"),
    ({"instance_id": "i-1", "region": "us-east-1", "responder_role_arn": "GuardDutyResponder"}, "not an IAM role ARN"),
    ({"instance_id": "i-1", "region": "us-east-1", "account_id": "123456789012", "responder_role_arn": ROLE_A},
     "is not in account 123456789012"),
])
def test_hosts_that_cannot_be_placed_are_named(variables, message):
    with pytest.raises(BatchError) as exc:
        account_batches(["bad", "good"], {"bad": variables, "good": {"instance_id": "i-2", "region": "us-east-1"}})
    assert "host bad" in str(exc.value) and message in str(exc.value)


def test_two_hosts_for_one_instance_are_refused():
    hv = {"a": {"instance_id": "i-1", "region": "us-east-1"}, "b": {"instance_id": "i-1", "region": "us-east-1"}}
    with pytest.raises(BatchError, match="hosts a and b both name instance i-1"):
        account_batches(["a", "b"], hv)


def test_result_for_picks_the_instance_from_a_batched_loop():
    registered = {"results": [
        {"item": {"instance_ids": ["i-1"]}, "instances": {"i-1": {"changed": True}}},
        {"item": {"instance_ids": ["i-2", "i-3"]}, "failed": True, "msg": "AccessDenied on DescribeInstances"},
        {"skipped": True, "item": {"instance_ids": ["i-4"]}},
    ]}
    assert result_for(registered, "i-1") == {"changed": True}
    failed = result_for(registered, "i-3")
    assert failed["changed"] is False and "AccessDenied" in failed["error"]["message"]
    assert result_for(registered, "i-4") is None
    assert result_for({"instances": {"i-9": {"changed": False}}}, "i-9") == {"changed": False}


def test_result_for_reads_list_shaped_instances_as_ec2_isolation_returns_them():
    registered = {"results": [{"item": {"instance_ids": ["i-1", "i-2"]},
                               "instances": [{"instance_id": "i-1", "state": "isolated"},
                                             {"instance_id": "i-2", "state": "failed", "error": "boom"}]}]}
    assert result_for(registered, "i-2") == {"instance_id": "i-2", "state": "failed", "error": "boom"}
    assert result_for(registered, "i-1")["state"] == "isolated"
