"""Read a Hyper-V cluster export: the bytes PowerShell wrote, to plain data.

This module is the pure half of the importer (standard library only, no
Django, no database): it turns a file into a :class:`ClusterExport` or refuses
it with every :class:`Problem` it found, each naming the path to the bad value
in the file (``nodes[2].vms[5].State``) and the rule it breaks. The database
half (``plan.py``, ``apply.py``) only ever sees a document that passed.

What it copes with, because PowerShell really writes it:

* UTF-16 LE with a byte-order mark (Windows PowerShell 5.1's ``Out-File`` and
  ``>``), UTF-8 with or without one (``Out-File -Encoding utf8`` in 5.1;
  PowerShell 7's default) - about_Character_Encoding,
  https://learn.microsoft.com/powershell/module/microsoft.powershell.core/about/about_character_encoding?view=powershell-5.1
* enums as numbers (5.1) or names (``-EnumsAsStrings``, 6.2+): see ``enums.py``;
* one object where an array is expected (``ConvertTo-Json`` wraps a single
  object in no array unless ``-AsArray``);
* 5.1's dates, ``"\\/Date(1700000000000)\\/"``, ISO 8601 from PowerShell 7,
  and 5.1's ``Get-Date`` wrapper object ``{"value": ..., "DateTime": ...}``;
* the depth trap: past ``-Depth`` (default 2) ``ConvertTo-Json`` writes a
  nested object as its type name (``"Microsoft.HyperV.PowerShell.HardDiskDrive"``)
  or, for a PowerShell custom object, as ``"@{Path=...}"``; that is refused
  with the field's path and the advice to raise ``-Depth``
  (https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/convertto-json).

The document's shape is described in README ("The import format").
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from migrator.hyperv import MAX_VM_MEMORY_MIB, MAX_VM_VCPUS, VERSIONS
from migrator.rules import DRIVE_LETTERS

from . import enums

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAX_IMPORT_BYTES",
    "AdapterExport",
    "ClusterExport",
    "CsvExport",
    "DiskExport",
    "ImportRefused",
    "NodeExport",
    "Problem",
    "VMExport",
    "decode",
    "hyperv_version",
    "parse",
    "read_document",
]

#: Larger files are refused before they are read. A 64-node cluster of 8,000
#: VMs (the most Windows Server clusters) exports to about 20 MiB in UTF-16.
MAX_IMPORT_BYTES = 32 * 1024 * 1024
FORMAT_NAME = "hvweb-hyperv-inventory"
FORMAT_VERSION = 1
#: Problems listed before the rest are only counted.
MAX_PROBLEMS = 100

MIB = 1024 * 1024
GIB = 1024 * MIB
UNASSIGNED_MAC = "00-00-00-00-00-00"


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a file is refused: where the bad value is, the rule, what to do."""

    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.rule}]"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "rule": self.rule, "message": self.message}


class ImportRefused(Exception):
    """The file cannot be imported; ``problems`` lists every reason found."""

    def __init__(self, problems: list[Problem], more: int = 0) -> None:
        self.problems = tuple(problems)
        self.more = more
        lines = [str(p) for p in self.problems]
        if more:
            lines.append(f"... and {more} more problems")
        super().__init__("\n".join(lines))

    @classmethod
    def one(cls, path: str, rule: str, message: str) -> ImportRefused:
        return cls([Problem(path, rule, message)])


# --- The result ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CsvExport:
    path_in_file: str
    name: str
    #: The mount point, FriendlyVolumeName (C:\ClusterStorage\Volume1).
    volume: str
    capacity_gib: int
    free_gib: int | None
    owner: str | None
    state: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskExport:
    name: str
    path: str
    kind: str
    controller: str
    size_gib: int | None
    #: Name of the CSV the file lies on; None on local storage.
    csv: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AdapterExport:
    name: str
    mac_address: str
    virtual_switch: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VMExport:
    path_in_file: str
    vm_id: uuid.UUID
    name: str
    power_state: str
    memory_mib: int
    vcpus: int
    generation: int | None
    automatic_start_action: str
    highly_available: bool
    priority: int | None
    disks: tuple[DiskExport, ...]
    adapters: tuple[AdapterExport, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeExport:
    path_in_file: str
    name: str
    state: str
    drain_status: str | None
    cluster_node: bool
    os_version: str
    os_caption: str
    hyperv_version: str
    boot_drive: str
    cpu_vendor: str
    cpu_model: str
    memory_mib: int
    migration_enabled: bool | None
    max_migrations: int | None
    performance_option: str | None
    authentication: str | None
    shared_storage_connected: bool
    vms: tuple[VMExport, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterExport:
    name: str
    hyperv_id: uuid.UUID | None
    domain: str
    exported_at: datetime | None
    exported_on: str
    #: "fibre_channel", "iscsi" or "none" when the file says; None when it does not.
    storage_kind: str | None
    max_parallel_migrations: int | None
    nodes: tuple[NodeExport, ...]
    csvs: tuple[CsvExport, ...]
    notes: tuple[str, ...] = field(default=())

    def vms(self) -> Iterator[tuple[NodeExport, VMExport]]:
        for node in self.nodes:
            for vm in node.vms:
                yield node, vm

    @property
    def vm_count(self) -> int:
        return sum(len(node.vms) for node in self.nodes)


# --- Bytes to text to JSON -------------------------------------------------------

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8", "UTF-8 with a byte-order mark"),
    (b"\xff\xfe", "utf-16-le", "UTF-16 LE (Windows PowerShell's Out-File and >)"),
    (b"\xfe\xff", "utf-16-be", "UTF-16 BE"),
)


def decode(data: bytes) -> str:
    """The text of the file, from its byte-order mark (UTF-8 without one)."""
    if data[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        raise ImportRefused.one(
            "(file)", "encoding", "the file is UTF-32: save it as UTF-8 or UTF-16"
        )
    for bom, codec, what in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise ImportRefused.one(
                    "(file)",
                    "encoding",
                    f"the file starts as {what} but byte {exc.start + len(bom)} is "
                    f"not valid {codec}: is it cut off or corrupted?",
                ) from None
    if len(data) >= 4 and data[1] == 0 and data[3] == 0 and data[0] != 0:
        # UTF-16 LE without its mark: "{\0\r\0" - what a hand-saved file may be.
        try:
            return data.decode("utf-16-le")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportRefused.one(
            "(file)",
            "encoding",
            f"byte {exc.start} is not UTF-8 and the file has no byte-order mark: "
            f"Windows PowerShell's Set-Content writes the ANSI code page; write the "
            f"file with Out-File -Encoding utf8 (or run scripts/export-hyperv.ps1, "
            f"which writes UTF-8)",
        ) from None


def _json_error(text: str, exc: json.JSONDecodeError) -> ImportRefused:
    near_end = len(text.rstrip()) - exc.pos <= 2
    hint = (
        "the file ends in the middle of the document: it was cut off (copy it "
        "again, whole)"
        if near_end
        else "the file is not valid JSON"
    )
    return ImportRefused.one(
        f"(line {exc.lineno}, column {exc.colno})", "json", f"{exc.msg}: {hint}"
    )


def _load(data: bytes) -> Any:
    if len(data) > MAX_IMPORT_BYTES:
        raise too_large(len(data))
    text = decode(data)
    if not text.strip():
        raise ImportRefused.one("(file)", "json", "the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _json_error(text, exc) from None
    except RecursionError:
        raise ImportRefused.one(
            "(file)", "json", "the document nests too deeply to be an export"
        ) from None


def too_large(size: int) -> ImportRefused:
    """The refusal for a file over :data:`MAX_IMPORT_BYTES` (said before reading)."""
    return ImportRefused.one(
        "(file)",
        "size",
        f"the file is {size / MIB:.1f} MiB; an export is at most "
        f"{MAX_IMPORT_BYTES // MIB} MiB (a 64-node cluster of 8,000 VMs is about "
        f"20 MiB): is this the right file?",
    )


def parse(data: bytes) -> ClusterExport:
    """The cluster in an export file's bytes, or :class:`ImportRefused`."""
    return read_document(_load(data))


# --- Values ----------------------------------------------------------------------

_TYPE_NAME = re.compile(
    r"^(?:[A-Za-z_][\w`]*\.)+[A-Za-z_][\w`+]*(?:\[[^\]]*\])?"
    r"(?:\s+(?:[A-Za-z_][\w`]*\.)+[A-Za-z_][\w`+]*(?:\[[^\]]*\])?)*$"
)
_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_MAC = re.compile(r"^[0-9A-Fa-f]{12}$|^[0-9A-Fa-f]{2}([-:][0-9A-Fa-f]{2}){5}$")
_DRIVE = re.compile(r"^([A-Za-z]):\\?$")
_MISSING = object()


#: A Hyper-V object's own ToString: "VMNetworkAdapter (Name = 'x', VMName = 'y')
#: [Id = '...']" (as PowerShell's formatting shows it, e.g. a Get-VM's CLIXML
#: <ToString>VirtualMachine (Name = 'Win10Ent') [Id = '...']</ToString>).
_OBJECT_STRING = re.compile(r"^[A-Za-z]\w* \(.*\)( \[Id = '[^']*'\])?$")


def _looks_truncated(value: str) -> bool:
    """What ConvertTo-Json writes for an object or array past its -Depth."""
    text = value.strip()
    return (
        text.startswith("@{")
        or bool(_OBJECT_STRING.match(text))
        or ("." in text and bool(_TYPE_NAME.match(text)) and "\\" not in text)
    )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


class _Reader:
    """Walks the document, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.dropped = 0

    def fail(self, path: str, rule: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(path, rule, message))
        else:
            self.dropped += 1

    def _nested(self, value: Any, path: str, expected: str) -> None:
        if isinstance(value, str) and _looks_truncated(value):
            self.fail(
                path,
                "depth",
                f"expected {expected} but found the text {_show(value)}, which is "
                f"what ConvertTo-Json writes for a value nested deeper than its "
                f"-Depth (2 unless given): export again with a higher -Depth "
                f"(scripts/export-hyperv.ps1 uses -Depth 8)",
            )
        else:
            self.fail(path, "type", f"expected {expected}, found {_kind(value)}")

    def obj(self, value: Any, path: str) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self._nested(value, path, "an object")
        return None

    def array(self, value: Any, path: str) -> list[tuple[str, Any]]:
        """Items with their paths; one object stands for an array of one."""
        if value is None:
            return []
        if isinstance(value, dict):
            return [(f"{path}[0]", value)]
        if isinstance(value, list):
            return [(f"{path}[{i}]", item) for i, item in enumerate(value)]
        self._nested(value, path, "an array (or one object)")
        return []

    @staticmethod
    def key(d: dict[str, Any], name: str) -> str | None:
        """The key for ``name`` in ``d`` (PowerShell's names are case-insensitive)."""
        if name in d:
            return name
        lower = name.lower()
        return next((k for k in d if k.lower() == lower), None)

    def get(self, d: dict[str, Any], name: str, path: str) -> tuple[Any, str]:
        key = self.key(d, name)
        sub = f"{path}.{key or name}" if path else (key or name)
        return (d[key] if key is not None else _MISSING), sub

    def required(self, d: dict[str, Any], name: str, path: str) -> tuple[Any, str]:
        value, sub = self.get(d, name, path)
        if value is _MISSING or value is None:
            self.fail(sub, "required", f"{name} is required and is missing or null")
            return _MISSING, sub
        return value, sub

    def string(
        self,
        d: dict[str, Any],
        name: str,
        path: str,
        *,
        required: bool = True,
        max_length: int = 100,
        default: str = "",
    ) -> str:
        value, sub = (self.required if required else self.get)(d, name, path)
        if value is _MISSING or (value is None and not required):
            return default
        if not isinstance(value, str):
            self.fail(sub, "type", f"expected text, found {_kind(value)}")
            return default
        text = value.strip()
        if required and not text:
            self.fail(sub, "required", f"{name} is empty")
        elif len(text) > max_length:
            self.fail(
                sub,
                "length",
                f"{len(text)} characters is longer than the {max_length} hvweb keeps",
            )
            return text[:max_length]
        return text

    def integer(
        self,
        d: dict[str, Any],
        name: str,
        path: str,
        *,
        required: bool = True,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value, sub = (self.required if required else self.get)(d, name, path)
        if value is _MISSING or value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                self.fail(sub, "type", f"expected a whole number, found {_kind(value)}")
                return None
        if minimum is not None and value < minimum:
            self.fail(sub, "range", f"{value} is less than {minimum}")
            return None
        if maximum is not None and value > maximum:
            self.fail(sub, "range", f"{value} is more than {maximum}")
            return None
        return value

    def boolean(
        self, d: dict[str, Any], name: str, path: str, *, required: bool = True
    ) -> bool | None:
        value, sub = (self.required if required else self.get)(d, name, path)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, bool):
            self.fail(sub, "type", f"expected true or false, found {_kind(value)}")
            return None
        return value

    def enum(
        self,
        d: dict[str, Any],
        name: str,
        path: str,
        table: enums.Enum,
        *,
        required: bool = True,
    ) -> enums.Resolved | None:
        value, sub = (self.required if required else self.get)(d, name, path)
        if value is _MISSING or value is None:
            return None
        try:
            return table.resolve(value)
        except TypeError:
            self.fail(sub, "type", f"expected a number or a name, found {_kind(value)}")
        except ValueError as exc:
            self.fail(sub, "enum", str(exc))
        return None

    def guid(
        self, d: dict[str, Any], name: str, path: str, *, required: bool = True
    ) -> uuid.UUID | None:
        value, sub = (self.required if required else self.get)(d, name, path)
        if value is _MISSING or value is None:
            return None
        if isinstance(value, dict):
            # A [guid] nested past -Depth, or a hand-made {"Guid": "..."}.
            inner = value.get(self.key(value, "Guid") or "Guid")
            value = inner if isinstance(inner, str) else value
        if not isinstance(value, str):
            self.fail(sub, "type", f"expected a GUID, found {_kind(value)}")
            return None
        try:
            return uuid.UUID(value.strip().strip("{}"))
        except ValueError:
            self.fail(sub, "format", f"{_show(value)} is not a GUID")
            return None

    def date(self, d: dict[str, Any], name: str, path: str) -> datetime | None:
        value, sub = self.get(d, name, path)
        if value is _MISSING or value is None:
            return None
        if isinstance(value, dict):
            # Windows PowerShell 5.1 wraps Get-Date's output: {"value": ..., ...}.
            inner_key = self.key(value, "value")
            value = value[inner_key] if inner_key else value
        if not isinstance(value, str):
            self.fail(sub, "type", f"expected a date, found {_kind(value)}")
            return None
        match = _DATE.match(value.strip())
        if match:
            moment = datetime.fromtimestamp(int(match[1]) / 1000, tz=UTC)
            if match[2]:
                sign = 1 if match[2][0] == "+" else -1
                offset = timedelta(hours=int(match[2][1:3]), minutes=int(match[2][3:]))
                moment = moment.astimezone(timezone(sign * offset))
            return moment
        try:
            moment = datetime.fromisoformat(_trim_fraction(value.strip()))
        except ValueError:
            self.fail(
                sub,
                "format",
                f'{_show(value)} is not a date (ISO 8601 or 5.1\'s "\\/Date(ms)\\/")',
            )
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _trim_fraction(text: str) -> str:
    """.NET writes 7 fractional digits; Python reads up to 6."""
    return re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))


def hyperv_version(os_version: str) -> str:
    """The Hyper-V release of a Windows Server build (``10.0.17763`` -> ``2019``).

    6.0 is Windows Server 2008, 6.1 2008 R2, 6.2 2012, 6.3 2012 R2; on 10.0 the
    build number tells the long-term releases apart: 14393 is 2016, 17763 2019,
    20348 2022, 26100 2025 (Microsoft/hcsshim osversion; Windows Server release
    information, https://learn.microsoft.com/windows/release-health/windows-server-release-info).
    A build between two of them (a semi-annual release) counts as the older.
    ValueError names the rule.
    """
    parts = os_version.strip().split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{os_version!r} is not a Windows version such as 10.0.17763")
    major, minor = int(parts[0]), int(parts[1])
    classic = {(6, 0): "2008", (6, 1): "2008 R2", (6, 2): "2012", (6, 3): "2012 R2"}
    if (major, minor) in classic:
        return classic[(major, minor)]
    if (major, minor) == (10, 0) and len(parts) >= 3:
        build = int(parts[2])
        for first, release in ((26100, "2025"), (20348, "2022"), (17763, "2019"),
                               (14393, "2016")):  # fmt: skip
            if build >= first:
                return release
    raise ValueError(
        f"{os_version} is not a Windows Server release with Hyper-V that hvweb "
        f"knows ({', '.join(VERSIONS)}; 10.0 builds from 14393)"
    )


def _mac(raw: str) -> str:
    digits = re.sub(r"[-:]", "", raw).upper()
    return "-".join(digits[i : i + 2] for i in range(0, 12, 2))


def _on_volume(path: str, volume: str, system_drive: str) -> bool:
    r"""Whether ``path`` lies under the CSV mounted at ``volume``.

    A CSV is mounted under every node's %SystemDrive%\ClusterStorage; the export
    reports its FriendlyVolumeName as seen by one node, so a node booting from
    D: sees the same volume at D:\ClusterStorage\Volume1. The drive letter
    matches either the volume's or the VM's host's system drive.
    """
    p, v = path.replace("/", "\\").lower(), volume.replace("/", "\\").lower()
    if len(p) < 3 or len(v) < 3 or p[1:3] != ":\\" or v[1:3] != ":\\":
        return False
    if p[0] not in (v[0], system_drive.lower()):
        return False
    return p[2:].startswith(v[2:].rstrip("\\") + "\\")


def _disk_kind(path: str, disk_number: Any) -> str:
    lower = path.lower()
    if lower.endswith((".vhdx", ".avhdx")):
        return "vhdx"
    if lower.endswith((".vhd", ".avhd")):
        return "vhd"
    return "passthrough"


def _unique_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate.lower() in taken:
        suffix = f" ({n})"
        candidate, n = name[: 100 - len(suffix)] + suffix, n + 1
    taken.add(candidate.lower())
    return candidate


# --- The document -----------------------------------------------------------------


def read_document(doc: Any) -> ClusterExport:
    """The cluster described by a decoded JSON document, or ImportRefused."""
    r = _Reader()
    if not isinstance(doc, dict):
        raise ImportRefused.one(
            "(document)",
            "shape",
            f"expected the object scripts/export-hyperv.ps1 writes (Cluster, csvs, "
            f"nodes), found {_kind(doc)}: one cmdlet's ConvertTo-Json output alone "
            f'is not an export (see README, "The import format")',
        )
    fmt, fmt_path = r.get(doc, "Format", "")
    if fmt is not _MISSING and fmt != FORMAT_NAME:
        r.fail(fmt_path, "format", f"expected {FORMAT_NAME!r}, found {_show(fmt)}")
    version, version_path = r.get(doc, "FormatVersion", "")
    if version is not _MISSING and version != FORMAT_VERSION:
        r.fail(
            version_path,
            "format",
            f"this hvweb reads format version {FORMAT_VERSION}, found {_show(version)}",
        )
    cluster_raw, cluster_path = r.required(doc, "Cluster", "")
    name, hyperv_id, domain, max_parallel = "", None, "", None
    if cluster_raw is not _MISSING and (c := r.obj(cluster_raw, cluster_path)):
        name = r.string(c, "Name", cluster_path)
        hyperv_id = r.guid(c, "Id", cluster_path, required=False)
        domain = r.string(c, "Domain", cluster_path, required=False, max_length=255)
        max_parallel = r.integer(
            c, "MaximumParallelMigrations", cluster_path, required=False, minimum=1
        )
    storage = _storage_kind(r, doc)
    exported_at = r.date(doc, "ExportedAt", "")
    exported_on = r.string(doc, "ComputerName", "", required=False, max_length=255)

    csvs = _csvs(r, doc)
    nodes_raw, nodes_path = r.required(doc, "nodes", "")
    node_items = [] if nodes_raw is _MISSING else r.array(nodes_raw, nodes_path)
    if nodes_raw is not _MISSING and not node_items and not r.problems:
        r.fail(nodes_path, "required", "a cluster has at least one node")
    nodes = [n for p, raw in node_items if (n := _node(r, raw, p, csvs))]
    _cross_checks(r, nodes, csvs)
    if r.problems:
        raise ImportRefused(r.problems, r.dropped)
    notes = []
    if storage is None and csvs:
        notes.append(
            "The file does not say whether the SAN is Fibre Channel or iSCSI "
            "(StorageKind): the cluster keeps its setting, or iSCSI when new."
        )
    return ClusterExport(
        name=name,
        hyperv_id=hyperv_id,
        domain=domain,
        exported_at=exported_at,
        exported_on=exported_on,
        storage_kind=storage,
        max_parallel_migrations=max_parallel,
        nodes=tuple(nodes),
        csvs=tuple(c for c, _ in csvs),
        notes=tuple(notes),
    )


_STORAGE_KINDS = {
    "fibrechannel": "fibre_channel",
    "fibre channel": "fibre_channel",
    "fc": "fibre_channel",
    "iscsi": "iscsi",
    "none": "none",
}


def _storage_kind(r: _Reader, doc: dict[str, Any]) -> str | None:
    value, path = r.get(doc, "StorageKind", "")
    if value is _MISSING or value is None:
        return None
    if not isinstance(value, str) or value.strip().lower() not in _STORAGE_KINDS:
        r.fail(path, "enum", f"{_show(value)} is not FibreChannel, iSCSI or None")
        return None
    return _STORAGE_KINDS[value.strip().lower()]


def _csvs(r: _Reader, doc: dict[str, Any]) -> list[tuple[CsvExport, str]]:
    raw, path = r.get(doc, "csvs", "")
    if raw is _MISSING:
        return []
    found = []
    for item_path, item in r.array(raw, path):
        c = r.obj(item, item_path)
        if c is None:
            continue
        name = r.string(c, "Name", item_path)
        owner = None
        owner_raw, owner_path = r.get(c, "OwnerNode", item_path)
        if isinstance(owner_raw, str):
            owner = owner_raw.strip() or None
        elif isinstance(owner_raw, dict):
            owner = r.string(owner_raw, "Name", owner_path) or None
        elif owner_raw not in (_MISSING, None):
            r._nested(owner_raw, owner_path, "the owner node's name")
        state = r.enum(c, "State", item_path, enums.CSV_RESOURCE_STATE)
        infos_raw, infos_path = r.required(c, "SharedVolumeInfo", item_path)
        infos = [] if infos_raw is _MISSING else r.array(infos_raw, infos_path)
        if infos_raw is not _MISSING and not infos and not isinstance(infos_raw, str):
            r.fail(infos_path, "required", "a CSV has its volume's information")
        volume, size, free = "", None, None
        for info_path, info_raw in infos[:1]:
            info = r.obj(info_raw, info_path)
            if info is None:
                continue
            volume = r.string(info, "FriendlyVolumeName", info_path, max_length=260)
            volume = volume.rstrip("\\")
            if volume and not re.match(
                r"^[C-Za-z]:\\ClusterStorage\\[^\\/:*?\"<>|]+$", volume
            ):
                r.fail(
                    f"{info_path}.FriendlyVolumeName",
                    "format",
                    f"{_show(volume)} is not a CSV mount point such as "
                    f"C:\\ClusterStorage\\Volume1",
                )
            part_raw, part_path = r.required(info, "Partition", info_path)
            if part_raw is not _MISSING and (part := r.obj(part_raw, part_path)):
                size = r.integer(part, "Size", part_path, minimum=1)
                free = r.integer(
                    part, "FreeSpace", part_path, required=False, minimum=0
                )
        notes = (state.note,) if state and state.note else ()
        found.append(
            (
                CsvExport(
                    path_in_file=item_path,
                    name=name,
                    volume=volume[0].upper() + volume[1:] if volume else "",
                    capacity_gib=max(1, math.ceil(size / GIB)) if size else 1,
                    free_gib=free // GIB if free is not None else None,
                    owner=owner,
                    state=state.value if state else "offline",
                    notes=notes,
                ),
                item_path,
            )
        )
    return found


def _node(
    r: _Reader, raw: Any, path: str, csvs: list[tuple[CsvExport, str]]
) -> NodeExport | None:
    n = r.obj(raw, path)
    if n is None:
        return None
    before = len(r.problems)
    name = r.string(n, "Name", path, max_length=100)
    state = r.enum(n, "State", path, enums.CLUSTER_NODE_STATE)
    drain = r.enum(n, "DrainStatus", path, enums.DRAIN_STATUS, required=False)
    is_node = r.boolean(n, "IsClusterNode", path, required=False)
    notes = [f"{name} {state.note}"] if state and state.note else []

    os_raw, os_path = r.required(n, "OperatingSystem", path)
    os_version = caption = boot = ""
    version = ""
    os_memory = None
    if os_raw is not _MISSING and (o := r.obj(os_raw, os_path)):
        os_version = r.string(o, "Version", os_path, max_length=40)
        caption = r.string(o, "Caption", os_path, required=False, max_length=255)
        if os_version:
            try:
                version = hyperv_version(os_version)
            except ValueError as exc:
                r.fail(f"{os_path}.Version", "version", str(exc))
        drive = r.string(o, "SystemDrive", os_path, max_length=3)
        match = _DRIVE.match(drive) if drive else None
        if drive and not match:
            r.fail(
                f"{os_path}.SystemDrive",
                "format",
                f"{_show(drive)} is not a drive like C:",
            )
        elif match and match[1].upper() not in DRIVE_LETTERS:
            r.fail(
                f"{os_path}.SystemDrive",
                "range",
                f"{drive} cannot be a system drive (C: to Z:)",
            )
        elif match:
            boot = match[1].upper()
        kib = r.integer(o, "TotalVisibleMemorySize", os_path, required=False, minimum=1)
        os_memory = kib // 1024 if kib else None

    vendor, model = _processor(r, n, path)
    host_raw, host_path = r.get(n, "VMHost", path)
    memory = migration_enabled = max_migrations = performance = auth = None
    if host_raw is not _MISSING and host_raw is not None:
        h = r.obj(host_raw, host_path)
        if h is not None:
            capacity = r.integer(h, "MemoryCapacity", host_path, minimum=1)
            memory = capacity // MIB if capacity else None
            migration_enabled = r.boolean(
                h, "VirtualMachineMigrationEnabled", host_path, required=False
            )
            max_migrations = r.integer(
                h, "MaximumVirtualMachineMigrations", host_path, required=False,
                minimum=1, maximum=32767,
            )  # fmt: skip
            perf = r.enum(
                h, "VirtualMachineMigrationPerformanceOption", host_path,
                enums.MIGRATION_PERFORMANCE, required=False,
            )  # fmt: skip
            performance = perf.value if perf else None
            a = r.enum(
                h, "VirtualMachineMigrationAuthenticationType", host_path,
                enums.MIGRATION_AUTHENTICATION, required=False,
            )  # fmt: skip
            auth = a.value if a else None
    memory = memory or os_memory
    if memory is None and len(r.problems) == before:
        r.fail(
            f"{path}.VMHost.MemoryCapacity",
            "required",
            "the host's memory is needed: Get-VMHost's MemoryCapacity or "
            "Win32_OperatingSystem's TotalVisibleMemorySize",
        )
    if memory is not None and memory < 1:
        r.fail(f"{path}.VMHost.MemoryCapacity", "range", "less than 1 MiB")

    connected = _storage_reach(r, n, path, csvs)
    if migration_enabled is False:
        notes.append(
            f"Live migration is disabled on {name} (VirtualMachineMigrationEnabled "
            f"false): enable it with Enable-VMMigration -ComputerName {name}."
        )
    vms_raw, vms_path = r.get(n, "vms", path)
    vms = []
    if vms_raw is not _MISSING:
        for vm_path, vm_raw in r.array(vms_raw, vms_path):
            vm = _vm(r, vm_raw, vm_path, csvs, boot)
            if vm is not None:
                vms.append(vm)
    if len(r.problems) != before:
        return None
    return NodeExport(
        path_in_file=path,
        name=name,
        state=state.value if state else "down",
        drain_status=drain.value if drain else None,
        cluster_node=is_node if is_node is not None else True,
        os_version=os_version,
        os_caption=caption,
        hyperv_version=version,
        boot_drive=boot,
        cpu_vendor=vendor,
        cpu_model=model,
        memory_mib=memory or 1,
        migration_enabled=migration_enabled,
        max_migrations=max_migrations,
        performance_option=performance,
        authentication=auth,
        shared_storage_connected=connected,
        vms=tuple(vms),
        notes=tuple(notes),
    )


#: Win32_Processor.Manufacturer is the CPUID vendor string
#: (https://learn.microsoft.com/windows/win32/cimwin32prov/win32-processor).
_VENDORS = {"genuineintel": "intel", "authenticamd": "amd"}


def _processor(r: _Reader, n: dict[str, Any], path: str) -> tuple[str, str]:
    raw, p_path = r.required(n, "Processor", path)
    if raw is _MISSING:
        return "", ""
    vendors: set[str] = set()
    model = ""
    items = r.array(raw, p_path)
    if not items and not isinstance(raw, str):
        r.fail(p_path, "required", "a host has at least one processor")
    for item_path, item in items:
        p = r.obj(item, item_path)
        if p is None:
            continue
        maker = r.string(p, "Manufacturer", item_path)
        model = model or r.string(p, "Name", item_path, required=False)
        if maker and maker.lower() not in _VENDORS:
            r.fail(
                f"{item_path}.Manufacturer",
                "enum",
                f"{_show(maker)} is neither GenuineIntel nor AuthenticAMD, the two "
                f"manufacturers hvweb's CPU_VENDOR rule knows",
            )
        elif maker:
            vendors.add(_VENDORS[maker.lower()])
    if len(vendors) > 1:
        r.fail(p_path, "consistency", "the host's processors name two manufacturers")
    return (next(iter(vendors)) if len(vendors) == 1 else ""), " ".join(model.split())


def _storage_reach(
    r: _Reader, n: dict[str, Any], path: str, csvs: list[tuple[CsvExport, str]]
) -> bool:
    """False when the node reaches none of the cluster's CSVs (its SAN is cut).

    From Get-ClusterSharedVolumeState: a volume is unreachable from the node
    when its StateInfo is Unavailable or Paused, or when its block I/O is
    redirected for NoDiskConnectivity (the node lost its own path to the LUN).
    Without that information the node is taken as connected.
    """
    raw, states_path = r.get(n, "CsvStates", path)
    if raw is _MISSING or raw is None:
        return True
    names = {c.name.lower() for c, _ in csvs}
    reach = []
    for item_path, item in r.array(raw, states_path):
        s = r.obj(item, item_path)
        if s is None:
            continue
        csv_name = r.string(s, "Name", item_path)
        if csv_name and csv_name.lower() not in names:
            r.fail(
                f"{item_path}.Name",
                "reference",
                f"{_show(csv_name)} is not one of the file's csvs",
            )
        info = r.enum(s, "StateInfo", item_path, enums.CSV_STATE_INFO)
        block = r.string(
            s, "BlockRedirectedIOReason", item_path, required=False, max_length=60
        )
        reach.append(
            bool(info and info.value == "reachable")
            and block.lower() != "nodiskconnectivity"
        )
    return any(reach) if reach else True


def _vm(
    r: _Reader,
    raw: Any,
    path: str,
    csvs: list[tuple[CsvExport, str]],
    system_drive: str,
) -> VMExport | None:
    v = r.obj(raw, path)
    if v is None:
        return None
    before = len(r.problems)
    name = r.string(v, "Name", path, max_length=100)
    vm_id = r.guid(v, "VMId", path)
    state = r.enum(v, "State", path, enums.VM_STATE)
    most = MAX_VM_MEMORY_MIB * MIB
    startup = r.integer(v, "MemoryStartup", path, minimum=1, maximum=most)
    assigned = r.integer(
        v, "MemoryAssigned", path, required=False, minimum=0, maximum=most
    )
    vcpus = r.integer(
        v, "ProcessorCount", path, minimum=1, maximum=MAX_VM_VCPUS
    )
    generation = r.integer(v, "Generation", path, required=False, minimum=1, maximum=2)
    action = r.enum(v, "AutomaticStartAction", path, enums.AUTOMATIC_START_ACTION)
    clustered = r.boolean(v, "IsClustered", path)
    priority = r.enum(v, "Priority", path, enums.GROUP_PRIORITY, required=False)

    disks: list[DiskExport] = []
    taken: set[str] = set()
    drives_raw, drives_path = r.get(v, "HardDrives", path)
    if drives_raw is not _MISSING:
        for d_path, d_raw in r.array(drives_raw, drives_path):
            d = r.obj(d_raw, d_path)
            if d is None:
                continue
            disk_path = r.string(d, "Path", d_path, max_length=260)
            controller = r.enum(d, "ControllerType", d_path, enums.CONTROLLER_TYPE)
            size = r.integer(d, "Size", d_path, required=False, minimum=1)
            number, _ = r.get(d, "DiskNumber", d_path)
            if not disk_path:
                continue
            kind = _disk_kind(disk_path, number)
            csv = next(
                (c.name for c, _ in csvs if c.volume and _on_volume(
                    disk_path, c.volume, system_drive or c.volume[0])),
                None,
            )  # fmt: skip
            base = disk_path.replace("/", "\\").rsplit("\\", 1)[-1]
            if kind == "passthrough":
                base = f"Passthrough disk {len(disks) + 1}"
            disks.append(
                DiskExport(
                    name=_unique_name(base[:100], taken),
                    path=disk_path,
                    kind=kind,
                    controller=controller.value if controller else "",
                    size_gib=max(1, math.ceil(size / GIB)) if size else None,
                    csv=csv,
                )
            )
    adapters: list[AdapterExport] = []
    nics_raw, nics_path = r.get(v, "NetworkAdapters", path)
    if nics_raw is not _MISSING:
        for a_path, a_raw in r.array(nics_raw, nics_path):
            a = r.obj(a_raw, a_path)
            if a is None:
                continue
            mac = r.string(a, "MacAddress", a_path, max_length=17)
            if mac and not _MAC.match(mac):
                r.fail(
                    f"{a_path}.MacAddress",
                    "format",
                    f"{_show(mac)} is not a MAC address (00155D010203)",
                )
                continue
            adapters.append(
                AdapterExport(
                    name=r.string(a, "Name", a_path, required=False)
                    or "Network Adapter",
                    mac_address=_mac(mac) if mac else UNASSIGNED_MAC,
                    virtual_switch=r.string(
                        a, "SwitchName", a_path, required=False, default=""
                    ),
                )
            )
    if len(r.problems) != before:
        return None
    assert vm_id is not None and state and action and startup and vcpus
    memory_bytes = assigned if assigned else startup
    notes = [f"{name}: {state.note}"] if state.note else []
    return VMExport(
        path_in_file=path,
        vm_id=vm_id,
        name=name,
        power_state=state.value,
        memory_mib=max(1, math.ceil(memory_bytes / MIB)),
        vcpus=vcpus,
        generation=generation,
        automatic_start_action=action.value,
        highly_available=bool(clustered),
        priority=int(priority.value) if priority else None,
        disks=tuple(disks),
        adapters=tuple(adapters),
        notes=tuple(notes),
    )


def _cross_checks(
    r: _Reader, nodes: list[NodeExport], csvs: list[tuple[CsvExport, str]]
) -> None:
    """Rules that span objects: unique names, ids and MACs; owners that exist."""

    def unique(items, key, what: str, field_name: str, rule: str = "duplicate"):
        seen: dict[Any, str] = {}
        for path, value in items:
            k = key(value)
            if k in seen:
                r.fail(
                    f"{path}.{field_name}",
                    rule,
                    f"{what} {value!s} appears twice (also at {seen[k]}.{field_name}): "
                    f"{what}s are unique in a cluster",
                )
            else:
                seen[k] = path

    unique([(n.path_in_file, n.name) for n in nodes], str.lower, "node", "Name")
    unique([(p, c.name) for c, p in csvs], str.lower, "CSV", "Name")
    unique(
        [(f"{p}.SharedVolumeInfo[0]", c.volume) for c, p in csvs if c.volume],
        str.lower,
        "CSV mount point",
        "FriendlyVolumeName",
    )
    vms = [(vm.path_in_file, vm) for node in nodes for vm in node.vms]
    unique([(p, vm.vm_id) for p, vm in vms], lambda v: v, "VMId", "VMId")
    macs = [
        (f"{p}.NetworkAdapters[{i}]", a.mac_address)
        for p, vm in vms
        for i, a in enumerate(vm.adapters)
        if a.mac_address != UNASSIGNED_MAC
    ]
    unique(macs, lambda m: m, "MAC address", "MacAddress")
    if r.problems:
        return  # a node left out for its own problems is no missing owner
    node_names = {n.name.lower() for n in nodes}
    for c, p in csvs:
        if c.owner and node_names and c.owner.lower() not in node_names:
            r.fail(
                f"{p}.OwnerNode",
                "reference",
                f"{_show(c.owner)} is not one of the file's nodes",
            )
