# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""cloudsec.guardduty.sqs: an ansible-rulebook event source reading an Amazon SQS queue.

For the GuardDuty -> EventBridge -> SQS path (docs/eda.md). Each message becomes one event,
{"body": <the message body, parsed when it is JSON>, "meta": {"MessageId": ...}}, the shape
ansible.eda.aws_sqs_queue gives, so `event.body.detail` is the GuardDuty finding.

- Long polling: ReceiveMessage waits up to `wait_time_seconds` (default 20, the most SQS allows).
- A message is deleted only once ansible-rulebook took its event (the engine's queue accepted it).
  Until then it stays invisible for `visibility_timeout` seconds (default 120), extended while the
  engine is busy; if this process dies first, SQS delivers the message again.
- Credentials and endpoint as amazon.aws reads them: access_key (aws_access_key_id, aws_access_key),
  secret_key (aws_secret_access_key, aws_secret_key), session_token (aws_session_token), profile
  (aws_profile), region (aws_region), endpoint_url (aws_endpoint_url), else the environment variables
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_REGION, AWS_URL, else
  boto3's default chain (instance role...).

Arguments:
  queue_name (or name) | queue_url   the queue, by name (in the credentials' account) or by URL
  region                             the queue's region
  wait_time_seconds                  long polling, 0-20 (default 20; `delay_seconds` is accepted as
                                     ansible.eda.aws_sqs_queue names it)
  max_messages                       messages a ReceiveMessage returns, 1-10 (default 10)
  visibility_timeout                 seconds a received message stays hidden before it is taken,
                                     extended while ansible-rulebook is busy (default 120)

Example:
  sources:
    - cloudsec.guardduty.sqs:
        queue_name: guardduty-findings
        region: us-east-1

Permissions: sqs:GetQueueUrl, sqs:ReceiveMessage, sqs:ChangeMessageVisibility, sqs:DeleteMessage
on the queue (docs/iam/eda-sqs.json).
"""

import asyncio
import logging
import os
import sys
import time


def _collection_root():
    """The directory holding ansible_collections/, from this file's place in the collection
    (<root>/ansible_collections/cloudsec/guardduty/extensions/eda/plugins/event_source/sqs.py)."""
    path = os.path.abspath(globals().get("__file__") or sys.argv[0])
    for _level in range(8):
        path = os.path.dirname(path)
    return path


try:  # ansible-rulebook runs this file by its path: the collection's own code is imported from its root
    from ansible_collections.cloudsec.guardduty.plugins.module_utils import event_sources
except ImportError:
    sys.path.insert(0, _collection_root())
    from ansible_collections.cloudsec.guardduty.plugins.module_utils import event_sources

logger = logging.getLogger("cloudsec.guardduty.sqs")


def in_thread(function, *args, **kwargs):
    return event_sources.in_thread("cloudsec.guardduty.sqs", function, *args, **kwargs)


def sqs_client(options):
    import boto3
    from botocore.config import Config

    session = boto3.Session(region_name=options["aws"]["region"], **event_sources.session_arguments(options["aws"]))
    # Long polling holds a connection up to 20 s: the read timeout must exceed it.
    config = Config(retries={"mode": "standard", "max_attempts": 10},
                    read_timeout=options["wait_time_seconds"] + 40, connect_timeout=10)
    return session.client("sqs", endpoint_url=options["aws"]["endpoint_url"], config=config)


async def queue_url(client, options):
    if options["queue_url"]:
        return options["queue_url"]
    try:
        answer = await in_thread(client.get_queue_url, QueueName=options["queue_name"])
    except Exception as exc:
        raise RuntimeError(f"cloudsec.guardduty.sqs: queue {options['queue_name']!r} in "
                           f"{options['aws']['region']}: GetQueueUrl failed: {exc}") from None
    return answer["QueueUrl"]


async def hand_over(queue, event, client, url, messages, visibility_timeout):
    """Put the event on ansible-rulebook's queue, keeping its messages hidden while the engine is busy."""
    put = asyncio.ensure_future(queue.put(event))
    while visibility_timeout:
        done, _pending = await asyncio.wait({put}, timeout=visibility_timeout / 2)
        if done:
            break
        for start in range(0, len(messages), event_sources.SQS_MAX_MESSAGES):
            await in_thread(client.change_message_visibility_batch, QueueUrl=url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": visibility_timeout}
                for n, m in enumerate(messages[start:start + event_sources.SQS_MAX_MESSAGES])])
    await put


async def delete(client, url, messages):
    """Delete the messages whose events the engine took, ten per call; one that fails is received again."""
    for start in range(0, len(messages), event_sources.SQS_MAX_MESSAGES):
        chunk = messages[start:start + event_sources.SQS_MAX_MESSAGES]
        try:
            answer = await in_thread(client.delete_message_batch, QueueUrl=url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)])
            failed = [(chunk[int(f["Id"])].get("MessageId"), f.get("Code")) for f in answer.get("Failed") or []]
        except Exception as exc:  # the events are in the engine already: SQS will deliver them again
            failed = [(m.get("MessageId"), str(exc)) for m in chunk]
        for message_id, cause in failed:
            logger.warning("cloudsec.guardduty.sqs: DeleteMessage of %s on %s failed (%s): it will be received "
                           "again", message_id, url, cause)


async def receive(client, url, options, wait, count):
    try:
        answer = await in_thread(client.receive_message, QueueUrl=url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
                                 VisibilityTimeout=options["visibility_timeout"])
    except Exception as exc:
        raise RuntimeError(f"cloudsec.guardduty.sqs: ReceiveMessage on {url} failed: {exc}") from None
    return answer.get("Messages") or []


async def collect(client, url, options, first):
    """The batch that `first` opens: what keeps arriving within batch_window seconds, up to batch_size messages.
    While messages keep coming each receive returns at once; a receive that waited a second (or the rest of the
    window) for nothing closes the batch early: a lone finding waits a second, not the whole window."""
    batch, deadline = list(first), time.monotonic() + options["batch"]["window"]
    while len(batch) < options["batch"]["size"]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        more = await receive(client, url, options, min(1, int(remaining)),
                             min(event_sources.SQS_MAX_MESSAGES, options["batch"]["size"] - len(batch)))
        if not more:
            break
        batch.extend(more)
    return batch


async def main(queue, args):
    options = event_sources.sqs_options(args, os.environ)
    client = await in_thread(sqs_client, options)
    url = await queue_url(client, options)
    planner = event_sources.BatchPlanner(options["batch"])
    logger.info("cloudsec.guardduty.sqs: reading %s", url)
    while True:
        messages = await receive(client, url, options, options["wait_time_seconds"], options["max_messages"])
        if not messages:
            continue
        if not options["batch"]["window"]:      # each message its own event, deleted once the engine took it
            for message in messages:
                await hand_over(queue, event_sources.sqs_event(message), client, url, [message],
                                options["visibility_timeout"])
                await delete(client, url, [message])
            continue
        batch = await collect(client, url, options, messages)
        for event in planner.plan(batch, time.monotonic()):
            await hand_over(queue, event, client, url, batch, options["visibility_timeout"])
        await delete(client, url, batch)
