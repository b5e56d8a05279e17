"""EC2 network interfaces and console: security-group sets as AWS keeps them, GetConsoleScreenshot."""

import base64
import struct
import zlib

from moto.core.responses import ActionResult
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ec2.models.instances import Instance
from moto.ec2.responses.general import General

def _eni_group_set(self):
    # AWS: an ENI's security groups are exactly the set last given to it (at launch, by
    # CreateNetworkInterface or ModifyNetworkInterfaceAttribute). moto 5.2 also unions in the
    # instance's launch-time groups, so a replaced group set could never lose them.
    return self._group_set


def _instance_groups_get(self):
    # AWS: DescribeInstances' SecurityGroups for a VPC instance are the groups of its attached
    # network interfaces, so it always agrees with DescribeNetworkInterfaces.
    nics = getattr(self, "nics", None)
    if not nics:
        return list(getattr(self, "_lab_launch_groups", None) or [])
    groups = []
    for index in sorted(nics):
        for group in nics[index]._group_set:
            if group not in groups:
                groups.append(group)
    return groups


def _instance_groups_set(self, value):
    # AWS: ModifyInstanceAttribute(Groups=...) replaces the primary network interface's groups.
    nics = getattr(self, "nics", None)
    if nics and 0 in nics:
        nics[0]._group_set = list(value or [])
    else:
        self._lab_launch_groups = list(value or [])


def _png(width=64, height=48, rgb=(32, 32, 32)):
    """A small valid PNG: a blank console, as an instance with no display would show."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


CONSOLE_SCREENSHOT_PNG = _png()


def _get_console_screenshot(self):
    # AWS: GetConsoleScreenshot returns a base64 JPG/PNG of the instance's console; moto lacks it.
    instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
    return ActionResult(
        {"InstanceId": instance.id, "ImageData": base64.b64encode(CONSOLE_SCREENSHOT_PNG).decode()}
    )


def apply():
    NetworkInterface.group_set = property(_eni_group_set)
    Instance.security_groups = property(_instance_groups_get, _instance_groups_set)
    General.get_console_screenshot = _get_console_screenshot
