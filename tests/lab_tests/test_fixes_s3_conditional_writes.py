"""S3 conditional writes, as AWS answers them: If-None-Match: * creates a key only if absent, If-Match writes
or deletes only the version named, and concurrent conditional writes of one key let exactly one succeed.
tests/lab/fixes/s3_conditional_writes.py; the operation leases of plugins/module_utils/instance_lock.py."""

import threading
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.s3.models import S3Backend
from werkzeug.serving import make_server

from tests.lab.server import Lab, QuietRequestHandler


def code(err):
    return err.value.response["Error"]["Code"]


def test_create_only_if_absent_and_write_or_delete_only_the_version_named(lab):
    lab.reset("empty")
    s3 = lab.client("s3")
    s3.create_bucket(Bucket="incident-store")
    first = s3.put_object(Bucket="incident-store", Key="locks/a.lock", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket="incident-store", Key="locks/a.lock", Body=b"2", IfNoneMatch="*")
    assert code(err) == "PreconditionFailed" and err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    second = s3.put_object(Bucket="incident-store", Key="locks/a.lock", Body=b"3", IfMatch=first["ETag"])
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket="incident-store", Key="locks/a.lock", Body=b"4", IfMatch=first["ETag"])
    assert code(err) == "PreconditionFailed"
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket="incident-store", Key="locks/a.lock", IfMatch=first["ETag"])
    assert code(err) == "PreconditionFailed"
    assert s3.get_object(Bucket="incident-store", Key="locks/a.lock")["Body"].read() == b"3"
    s3.delete_object(Bucket="incident-store", Key="locks/a.lock", IfMatch=second["ETag"])
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="incident-store", Key="locks/a.lock")
    assert code(err) == "NoSuchKey"


@pytest.fixture
def lab_in_process():
    """A lab in this process, so a request's timing can be widened."""
    lab = Lab()
    server = make_server("127.0.0.1", 0, lab, threaded=True, request_handler=QuietRequestHandler)
    lab.endpoint = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lab.reset("empty")
    yield lab
    server.shutdown()


def test_of_concurrent_creates_of_one_key_exactly_one_succeeds(lab_in_process, monkeypatch):
    slow_put = S3Backend.put_object

    def put_object(self, *args, **kwargs):  # a thread switch between the condition check and the write
        time.sleep(0.05)
        return slow_put(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", put_object)
    clients = [boto3.client("s3", region_name="us-east-1", endpoint_url=lab_in_process.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing") for _ in range(3)]
    clients[0].create_bucket(Bucket="incident-store")
    barrier, outcomes = threading.Barrier(3), []

    def create(client, body):
        barrier.wait()
        try:
            client.put_object(Bucket="incident-store", Key="locks/i-1.lock", Body=body, IfNoneMatch="*")
            outcomes.append("created")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=create, args=(c, str(n).encode())) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["PreconditionFailed", "PreconditionFailed", "created"]
