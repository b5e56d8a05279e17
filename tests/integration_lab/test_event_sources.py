"""The collection's event sources run in-process against the lab, without ansible-rulebook: the engine's
queue is an asyncio.Queue the test controls, so the tests see exactly when a message is deleted and what
the poller emits across polls and restarts (the end-to-end runs are in test_rulebook.py)."""

import asyncio
import json
import os
import runpy

from tests.lab.rulebook import REPO, deleted_receipts, eventbridge_event, finding_wire

# by the collection's path, as ansible-rulebook finds them (the checkout linked in as cloudsec.guardduty)
SOURCES = REPO / ".build/collections/ansible_collections/cloudsec/guardduty/extensions/eda/plugins/event_source"
ADMIN, MEMBER, REGION = "123456789012", "111122223333", "us-east-1"


def source(name):
    return runpy.run_path(str(SOURCES / f"{name}.py"))


def lab_args(lab):
    creds = lab.credentials()
    return {"aws_access_key_id": creds["aws_access_key_id"], "aws_secret_access_key": creds["aws_secret_access_key"],
            "endpoint_url": lab.endpoint, "region": REGION}


def test_sqs_deletes_a_message_only_once_the_engine_took_it(demo):
    sqs = demo.client("sqs", ADMIN, REGION)
    url = sqs.create_queue(QueueName="findings")["QueueUrl"]
    finding = demo._call("GET", f"/_lab/guardduty?account={ADMIN}&region={REGION}")["findings"][0]
    body = eventbridge_event(finding_wire(demo, finding["Id"], ADMIN, REGION), ADMIN)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    sqs.send_message(QueueUrl=url, MessageBody="not json")
    main = source("sqs")["main"]

    async def scenario():
        engine = asyncio.Queue(maxsize=1)
        await engine.put("busy")                       # the engine has not taken its last event yet
        task = asyncio.ensure_future(main(engine, dict(lab_args(demo), queue_name="findings", wait_time_seconds=1,
                                                       visibility_timeout=2)))
        await asyncio.sleep(4)                         # received, held: the visibility is extended, nothing deleted
        held = demo.journal(service="sqs")
        assert [e for e in held if e["action"] == "ReceiveMessage"]
        assert [e for e in held if e["action"] == "ChangeMessageVisibilityBatch" and e["outcome"] == "ok"]
        assert not deleted_receipts(demo, 0)
        taken = [await engine.get()]
        taken.append(await asyncio.wait_for(engine.get(), 30))
        taken.append(await asyncio.wait_for(engine.get(), 30))
        for _ in range(50):
            if len(deleted_receipts(demo, 0)) == 2:
                break
            await asyncio.sleep(0.2)
        task.cancel()
        return taken

    taken = asyncio.run(scenario())
    assert taken[0] == "busy"
    assert taken[1]["body"]["detail"]["id"] == finding["Id"] and taken[1]["meta"]["MessageId"]
    assert taken[2]["body"] == "not json"
    assert len(deleted_receipts(demo, 0)) == 2
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                         "ApproximateNumberOfMessagesNotVisible"])
    assert attributes["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_sqs_batch_is_one_event_per_action_deleted_once_the_engine_took_it(demo):
    """batch_window: the findings that arrive together are one event naming each instance once; their messages
    stay hidden (visibility extended) while the engine is busy, and are deleted only once it took the events."""
    sqs = demo.client("sqs", ADMIN, REGION)
    url = sqs.create_queue(QueueName="findings")["QueueUrl"]
    held = demo._call("GET", f"/_lab/guardduty?account={ADMIN}&region={REGION}")["findings"]
    app = demo.instance("app-1")
    on_app = [f["Id"] for f in held if (f["Resource"].get("InstanceDetails") or {}).get("InstanceId") == app["id"]]
    bodies = [eventbridge_event(finding_wire(demo, i, ADMIN, REGION), ADMIN) for i in on_app + on_app[:1]]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": json.dumps(b)} for n, b in enumerate(bodies)])
    main = source("sqs")["main"]

    async def scenario():
        engine = asyncio.Queue(maxsize=1)
        await engine.put("busy")
        task = asyncio.ensure_future(main(engine, dict(lab_args(demo), queue_name="findings", wait_time_seconds=1,
                                                       visibility_timeout=2, batch_window=2)))
        await asyncio.sleep(4)
        assert not deleted_receipts(demo, 0)          # received, held, not deleted
        assert [e for e in demo.journal(action="ChangeMessageVisibilityBatch") if e["outcome"] == "ok"]
        taken = [await engine.get(), await asyncio.wait_for(engine.get(), 30)]
        for _ in range(50):
            if len(deleted_receipts(demo, 0)) == len(bodies):
                break
            await asyncio.sleep(0.2)
        task.cancel()
        return taken

    busy, event = asyncio.run(scenario())
    assert busy == "busy"
    assert event["body"]["action"] == "isolate" and event["body"]["id"] == on_app[0]
    assert [i["instance_id"] for i in event["body"]["instances"]] == [app["id"]]
    assert event["body"]["instances"][0]["finding_ids"] == on_app       # the duplicate delivery once
    assert len(deleted_receipts(demo, 0)) == len(bodies)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                         "ApproximateNumberOfMessagesNotVisible"])
    assert attributes["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_sqs_unknown_queue_fails_naming_it(demo):
    main = source("sqs")["main"]
    try:
        asyncio.run(main(asyncio.Queue(), dict(lab_args(demo), queue_name="no-such-queue")))
    except RuntimeError as exc:
        assert "no-such-queue" in str(exc) and "GetQueueUrl" in str(exc)
    else:
        raise AssertionError("the source read a queue that does not exist")


def started_poller(module, args):
    """What the source's main() sets up before its loop: (a pass over every account and region, the engine's queue)."""
    options = module["event_sources"].poller_options(args, {})
    ledger = module["event_sources"].FindingLedger(options["state_file"], options["overlap_ms"]).load()
    poller = module["Poller"](options)
    targets = poller.targets()
    engine = asyncio.Queue()
    return (lambda: module["poll_once"](engine, poller, ledger, targets, options)), engine


def test_poller_emits_new_and_updated_findings_once_across_restarts(demo, tmp_path):
    module = source("guardduty_findings")
    state_file = tmp_path / "state" / "findings.json"
    args = dict(lab_args(demo), regions=[REGION], min_severity=4, updated_since="0s", state_file=str(state_file))
    worker = demo.instance("worker-1")

    def poll(times=1):
        async def run():
            poll_once, engine = started_poller(module, args)
            for _ in range(times):
                await poll_once()
            return [engine.get_nowait() for _ in range(engine.qsize())]
        return asyncio.run(run())

    assert poll() == []                                                   # the scenario's findings predate it
    high = demo.detect_finding(MEMBER, REGION, {"type": "Backdoor:EC2/C&CActivity.B", "severity": 8.0,
                                                "instance_id": worker["id"]})
    demo.detect_finding(MEMBER, REGION, {"type": "UnauthorizedAccess:EC2/SSHBruteForce", "severity": 2.0,
                                         "instance_id": worker["id"]})   # below min_severity
    events = poll(times=2)
    assert [e["body"]["detail"]["id"] for e in events] == [high["Id"]]
    detail = events[0]["body"]["detail"]
    assert detail["resource"]["instanceDetails"]["instanceId"] == worker["id"] and detail["accountId"] == MEMBER
    assert events[0]["body"]["detail-type"] == "GuardDuty Finding"
    assert os.stat(state_file).st_mode & 0o777 == 0o600
    assert poll() == []                                                   # a restart: nothing again
    demo.advance_clock(5)
    demo.recur_finding(high["Id"])                                        # updated: emitted once more
    again = poll(times=2)
    assert [e["body"]["detail"]["id"] for e in again] == [high["Id"]]
    assert again[0]["body"]["detail"]["service"]["count"] == 2



def test_poller_reading_a_member_through_its_role_outlives_the_role_s_session(demo, tmp_path):
    """The source runs for days; the role's credentials end after an hour (the lab refuses them then, as AWS
    does: ExpiredTokenException). The poller assumes the role again and the next finding is still emitted."""
    module = source("guardduty_findings")
    args = dict(lab_args(demo), regions=[REGION], min_severity=4, updated_since="0s", accounts=[MEMBER],
                use_current_credentials=False, state_file=str(tmp_path / "findings.json"))
    worker = demo.instance("worker-1")
    mark = demo.mark()

    async def run():
        poll_once, engine = started_poller(module, args)
        first = await poll_once()
        demo.advance_clock(3600 + 60)  # past the session's Expiration (AssumeRole's default 1 hour)
        found = demo.detect_finding(MEMBER, REGION, {"type": "Backdoor:EC2/C&CActivity.B", "severity": 8.0,
                                                     "instance_id": worker["id"]})
        second = await poll_once()
        return first, second, found, [engine.get_nowait() for _ in range(engine.qsize())]

    first, second, found, events = asyncio.run(run())
    assert first == 0 and second == 1 and [e["body"]["detail"]["id"] for e in events] == [found["Id"]]
    journal = demo.journal(mark)
    assert [e["outcome"] for e in journal if e["action"] == "AssumeRole"] == ["ok", "ok"]  # once at start, once renewed
    refused = [e for e in journal if e.get("outcome") == "ExpiredTokenException"]
    assert len(refused) == 1 and refused[0]["service"] == "guardduty"  # one refusal, then the renewed session
