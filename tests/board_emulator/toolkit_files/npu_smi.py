"""Stand-in ``npu-smi`` of the board emulator (test double): ``npu-smi info`` prints one chip's table."""

import json
import os
import sys

TOOLKIT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def main(argv):
    if argv[:1] != ["info"]:
        print("Usage: npu-smi info")
        return 1
    with open(os.path.join(TOOLKIT, "emulator.json")) as f:
        soc = json.load(f)["soc_version"]
    name = soc[len("Ascend") :]
    bar = "+" + "-" * 31 + "+" + "-" * 17 + "+" + "-" * 54 + "+"
    print(bar)
    print("| npu-smi 23.0.rc3 (board emulator)               Version: 23.0.rc3" + " " * 38 + "|")
    print(bar)
    print(
        "| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |"
    )
    print(
        "| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |"
    )
    print(bar.replace("-", "="))
    print(f"| 0       {name:<22}| OK              | 12.8         45                0    / 0              |")
    print(
        "| 0       0                     | NA              | 0            1890 / 7545                             |"
    )
    print(bar.replace("-", "="))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
