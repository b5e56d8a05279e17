"""S3 conditional writes are atomic: of concurrent PutObject calls with If-None-Match: * on one key, one
succeeds and the others get 412 PreconditionFailed; the same for If-Match on PutObject and DeleteObject.

AWS: "If multiple conditional writes occur for the same object name, the first write operation to finish
succeeds" and the others fail with 412 Precondition Failed (or 409 ConditionalRequestConflict), Amazon S3
User Guide, "How to prevent object overwrites with conditional writes",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html; botocore's S3 model,
PutObjectRequest.IfNoneMatch / IfMatch and DeleteObjectRequest.IfMatch.
moto 5.2 honours the headers but checks them, then parses the body, then stores the object, with nothing
holding other request threads off in between: two concurrent creates of one key can both succeed, which
would let two runs hold the same operation lease (plugins/module_utils/instance_lock.py).
"""

import threading

from moto.s3.responses import S3Response

_original_put_object = S3Response.put_object
_original_delete_object = S3Response.delete_object
# One lock for every object write and delete of the lab: the condition check and the write, as one step.
_writes_lock = threading.RLock()


def _put_object(self, *args, **kwargs):
    with _writes_lock:
        return _original_put_object(self, *args, **kwargs)


def _delete_object(self, *args, **kwargs):
    with _writes_lock:
        return _original_delete_object(self, *args, **kwargs)


def apply():
    S3Response.put_object = _put_object
    S3Response.delete_object = _delete_object
