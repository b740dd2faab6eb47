"""Driver routes GET/POST /driver/v1/deptrans-status/v1/id: bind a registry ID checked by KRT, never show it."""
from __future__ import annotations

import json

import pytest

from chalicelib.deptrans.models import DriverProfile
from tests.deptrans.conftest import ID_PATH


def test_a_driver_binds_the_id_krt_knows_for_his_licence(dep):
    pd_id = dep.driver("p1", "d1", licence="7701000001", registry_id="ID0000001")
    assert dep.bound("p1", "d1").json_body == {"bound": False}

    answer = dep.bind("p1", "d1", "ID0000001")
    assert answer.status_code == 200 and answer.json_body == {"bound": True}
    assert dep.bound("p1", "d1").json_body == {"bound": True}
    saved = DriverProfile.get(pd_id)
    assert saved.deptrans_id == "ID0000001" and saved.profiles == {"p1/d1"}
    # KRT was asked with the licence number from personal.
    verify = [c for c in dep.calls("krt") if c["path"] == "/api/v1/drivers/verify"]
    assert verify[-1]["body"] == {"id": "ID0000001", "licence_number": "7701000001"}


def test_the_binding_belongs_to_the_licence_so_another_profile_with_it_is_bound_too(dep):
    dep.driver("p1", "d1", licence="7701000002", registry_id="ID0000002")
    dep.driver("p2", "d9", licence="7701000002")
    assert dep.bind("p1", "d1", "ID0000002").status_code == 200
    assert dep.bound("p2", "d9").json_body == {"bound": True}


def test_an_id_of_another_licence_is_refused_with_a_code_the_app_shows(dep):
    dep.driver("p1", "d1", licence="7701000003", registry_id="ID0000003")
    dep.driver("p1", "d2", licence="7701000004", registry_id="ID0000004")
    answer = dep.bind("p1", "d2", "ID0000003")
    assert answer.status_code == 400
    assert answer.json_body["code"] == "id_mismatch"
    assert dep.bound("p1", "d2").json_body == {"bound": False}


@pytest.mark.parametrize("bad", ["ab12345", "ID-0001", "12345", "A" * 33, "ID 00001"])
def test_an_id_out_of_the_configured_format_is_a_400_without_asking_krt(dep, bad):
    dep.driver("p1", "d1", licence="7701000005")
    answer = dep.bind("p1", "d1", bad)
    assert answer.status_code == 400 and answer.json_body["code"] == "invalid_id"
    assert dep.calls("krt") == []


def test_the_format_is_a_config(dep, client):
    dep.driver("p1", "d1", licence="7701000006", registry_id="77-AB-01")
    assert dep.bind("p1", "d1", "77-AB-01").json_body["code"] == "invalid_id"
    answer = client.http.put("/internal/v1/configs/deptrans_id_pattern", headers={"Content-Type": "application/json"},
                             body=json.dumps({"value": r"^[0-9A-Z-]{6,32}$"}))
    assert answer.status_code == 200, answer.body
    assert dep.bind("p1", "d1", "77-AB-01").status_code == 200


@pytest.mark.parametrize("down", ["krt", "personal", "driver_profiles"])
def test_an_upstream_down_is_a_503_and_nothing_is_saved(dep, down):
    pd_id = dep.driver("p1", "d1", licence="7701000007", registry_id="ID0000007")
    dep.fault(down, "error", status=503)
    answer = dep.bind("p1", "d1", "ID0000007")
    assert answer.status_code == 503, answer.body
    assert set(answer.json_body) == {"code", "message"}
    assert DriverProfile.count(pd_id) == 0
    dep.heal(down)
    assert dep.bind("p1", "d1", "ID0000007").status_code == 200


def test_krt_credentials_missing_is_a_503_not_a_500(dep, aws_mock):
    from chalicelib.core import aws
    from chalicelib.deptrans import krt

    aws.client("ssm").delete_parameter(Name=krt.credentials_parameter())
    krt.forget()  # a new process: it reads the (now missing) parameter afresh
    krt.credentials_parameter()
    dep.driver("p1", "d1", licence="7701000008", registry_id="ID0000008")
    answer = dep.bind("p1", "d1", "ID0000008")
    assert answer.status_code == 503 and answer.json_body["code"] == "krt_credentials_unavailable"


def test_a_profile_without_a_licence_is_a_404(dep):
    dep.driver("p1", "d1", licence=None)
    assert dep.bind("p1", "d1", "ID0000009").status_code == 404
    assert dep.bound("p1", "d1").status_code == 404
    assert dep.bound("p1", "nobody").status_code == 404


def test_bad_bodies_are_4xx_in_the_error_shape(dep, driver_auth):
    dep.driver("p1", "d1", licence="7701000010")
    headers = {**driver_auth("p1", "d1"), "Content-Type": "application/json"}
    for body in ["", "[]", "{", json.dumps({}), json.dumps({"id": 5}), json.dumps({"id": "A" * 100})]:
        answer = dep.client.http.post(ID_PATH, headers=headers, body=body)
        assert answer.status_code == 400, (body, answer.body)
        assert {"code", "message"} <= set(answer.json_body)


def test_no_identity_is_a_401(dep):
    assert dep.client.http.get(ID_PATH).status_code == 401


def test_the_id_and_the_licence_number_never_leave_in_answers_or_logs(dep, app_logs):
    dep.driver("p1", "d1", licence="7701999999", registry_id="SECRETID77")
    answers = [dep.bind("p1", "d1", "SECRETID77"), dep.bound("p1", "d1")]
    dep.driver("p1", "d2", licence="7701888888")
    answers.append(dep.bind("p1", "d2", "SECRETID77"))  # a mismatch is logged
    for answer in answers:
        assert "SECRETID77" not in answer.body.decode() and "7701999999" not in answer.body.decode()
    text = "\n".join(app_logs.lines)
    assert "deptrans.id_bound" in text and "deptrans.id_mismatch" in text
    for secret in ("SECRETID77", "7701999999", "7701888888"):
        assert secret not in text
