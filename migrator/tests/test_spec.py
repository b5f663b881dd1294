from __future__ import annotations

import pytest

from migrator.errors import SpecError
from migrator.spec import MIB, Faults, MigrationSpec, WorkloadSpec


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"page_size": 3000}, "page_size"),
        ({"memory_bytes": 4096 * 10 + 1}, "memory_bytes"),
        ({"bandwidth_bps": 0}, "bandwidth_bps"),
        ({"downtime_limit_s": -1.0}, "downtime_limit_s"),
        ({"zero_fraction": 1.5}, "zero_fraction"),
        ({"max_passes": 0}, "max_passes"),
        ({"host_version": "2008"}, "host_version"),
        ({"host_version": "2030"}, "host_version"),
        ({"memory_budget_bytes": 1000}, "memory_budget_bytes"),
        (
            {
                "workload": WorkloadSpec(
                    kind="uniform", working_set_pages=10**6, write_rate=1.0
                )
            },
            "working_set_pages",
        ),
    ],
)
def test_invalid_spec_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as info:
        MigrationSpec(memory_bytes=kwargs.pop("memory_bytes", 4 * MIB), **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_workload_validation() -> None:
    with pytest.raises(SpecError) as info:
        WorkloadSpec(kind="chaos")
    assert info.value.field == "workload"
    with pytest.raises(SpecError) as info:
        WorkloadSpec(kind="uniform", write_rate=10.0)
    assert info.value.field == "working_set_pages"
    assert not WorkloadSpec(kind="idle", write_rate=5.0).writes


def test_pass_cap_follows_the_hyperv_version() -> None:
    assert MigrationSpec(host_version="2008 R2").pass_cap == 10
    assert MigrationSpec(host_version="2012").pass_cap == 10
    assert MigrationSpec(host_version="2012 R2").pass_cap == 5
    assert MigrationSpec(host_version="2025").pass_cap == 5
    assert MigrationSpec(host_version="2025", max_passes=7).pass_cap == 7


def test_zero_pages_are_rounded_exactly() -> None:
    spec = MigrationSpec(memory_bytes=4 * MIB, zero_fraction=0.3)
    assert spec.pages == 1024
    assert spec.zero_pages == round(0.3 * 1024)


def test_faults_are_validated() -> None:
    with pytest.raises(SpecError) as info:
        Faults(link_failure_pass=0)
    assert info.value.field == "link_failure_pass"
    with pytest.raises(SpecError):
        Faults(link_failure_byte=-5)


def test_spec_to_dict_is_plain() -> None:
    out = MigrationSpec().to_dict()
    assert out["workload"]["kind"] == "idle"
    assert out["pass_cap"] == 10


def test_spec_round_trips_through_json() -> None:
    import json

    spec = MigrationSpec(
        memory_bytes=8 * MIB,
        workload=WorkloadSpec(kind="hotcold", working_set_pages=300, write_rate=5e3),
        compression=True,
        max_passes=4,
        downtime_limit_s=0.0,
    )
    again = MigrationSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    with pytest.raises(SpecError) as info:
        MigrationSpec.from_dict({"memory_bytes": 8 * MIB, "colour": "blue"})
    assert info.value.field == "colour"
