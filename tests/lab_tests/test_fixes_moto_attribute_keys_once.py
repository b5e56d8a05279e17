"""The lab's own cost per answer, which lands on the controller's cores where AWS's never does: moto's serializer
worked out again, for every member of every object it writes, the attribute names to read it under
(tests/lab/fixes/moto_attribute_keys_once.py). They are now worked out once per kind of object and member, and are
the same names."""

import boto3
from moto.core import serialize
from moto.core.model import ServiceModel
from moto.ec2.models import ec2_backends

from tests.lab import fixes
from tests.lab.fixes import moto_attribute_keys_once

ACCOUNT, REGION = "123456789012", "eu-west-3"


def _instance_shape():
    loader = boto3.session.Session()._session.get_component("data_loader")
    model = ServiceModel(loader.load_service_model("ec2", "service-2"), "ec2")
    reservations = model.operation_model("DescribeInstances").output_shape.members["Reservations"]
    return reservations.member.members["Instances"].member


def test_the_names_tried_for_a_member_are_the_same_and_worked_out_once_per_class_and_member(monkeypatch):
    fixes.apply_all()
    backend = ec2_backends[ACCOUNT][REGION]
    image = next(iter(backend.amis.values())).id
    instances = backend.run_instances(image, 6, None, [], instance_type="t3.micro", is_instance_type_default=False,
                                      region_name=REGION).instances
    shape = _instance_shape()
    picker = serialize.XFormedAttributePicker()

    def names(instance, member_name, member):
        member.parent = shape  # as moto's serializer sets it before it reads a structure's members
        context = serialize.AttributePickerContext(obj=instance, key=member_name, shape=member)
        return list(picker.get_possible_keys(context))

    with monkeypatch.context() as unfixed:  # moto's own, host by host
        for picker_class in (serialize.AttributePicker, serialize.XFormedAttributePicker):
            unfixed.setattr(picker_class, "get_possible_keys", picker_class.get_possible_keys.original)
        expected = {(i.id, name): names(i, name, member) for i in instances for name, member in shape.members.items()}
    assert expected[(instances[0].id, "InstanceId")][:2] == ["InstanceId", "instance_id"]
    assert "id" in expected[(instances[0].id, "InstanceId")]  # the class prefix alias: Instance.id

    moto_attribute_keys_once._keys.clear()
    got = {(i.id, name): names(i, name, member) for i in instances for name, member in shape.members.items()}
    assert got == expected
    # once per member and the picker's own method, whatever the number of instances
    assert len(moto_attribute_keys_once._keys) == 2 * len(shape.members)
    assert serialize.XFormedAttributePicker().get_possible_keys(serialize.AttributePickerContext(
        obj={"GroupId": "sg-1"}, key="GroupId", shape=shape.members["SecurityGroups"].member.members["GroupId"])) \
        == ("GroupId", "group_id", "groupId", "group_id")
