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


async def hand_over(queue, event, client, url, message, visibility_timeout):
    """Put the event on ansible-rulebook's queue, keeping the message hidden while the engine is busy."""
    put = asyncio.ensure_future(queue.put(event))
    while visibility_timeout:
        done, _pending = await asyncio.wait({put}, timeout=visibility_timeout / 2)
        if done:
            break
        await in_thread(client.change_message_visibility, QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=visibility_timeout)
    await put


async def main(queue, args):
    options = event_sources.sqs_options(args, os.environ)
    client = await in_thread(sqs_client, options)
    url = await queue_url(client, options)
    receive = {"QueueUrl": url, "MaxNumberOfMessages": options["max_messages"],
               "WaitTimeSeconds": options["wait_time_seconds"]}
    receive["VisibilityTimeout"] = options["visibility_timeout"]
    logger.info("cloudsec.guardduty.sqs: reading %s", url)
    while True:
        try:
            answer = await in_thread(client.receive_message, **receive)
        except Exception as exc:
            raise RuntimeError(f"cloudsec.guardduty.sqs: ReceiveMessage on {url} failed: {exc}") from None
        for message in answer.get("Messages") or []:
            await hand_over(queue, event_sources.sqs_event(message), client, url, message,
                            options["visibility_timeout"])
            try:
                await in_thread(client.delete_message, QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            except Exception as exc:  # the event is in the engine already: SQS will deliver it again
                logger.warning("cloudsec.guardduty.sqs: DeleteMessage of %s on %s failed (%s): it will be "
                               "received again", message.get("MessageId"), url, exc)
