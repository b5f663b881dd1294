"""Reading what PowerShell writes: encodings, enums, shapes, and every refusal."""

from __future__ import annotations

import ast
import json
import uuid
from pathlib import Path

import pytest

from hvweb.inventory.importers import document, enums, psjson
from hvweb.inventory.importers.document import (
    MAX_IMPORT_BYTES,
    ImportRefused,
    hyperv_version,
    parse,
)

FIXTURES = Path(__file__).parent / "fixtures" / "hyperv"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def refused(data: bytes) -> list[tuple[str, str, str]]:
    with pytest.raises(ImportRefused) as caught:
        parse(data)
    return [(p.path, p.rule, p.message) for p in caught.value.problems]


def doc(name: str = "ps7-enums-as-strings.json") -> dict:
    return json.loads(document.decode(fixture(name)))


def encode(d: dict) -> bytes:
    return json.dumps(d).encode()


# --- The fixtures, as PowerShell writes them ---------------------------------------


def test_a_51_export_in_utf16_with_numbers_and_dates_is_read_by_name():
    data = fixture("ps51-numbers-utf16.json")
    assert data[:2] == b"\xff\xfe"  # Out-File's UTF-16 LE byte-order mark
    text = data[2:].decode("utf-16-le")
    assert '"State":  2,' in text and "\r\n" in text
    assert '"\\/Date(1700000000000)\\/"' in text
    cluster = parse(data)
    assert cluster.name == "CLU-EAST"
    assert cluster.hyperv_id == uuid.UUID("5b1e0c2d-7a44-4f7e-8d1e-0000000e0001")
    assert cluster.exported_at.isoformat() == "2023-11-14T22:13:20+00:00"
    vms = {vm.name: vm for _, vm in cluster.vms()}
    assert vms["east-web-1"].power_state == "running"
    assert vms["east-batch-1"].power_state == "off"
    assert vms["east-report-1"].power_state == "saved"
    assert vms["east-app-1"].automatic_start_action == "start_if_running"
    assert vms["east-db-1"].memory_mib == 8192 and vms["east-db-1"].vcpus == 4
    assert [d.csv for d in vms["east-db-1"].disks] == ["Cluster Disk 2"] * 2
    assert vms["east-web-1"].adapters[0].mac_address == "00-15-5D-0A-01-01"
    node = cluster.nodes[0]
    assert (node.hyperv_version, node.cpu_vendor, node.boot_drive) == (
        "2019",
        "intel",
        "C",
    )
    assert node.memory_mib == 256 * 1024 and node.performance_option == "compression"


def test_a_ps7_export_with_enums_as_strings_reads_the_same_vocabulary():
    data = fixture("ps7-enums-as-strings.json")
    assert data[:1] == b"{"  # UTF-8, no byte-order mark
    cluster = parse(data)
    assert cluster.storage_kind == "fibre_channel"
    assert cluster.exported_at.utcoffset().total_seconds() == 3600
    nodes = {n.name: n for n in cluster.nodes}
    assert nodes["HV-W1"].hyperv_version == "2022"
    assert nodes["HV-W3"].shared_storage_connected is False  # NoDiskConnectivity
    assert nodes["HV-W4"].cluster_node is False
    assert {vm.power_state for _, vm in cluster.vms()} == {"running"}


def test_one_object_where_an_array_is_expected_is_an_array_of_one():
    data = fixture("one-vm-cluster.json")
    assert data[:3] == b"\xef\xbb\xbf"  # 5.1's Out-File -Encoding utf8
    assert '"vms":  {' in data.decode("utf-8-sig")
    cluster = parse(data)
    assert [n.name for n in cluster.nodes] == ["HV-SOLO"]
    ((_, vm),) = cluster.vms()
    assert vm.name == "solo-1" and len(vm.disks) == 1 and len(vm.adapters) == 1
    assert cluster.csvs[0].volume == "C:\\ClusterStorage\\Volume1"
    assert vm.disks[0].csv == "Cluster Disk 1"


def test_the_depth_trap_is_refused_naming_the_field_and_minus_depth():
    problems = refused(fixture("depth-truncated.json"))
    paths = {p[0]: p for p in problems}
    disk = paths["nodes[0].vms[0].HardDrives[0]"]
    assert disk[1] == "depth"
    assert "Microsoft.HyperV.PowerShell.HardDiskDrive" in disk[2]
    assert "-Depth" in disk[2]
    assert paths["nodes[0].vms[0].NetworkAdapters[0]"][1] == "depth"


def test_a_disk_is_on_a_csv_under_its_volume_even_from_a_d_boot_host():
    cluster = parse(fixture("d-boot-node.json"))
    vms = {vm.name: vm for _, vm in cluster.vms()}
    assert vms["drives-app-1"].disks[0].csv == "Cluster Disk 1"  # D:\ClusterStorage
    local = parse(fixture("local-storage.json"))
    disks = {vm.name: vm.disks[0] for _, vm in local.vms()}
    assert disks["app-local"].csv is None and disks["app-ha"].csv == "Cluster Disk 1"
    assert {vm.name: vm.highly_available for _, vm in local.vms()} == {
        "app-local": False, "app-ha": True,
    }  # fmt: skip


def test_a_2008_host_without_get_vmhost_data_takes_its_memory_from_windows():
    cluster = parse(fixture("legacy-2008-node.json"))
    old = next(n for n in cluster.nodes if n.name == "HV-OLD")
    assert old.hyperv_version == "2008" and old.memory_mib == 64 * 1024


@pytest.mark.parametrize(
    ("version", "release"),
    [("6.0.6002", "2008"), ("6.1.7601", "2008 R2"), ("6.2.9200", "2012"),
     ("6.3.9600", "2012 R2"), ("10.0.14393", "2016"), ("10.0.17763", "2019"),
     ("10.0.18363", "2019"), ("10.0.20348", "2022"), ("10.0.26100", "2025"),
     ("10.0.26100.1742", "2025")],
)  # fmt: skip
def test_the_hyperv_release_comes_from_the_os_build(version, release):
    assert hyperv_version(version) == release


@pytest.mark.parametrize("version", ["5.2.3790", "10.0.10240", "eleven", "10"])
def test_an_os_build_without_a_known_release_is_refused(version):
    with pytest.raises(ValueError):
        hyperv_version(version)


# --- Enums ---------------------------------------------------------------------------


def test_every_documented_enum_number_and_name_maps_to_the_rules_vocabulary():
    assert enums.VM_STATE.resolve(2).value == "running"
    assert enums.VM_STATE.resolve("running").value == "running"  # case-insensitive
    assert enums.VM_STATE.resolve(9).value == "paused"
    assert enums.VM_STATE.resolve(6).value == "saved"
    assert enums.AUTOMATIC_START_ACTION.resolve(4).value == "always_start"
    assert enums.AUTOMATIC_START_ACTION.resolve("Nothing").value == "nothing"
    assert enums.CLUSTER_NODE_STATE.resolve(2).value == "paused"
    assert enums.MIGRATION_PERFORMANCE.resolve(2).value == "smb"
    assert enums.CSV_STATE_INFO.resolve("BlockRedirected").value == "reachable"
    assert enums.GROUP_PRIORITY.resolve(3000).name == "High"


def test_a_transitional_state_is_recorded_settled_and_said_so():
    stopping = enums.VM_STATE.resolve(4)
    assert stopping.value == "off" and "Stopping" in stopping.note


def test_numbers_that_differ_by_windows_release_are_refused_but_names_are_read():
    with pytest.raises(ValueError, match="different Windows releases"):
        enums.VM_STATE.resolve(32785)
    assert enums.VM_STATE.resolve("RunningCritical").value == "running"


# --- Bad input: every refusal names the path and the rule --------------------------


def test_truncated_json_is_refused_as_cut_off():
    data = fixture("ps7-enums-as-strings.json")
    ((path, rule, message),) = refused(data[: len(data) // 2])
    assert rule == "json" and path.startswith("(line ")
    assert "cut off" in message


def test_a_truncated_utf16_file_is_refused_too():
    data = fixture("ps51-numbers-utf16.json")
    problems = refused(data[:1001])  # odd: half a UTF-16 code unit
    assert problems[0][1] in ("encoding", "json")


def test_wrong_types_are_refused_each_with_its_path():
    d = doc()
    d["nodes"][0]["vms"][1]["MemoryStartup"] = "lots"
    d["nodes"][1]["vms"][0]["IsClustered"] = "yes"
    d["nodes"][2]["VMHost"]["MemoryCapacity"] = -5
    problems = {p[0]: p[1] for p in refused(encode(d))}
    assert problems["nodes[0].vms[1].MemoryStartup"] == "type"
    assert problems["nodes[1].vms[0].IsClustered"] == "type"
    assert problems["nodes[2].VMHost.MemoryCapacity"] == "range"


def test_an_unknown_enum_number_is_refused_listing_the_documented_ones():
    d = doc("ps51-numbers-utf16.json")
    d["nodes"][2]["vms"][0]["State"] = 7
    d["nodes"][0]["vms"][1]["AutomaticStartAction"] = 9
    problems = {p[0]: p for p in refused(encode(d))}
    state = problems["nodes[2].vms[0].State"]
    assert (
        state[1] == "enum"
        and "2 Running" in state[2]
        and "learn.microsoft.com" in state[2]
    )
    assert problems["nodes[0].vms[1].AutomaticStartAction"][1] == "enum"


def test_a_required_field_that_is_missing_is_named():
    d = doc()
    del d["nodes"][0]["vms"][0]["VMId"]
    del d["Cluster"]["Name"]
    problems = {p[0]: p[1] for p in refused(encode(d))}
    assert problems == {"nodes[0].vms[0].VMId": "required", "Cluster.Name": "required"}


def test_duplicate_vmids_macs_and_nodes_are_refused_naming_both_places():
    d = doc()
    vms = d["nodes"][0]["vms"]
    vms[1]["VMId"] = vms[0]["VMId"]
    vms[1]["NetworkAdapters"][0]["MacAddress"] = vms[0]["NetworkAdapters"][0][
        "MacAddress"
    ]
    d["nodes"][3]["Name"] = "hv-w1"  # Windows names are case-insensitive
    problems = {p[0]: p for p in refused(encode(d))}
    assert "also at nodes[0].vms[0]" in problems["nodes[0].vms[1].VMId"][2]
    assert problems["nodes[0].vms[1].NetworkAdapters[0].MacAddress"][1] == "duplicate"
    assert problems["nodes[3].Name"][1] == "duplicate"


def test_a_csv_owner_that_is_no_node_is_refused():
    d = doc()
    d["csvs"][0]["OwnerNode"] = "HV-NOWHERE"
    assert refused(encode(d)) == [
        (
            "csvs[0].OwnerNode",
            "reference",
            '"HV-NOWHERE" is not one of the file\'s nodes',
        )
    ]


def test_an_unknown_processor_maker_is_refused():
    d = doc()
    d["nodes"][1]["Processor"][0]["Manufacturer"] = "CentaurHauls"
    ((path, rule, _),) = refused(encode(d))
    assert (path, rule) == ("nodes[1].Processor[0].Manufacturer", "enum")


def test_a_single_cmdlets_output_is_not_an_export():
    ((path, rule, message),) = refused(b'[{"Name": "web01", "State": 2}]')
    assert (path, rule) == ("(document)", "shape") and "The import format" in message


def test_fifty_megabytes_of_junk_is_refused_by_size_before_it_is_read():
    junk = b"\x00\xff" * (25 * 1024 * 1024)
    ((path, rule, message),) = refused(junk)
    assert (path, rule) == ("(file)", "size")
    assert "50.0 MiB" in message and f"{MAX_IMPORT_BYTES // 2**20} MiB" in message


def test_junk_under_the_size_limit_is_refused_as_not_text():
    ((_, rule, message),) = refused(bytes(range(256)) * 64)
    assert rule == "encoding" and "UTF-8" in message


# --- PowerShell's layouts, and the purity of the parser ------------------------------


def test_the_51_layout_is_what_windows_powershell_writes():
    # PowerShell/PowerShell issue 2736: Windows PowerShell's ConvertTo-Json output.
    expected = (
        "{\n"
        '    "dan":  15,\n'
        '    "foo":  {\n'
        '                "second":  "bbbbbbbb",\n'
        '                "first":  "a"\n'
        "            },\n"
        '    "barbarbarbar":  {\n'
        '                         "second":  "bbbbbbbb",\n'
        '                         "first":  "a"\n'
        "                     }\n"
        "}"
    )
    value = {"dan": 15, "foo": {"second": "bbbbbbbb", "first": "a"},
             "barbarbarbar": {"second": "bbbbbbbb", "first": "a"}}  # fmt: skip
    assert psjson.dumps(value, "ps51", "\n") == expected


def test_the_parser_imports_nothing_but_the_standard_library_and_migrator():
    package = Path(document.__file__).parent
    for name in ("document.py", "enums.py", "psjson.py"):
        tree = ast.parse((package / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] in {"__future__", "migrator", "json",
                    "math", "re", "uuid", "collections", "dataclasses", "datetime",
                    "typing"}, (name, node.module)  # fmt: skip
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in {"django", "hvweb"}, name
