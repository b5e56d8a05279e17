"""The lab's own cost per answer, which lands on the controller's cores where AWS's never does: botocore made a new
Shape, and worked out a structure's members again, every time a reference of the model was resolved, for every
structure of every answer moto writes (tests/lab/fixes/botocore_shapes_once.py). A reference now resolves to the
same Shape each time, and what the shapes say is unchanged."""

import boto3
from botocore import model
from moto.core.model import ServiceModel as MotoServiceModel

from tests.lab import fixes
from tests.lab.fixes import botocore_shapes_once


def _ec2_model(service_model_class=model.ServiceModel):
    loader = boto3.session.Session()._session.get_component("data_loader")
    return service_model_class(loader.load_service_model("ec2", "service-2"), "ec2")


def _shape_view(shape, depth=3):
    """What a shape says, as plain data, `depth` structures deep."""
    view = {"name": shape.name, "type": shape.type_name, "serialization": dict(shape.serialization)}
    if depth and shape.type_name == "structure":
        view["members"] = {name: _shape_view(member, depth - 1) for name, member in shape.members.items()}
    elif depth and shape.type_name == "list":
        view["member"] = _shape_view(shape.member, depth - 1)
    return view


def test_a_reference_resolves_to_the_same_shape_and_says_the_same(monkeypatch):
    output = "DescribeInstancesResult"
    with monkeypatch.context() as unfixed:  # botocore's own resolver, whether or not the fixes are applied already
        unfixed.setattr(model.ShapeResolver, "resolve_shape_ref", botocore_shapes_once._resolve_shape_ref)
        before = _shape_view(_ec2_model().operation_model("DescribeInstances").output_shape, depth=6)
    fixes.apply_all()
    assert model.ShapeResolver.resolve_shape_ref is botocore_shapes_once.resolve_shape_ref

    ec2 = _ec2_model(MotoServiceModel)  # the class moto's serializer resolves through
    operation = ec2.operation_model("DescribeInstances")
    assert operation.output_shape is operation.output_shape
    assert _shape_view(operation.output_shape, depth=6) == before and before["name"] == output

    reservations = operation.output_shape.members["Reservations"]
    instance = reservations.member.members["Instances"].member
    assert reservations is operation.output_shape.members["Reservations"]
    assert instance is ec2.operation_model("DescribeInstances").output_shape.members["Reservations"].member \
        .members["Instances"].member
    # the members of a structure are worked out once, however many instances an answer holds
    built = []
    resolve = botocore_shapes_once._resolve_shape_ref
    monkeypatch.setattr(botocore_shapes_once, "_resolve_shape_ref", lambda *args: built.append(1) or resolve(*args))
    for _instance in range(50):
        assert instance.members["SecurityGroups"].member.members["GroupId"].serialization["name"] == "groupId"
    assert built == []

    # one shape name reached through two references keeps each reference's own traits (locationName)
    assert instance.members["InstanceId"].name == instance.members["ImageId"].name == "String"
    assert instance.members["InstanceId"].serialization["name"] == "instanceId"
    assert instance.members["ImageId"].serialization["name"] == "imageId"
    assert instance.members["InstanceId"] is not instance.members["ImageId"]
