"""The lab's own cost per answer, which lands on the controller's cores where AWS's never does: moto read every
resource's tags with DescribeTags' filter over every tag of the account and region (tests/lab/fixes/
moto_tags_by_resource.py). A resource's tags are now read from its own entry, with the same answer: DescribeTags'
entries for that resource id, in the order they were set."""

from moto.ec2.models import ec2_backends
from moto.ec2.models.tags import TagBackend

from tests.lab import fixes
from tests.lab.fixes import moto_tags_by_resource

ACCOUNT, REGION = "123456789012", "eu-west-3"


def test_a_resource_reads_its_own_tags_with_describe_tags_answer(monkeypatch):
    fixes.apply_all()
    backend = ec2_backends[ACCOUNT][REGION]
    vpc = backend.create_vpc("10.9.0.0/16")
    subnet = backend.create_subnet(vpc.id, "10.9.1.0/24", availability_zone=f"{REGION}a")
    groups = [backend.create_security_group(f"tags-{n}", "tags", vpc_id=vpc.id) for n in range(30)]
    eni = backend.create_network_interface(subnet, [], group_ids=[groups[0].id])
    for number, group in enumerate(groups):
        backend.create_tags([group.id], {"Name": f"tags-{number}", "Team": "ir", "Z": str(number)})
    backend.create_tags([eni.id], {"b": "2", "a": "1"})
    untagged = backend.create_security_group("tags-none", "tags", vpc_id=vpc.id)

    expected = {r.id: TagBackend.describe_tags(backend, filters={"resource-id": [r.id]})
                for r in groups + [eni, untagged]}
    assert [t["key"] for t in expected[eni.id]] == ["b", "a"]
    assert expected[groups[7].id][0] == {"resource_id": groups[7].id, "key": "Name", "value": "tags-7",
                                         "resource_type": "security-group"}

    def scan(*_args, **_kwargs):
        raise AssertionError("a resource's tags were read by filtering every tag of the region")

    monkeypatch.setattr(TagBackend, "describe_tags", scan)
    assert eni.get_tags.__func__ is moto_tags_by_resource.get_tags
    for resource in groups + [eni, untagged]:
        assert resource.get_tags() == expected[resource.id]
    assert untagged.get_tags() == [] and eni.tag_set == expected[eni.id]
    assert groups[3].get_filter_value("tag:Name") == "tags-3"
