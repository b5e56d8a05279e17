"""The incident store: paths, modes, atomic writes, one section per kind of record, S3 keys."""

import io
import json
import os
import stat

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import incident_store as store_lib

ACCOUNT, REGION, INSTANCE = "123456789012", "us-east-1", "i-0123456789abcdef0"


def test_root_from_option_then_environment_then_home():
    assert store_lib.resolve_root("/srv/store", {store_lib.STORE_ENV: "/env"}) == "/srv/store"
    assert store_lib.resolve_root(None, {store_lib.STORE_ENV: "/env"}) == "/env"
    assert store_lib.resolve_root(None, {}) == os.path.expanduser("~/.cloudsec-guardduty")
    assert store_lib.resolve_root("s3://bucket/prefix", {}) == "s3://bucket/prefix"
    with pytest.raises(store_lib.StoreError, match="no bucket"):
        store_lib.resolve_root("s3:///prefix", {})


@pytest.mark.parametrize("account, region, instance", [
    ("../../etc", REGION, INSTANCE), (ACCOUNT, "us-east-1/..", INSTANCE), (ACCOUNT, REGION, "i-../../x"), ("", REGION, INSTANCE)])
def test_record_names_cannot_leave_the_store(account, region, instance):
    with pytest.raises(store_lib.StoreError, match="cannot name a record"):
        store_lib.record_name(account, region, instance)


def test_sections_are_kept_side_by_side_with_private_modes(tmp_path):
    root = tmp_path / "store"
    store = store_lib.open_store(str(root))
    assert store.load(ACCOUNT, REGION, INSTANCE) == {}
    store.put(ACCOUNT, REGION, INSTANCE, "network", {"enis": {"eni-1": {"groups": ["sg-1"], "vpc_id": "vpc-1"}}})
    store.put(ACCOUNT, REGION, INSTANCE, "credentials", {"p": "arn:x"})
    path = root / "records" / ACCOUNT / REGION / f"{INSTANCE}.json"
    document = json.loads(path.read_text())
    assert document["instance_id"] == INSTANCE and set(document["records"]) == {"network", "credentials"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (root, root / "records", root / "records" / ACCOUNT, path.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    store.drop(ACCOUNT, REGION, INSTANCE, "network")
    assert store.section(ACCOUNT, REGION, INSTANCE, "network") is None
    assert store.section(ACCOUNT, REGION, INSTANCE, "credentials") == {"p": "arn:x"}
    store.drop(ACCOUNT, REGION, INSTANCE, "credentials")
    assert not path.exists()


def test_a_subnet_has_its_own_document_which_no_instance_document_can_stand_for(tmp_path):
    subnet = "subnet-0123456789abcdef0"
    store = store_lib.open_store(str(tmp_path))
    store.put(ACCOUNT, REGION, subnet, "nacl", "acl-0123456789abcdef0")
    path = tmp_path / "records" / ACCOUNT / REGION / f"{subnet}.json"
    document = json.loads(path.read_text())
    assert document["subnet_id"] == subnet and "instance_id" not in document
    assert document["records"] == {"nacl": "acl-0123456789abcdef0"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # an instance's document copied over the subnet's is refused, and the other way round
    store.put(ACCOUNT, REGION, INSTANCE, "eip", [["eipalloc-1", "eni-1", "10.0.0.1"]])
    path.write_text((tmp_path / "records" / ACCOUNT / REGION / f"{INSTANCE}.json").read_text())
    with pytest.raises(store_lib.StoreError, match="holds subnet_id None"):
        store.section(ACCOUNT, REGION, subnet, "nacl")
    with pytest.raises(store_lib.StoreError, match="cannot name a record"):
        store_lib.record_name(ACCOUNT, REGION, "subnet-../../x")


def test_an_unreadable_or_misplaced_document_is_an_error(tmp_path):
    store = store_lib.open_store(str(tmp_path))
    store.put(ACCOUNT, REGION, INSTANCE, "detach", {"a": None, "t": [], "e": []})
    path = tmp_path / "records" / ACCOUNT / REGION / f"{INSTANCE}.json"
    path.write_text(json.dumps({"instance_id": "i-0fedcba9876543210", "records": {}}))
    with pytest.raises(store_lib.StoreError, match="unreadable record"):
        store.load(ACCOUNT, REGION, INSTANCE)
    path.write_text("{")
    with pytest.raises(store_lib.StoreError, match=str(path)):
        store.load(ACCOUNT, REGION, INSTANCE)


class FakeS3:
    """Records the calls; answers like S3 (NoSuchKey for an absent key)."""

    def __init__(self):
        self.objects, self.puts = {}, []

    def get_object(self, Bucket, Key):
        if (Bucket, Key) not in self.objects:
            error = Exception("no such key")
            error.response = {"Error": {"Code": "NoSuchKey"}}
            raise error
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}

    def put_object(self, Bucket, Key, Body, **kwargs):
        self.puts.append(kwargs)
        self.objects[(Bucket, Key)] = Body

    def delete_object(self, Bucket, Key):
        self.objects.pop((Bucket, Key), None)


def test_s3_keys_sit_under_the_prefix_and_are_encrypted():
    s3 = FakeS3()
    store = store_lib.open_store("s3://security-ir/guardduty/", lambda: s3)
    store.put(ACCOUNT, REGION, INSTANCE, "eip", [["eipalloc-1", "eni-1", "10.0.0.1"]])
    assert list(s3.objects) == [("security-ir", f"guardduty/records/{ACCOUNT}/{REGION}/{INSTANCE}.json")]
    assert s3.puts[0]["ServerSideEncryption"] == "AES256"
    assert store.section(ACCOUNT, REGION, INSTANCE, "eip") == [["eipalloc-1", "eni-1", "10.0.0.1"]]
    store.drop(ACCOUNT, REGION, INSTANCE, "eip")
    assert s3.objects == {}


def test_instances_of_one_batch_write_their_records_at_once(tmp_path):
    # A batch's instances are recorded by a pool of threads: the first writes of a new account/region make its
    # directories at the same moment (this once failed with "File exists" and left the instances on the network).
    import threading
    store = store_lib.open_store(str(tmp_path / "store"))
    ids = [f"i-{n:017x}" for n in range(16)]
    barrier, errors = threading.Barrier(len(ids)), []

    def write(instance_id):
        barrier.wait()
        try:
            store.put("123456789012", "us-east-1", instance_id, "network", {"eni-1": ["sg-1"]})
        except store_lib.StoreError as exc:
            errors.append(str(exc))
    threads = [threading.Thread(target=write, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(store.section("123456789012", "us-east-1", i, "network") == {"eni-1": ["sg-1"]} for i in ids)
