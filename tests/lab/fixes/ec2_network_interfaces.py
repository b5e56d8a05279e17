"""EC2 network interfaces and console: security-group sets as AWS keeps them, GetConsoleScreenshot."""

import base64
import struct

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


def _jpeg(width=64, height=48, gray=32):
    """A small valid baseline JPEG of one flat gray: a blank console, as an instance with no display shows.

    Greyscale, quantization all 1s, and two tiny Huffman tables: each 8x8 block is one DC value and an
    end-of-block, so the first block carries the level (DC category 10) and every other one a zero difference.
    """
    def segment(marker, data):
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(data) + 2) + data

    dqt = b"\x00" + b"\x01" * 64
    sof = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    dc = b"\x00" + bytes([1, 1] + [0] * 14) + bytes([0, 10])  # "0" -> category 0, "10" -> category 10
    ac = b"\x10" + bytes([1] + [0] * 15) + bytes([0])        # "0" -> end of block
    sos = b"\x01\x01\x00\x00\x3f\x00"
    level = (gray - 128) * 8                                 # DC of a flat block, quantized by 1
    bits = "10" + format(level + 1023 if level < 0 else level, "010b") + "0"
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    bits += "00" * (blocks - 1)
    bits += "1" * (-len(bits) % 8)
    scan = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)).replace(b"\xff", b"\xff\x00")
    return (b"\xff\xd8" + segment(0xDB, dqt) + segment(0xC0, sof) + segment(0xC4, dc) + segment(0xC4, ac)
            + segment(0xDA, sos) + scan + b"\xff\xd9")


# AWS: GetConsoleScreenshot "Retrieve a JPG-format screenshot of a running instance" (EC2 API reference,
# GetConsoleScreenshot); ImageData is the base64 of that JPG.
CONSOLE_SCREENSHOT_JPG = _jpeg()


def _get_console_screenshot(self):
    # AWS: GetConsoleScreenshot returns a base64 JPG of the instance's console; moto lacks it.
    instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
    return ActionResult(
        {"InstanceId": instance.id, "ImageData": base64.b64encode(CONSOLE_SCREENSHOT_JPG).decode()}
    )


def apply():
    NetworkInterface.group_set = property(_eni_group_set)
    Instance.security_groups = property(_instance_groups_get, _instance_groups_set)
    General.get_console_screenshot = _get_console_screenshot
