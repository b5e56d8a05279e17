"""ec2_isolation's per-ENI moves when EC2 does not answer (read timeout) or refuses.

The client below stands for EC2's ModifyNetworkInterfaceAttribute only: it keeps each ENI's group set
as EC2 would (the whole set replaced) and fails the calls it is told to. A timed-out call may have been
applied, which is the case that matters: the ENI must not be left on the open conversion group.
"""

import botocore.exceptions
import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import isolation
from ansible_collections.cloudsec.guardduty.plugins.modules import ec2_isolation

GROUPS = {("vpc-1", isolation.CONVERSION): "sg-conversion", ("vpc-1", isolation.ISOLATION): "sg-isolation"}
STEP = {"resource": "eni-1", "vpc_id": "vpc-1"}
ORIGINAL = ["sg-web", "sg-app"]


class Ec2Interfaces:
    def __init__(self, failures):
        self.groups = {"eni-1": list(ORIGINAL)}
        self.failures = list(failures)   # per call: None, "timeout-applied", "timeout" or an error code
        self.calls = []

    def modify_network_interface_attribute(self, NetworkInterfaceId, Groups):
        self.calls.append(list(Groups))
        failure = self.failures.pop(0) if self.failures else None
        if failure == "timeout-applied":
            self.groups[NetworkInterfaceId] = list(Groups)
        if failure in ("timeout", "timeout-applied"):
            raise botocore.exceptions.ReadTimeoutError(endpoint_url="https://ec2.us-east-1.amazonaws.com")
        if failure:
            raise botocore.exceptions.ClientError({"Error": {"Code": failure, "Message": "refused"}},
                                                  "ModifyNetworkInterfaceAttribute")
        self.groups[NetworkInterfaceId] = list(Groups)


def isolate(failures):
    ec2 = Ec2Interfaces(failures)
    worker = ec2_isolation.Isolation(ec2, {}, [], max_concurrency=1)
    on, dwell, error = worker.isolate_interface(STEP, GROUPS, ORIGINAL)
    return ec2, on, dwell, error


def test_both_moves_answered_leave_the_eni_on_the_isolation_group():
    ec2, on, dwell, error = isolate([])
    assert error is None and on == ["sg-isolation"] and dwell is not None
    assert ec2.calls == [["sg-conversion"], ["sg-isolation"]]
    assert ec2.groups["eni-1"] == ["sg-isolation"]


@pytest.mark.parametrize("first", ["timeout-applied", "timeout"])
def test_a_timed_out_conversion_move_puts_the_original_groups_back(first):
    ec2, on, dwell, error = isolate([first])
    assert ec2.groups["eni-1"] == ORIGINAL, "the ENI must never stay on the conversion group"
    assert ec2.calls == [["sg-conversion"], ORIGINAL]
    assert on == ORIGINAL and dwell is None
    assert error.startswith("eni-1: ec2:ModifyNetworkInterfaceAttribute:") and "ReadTimeoutError" in error
    assert "put back on its original groups" in error


def test_a_timed_out_isolation_move_puts_the_original_groups_back():
    ec2, on, dwell, error = isolate([None, "timeout"])
    assert ec2.groups["eni-1"] == ORIGINAL
    assert ec2.calls == [["sg-conversion"], ["sg-isolation"], ORIGINAL]
    assert on == ORIGINAL and "moving to the isolation group" in error


def test_a_refused_conversion_move_leaves_the_eni_unchanged_and_says_why():
    ec2, on, dwell, error = isolate(["UnauthorizedOperation"])
    assert ec2.groups["eni-1"] == ORIGINAL and ec2.calls == [["sg-conversion"]]
    assert on is None and "(UnauthorizedOperation)" in error and "the ENI is unchanged" in error


def test_when_putting_back_fails_too_the_message_names_the_groups_to_fix_by_hand():
    ec2, on, dwell, error = isolate([None, "UnauthorizedOperation", "timeout"])
    assert ec2.groups["eni-1"] == ["sg-conversion"]
    assert on == ["sg-conversion"] and "sg-conversion" in error and "sg-isolation" in error


def throttled():
    return botocore.exceptions.ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"},
                                            "ResponseMetadata": {"HTTPStatusCode": 503}}, "ModifyNetworkInterfaceAttribute")


def test_an_eni_found_on_the_conversion_group_goes_straight_on_to_the_isolation_group():
    ec2 = Ec2Interfaces([])
    ec2.groups["eni-1"] = ["sg-conversion"]
    worker = ec2_isolation.Isolation(ec2, {}, [], max_concurrency=1)
    on, _dwell, error = worker.isolate_interface(STEP, GROUPS, ORIGINAL, current=["sg-conversion"])
    assert error is None and on == ["sg-isolation"] and ec2.calls == [["sg-isolation"]]


def test_no_conversion_goes_out_while_a_move_off_the_conversion_group_waits_on_its_retries():
    """Two ENIs, two workers: eni-1 is converted, then its isolation move is throttled three times; eni-2's
    conversion must not be sent (nor retried) before eni-1's isolation move is answered."""
    import threading

    lock, calls, refusals = threading.Lock(), [], {"eni-1": 3}

    class Ec2:
        def modify_network_interface_attribute(self, NetworkInterfaceId, Groups):
            with lock:
                calls.append((NetworkInterfaceId, Groups[0]))
                refuse = Groups == ["sg-isolation"] and refusals.get(NetworkInterfaceId, 0) > 0
                if refuse:
                    refusals[NetworkInterfaceId] -= 1
            if refuse:
                raise throttled()

    started = threading.Event()
    worker = ec2_isolation.Isolation(Ec2(), {}, [], max_concurrency=2)

    def first():
        worker.isolate_interface({"resource": "eni-1", "vpc_id": "vpc-1"}, GROUPS, ORIGINAL)

    def second():
        started.wait()
        worker.isolate_interface({"resource": "eni-2", "vpc_id": "vpc-1"}, GROUPS, ORIGINAL)

    original_wait = worker.isolation_waiting

    def waiting(delta):  # eni-2 starts right after eni-1 reached the conversion group
        original_wait(delta)
        if delta > 0:
            started.set()

    worker.isolation_waiting = waiting
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert calls[:5] == [("eni-1", "sg-conversion")] + [("eni-1", "sg-isolation")] * 4, calls
    assert calls[5:] == [("eni-2", "sg-conversion"), ("eni-2", "sg-isolation")], calls


def test_a_throttled_conversion_is_retried_and_a_refused_one_is_not():
    retries = ec2_isolation.MoveRetries(sleep=lambda s: None)
    answers = [throttled(), throttled(), "ok"]

    def call():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retries.retried(call, ec2_isolation.CONVERSION_RETRY) == "ok" and answers == []
    refused = botocore.exceptions.ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "X")
    with pytest.raises(botocore.exceptions.ClientError):
        retries.retried(lambda: (dummy for dummy in ()).throw(refused), ec2_isolation.CONVERSION_RETRY)


def test_tags_go_in_one_call_per_tag_set_and_at_most_1000_resources():
    """CreateTags takes many resources, up to 1000 (botocore ec2 model, CreateTagsRequest.Resources)."""
    calls = []

    def create_tags(_client, resources, tags):
        calls.append((len(resources), tuple(sorted(tags.items()))))

    worker = ec2_isolation.Isolation(object(), {}, [], max_concurrency=2)
    steps = [{"resource": f"eni-{n}", "instance_id": f"i-{n}", "tags": {"k": "a" if n < 2500 else "b"}} for n in range(2600)]
    assert worker.tag_batches(steps, create_tags) == {}
    assert sorted(calls) == sorted([(1000, (("k", "a"),)), (1000, (("k", "a"),)), (500, (("k", "a"),)),
                                    (100, (("k", "b"),))])


def test_the_pacer_holds_only_the_moves_onto_the_conversion_group():
    """One client: botocore's adaptive pacer sees the conversion moves (and their answers), never the move off
    the conversion group, and the conversions' turn is checked after the pacer, right before sending."""
    import boto3
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **_kwargs):
            yield b"<ModifyNetworkInterfaceAttributeResponse><return>true</return></ModifyNetworkInterfaceAttributeResponse>"

    client = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    seen = []
    worker = ec2_isolation.Isolation(client, {}, [], max_concurrency=1)
    worker.pacer.limiter.on_sending_request = lambda **kw: seen.append("paced")
    worker.pacer.limiter.on_receiving_response = lambda **kw: seen.append("answered")
    worker.pacer.turn = lambda: seen.append("turn")

    def answer(request, **_kwargs):  # EC2 answering, registered after the module's handlers: the request is sent
        seen.append("sent")
        return AWSResponse(request.url, 200, {}, Raw())

    client.meta.events.register_last("before-send", answer)
    on, _dwell, error = worker.isolate_interface({"resource": "eni-1", "vpc_id": "vpc-1"}, GROUPS, ORIGINAL)
    assert error is None and on == ["sg-isolation"]
    # the conversion: paced, its turn, sent, its answer to the pacer; the isolation move: sent, nothing else
    assert seen == ["paced", "turn", "sent", "answered", "sent"], seen
