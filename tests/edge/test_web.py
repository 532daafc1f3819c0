"""The web app through FastAPI's test client, over a real Household and a real door's log (conftest ``web``)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import PASSWORD
from household import NUAA, PAGES, frames

from edge.gallery import Gallery
from edge.web.app import HERE
from edge.web.auth import LoginLimiter, Passwords, Sessions, set_password
from edge.web.server import announce_first_password, prepare_state_dir

HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def log_in(client: Any, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token, page.text
    return client.post(
        "/login", data={"login_csrf": token.group(1), "password": password}, follow_redirects=False
    )


def csrf(client: Any, path: str = "/") -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert m
    return m.group(1)


def audit(web: Any) -> list[dict[str, Any]]:
    path = Path(web.config.web.state_dir) / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def gallery(web: Any) -> Gallery:
    return Gallery.load(web.config.gallery.path)


def records(web: Any) -> list[dict[str, Any]]:
    return [json.loads(x) for x in Path(web.config.log.decisions).read_text().splitlines()]


def routes(web: Any, method: str) -> list[str]:
    """Every route of the app for ``method``, its path parameters filled in."""
    out = []
    for r in web.app.routes:
        if method in getattr(r, "methods", ()) and r.path != "/login":
            out.append(
                re.sub(r"\{(\w+)\}", lambda m: "all" if m.group(1) == "period" else "x", r.path)
            )
    return out


# --------------------------------------------------------------------------- nothing without a login


def test_every_page_image_and_api_needs_a_login(web):
    gets, posts = routes(web, "GET"), routes(web, "POST")
    assert set(PAGES) <= set(gets)
    assert "/img/snapshot/x.jpg" in gets and "/img/face/x.jpg" in gets
    for path in gets:
        r = web.client.get(path, follow_redirects=False)
        assert (r.status_code, r.headers.get("location")) == (303, "/login"), path
        assert "jpeg" not in r.headers.get("content-type", "")
    for path in posts:
        assert web.client.post(path, data={}, follow_redirects=False).status_code == 401, path
    assert web.client.get("/login").status_code == 200
    assert gallery(web).names() == ["0005"]


def test_every_form_without_its_csrf_token_is_refused(web):
    assert log_in(web.client).status_code == 303
    before = Path(web.config.gallery.path).read_bytes()
    for path in routes(web, "POST"):
        for token in ({}, {"csrf": "forged"}):
            r = web.client.post(path, data={"name": "0005", "confirm": "0005", **token})
            assert r.status_code == 403, path
    assert Path(web.config.gallery.path).read_bytes() == before
    refused = [e for e in audit(web) if e["action"] == "csrf_refused"]
    assert len(refused) == 2 * len(routes(web, "POST"))
    # The session's own token passes (here: removing 0005, confirmed by name).
    r = web.client.post(
        "/people/remove", data={"name": "0005", "confirm": "0005", "csrf": csrf(web.client)}
    )
    assert r.status_code == 200 and "removed 0005" in r.text
    assert gallery(web).names() == []


def test_a_login_form_without_its_token_is_refused(web):
    r = web.client.post("/login", data={"password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403 and "facegate_session" not in r.headers.get("set-cookie", "")
    assert not (Path(web.config.web.state_dir) / "audit.jsonl").exists()


def test_a_body_of_unknown_length_is_refused_before_it_is_read(web):
    log_in(web.client)

    def chunks():
        yield b"csrf=x&name=0005"

    r = web.client.post("/people/remove", content=chunks())
    assert r.status_code == 411 and gallery(web).names() == ["0005"]


def test_the_login_rate_limit_holds_then_lifts_on_virtual_time(web):
    lockout = web.config.web.login_lockout_s
    for _ in range(web.config.web.login_max_failures):
        assert log_in(web.client, "wrong").status_code == 401
    r = log_in(web.client)
    assert r.status_code == 429 and "Too many wrong passwords" in r.text
    web.clock.t += lockout - 1
    for _ in range(20):
        assert log_in(web.client).status_code == 429
    web.clock.t += 2
    assert log_in(web.client).status_code == 303
    assert [e["ok"] for e in audit(web) if e["action"] == "login"][-1] is True
    # One audit line per lockout, however many tries it refused: no one fills the disk from outside.
    assert sum(e["action"] == "login_locked_out" for e in audit(web)) == 1


def test_many_addresses_together_are_limited_too():
    clock = [0.0]
    limiter = LoginLimiter(3, 60.0, clock=lambda: clock[0])
    for i in range(29):
        limiter.failed(f"10.0.0.{i}")
    assert limiter.locked("10.0.1.1") is None
    limiter.failed("10.0.0.99")
    assert limiter.locked("10.0.1.1") is not None  # 30 = 10 x 3 from everyone
    clock[0] = 61.0
    assert limiter.locked("10.0.1.1") is None


def test_a_session_ends_when_idle_at_its_age_and_at_logout(web):
    log_in(web.client)
    assert web.client.get("/", follow_redirects=False).status_code == 200
    web.clock.t += web.config.web.idle_minutes * 60 + 1
    assert web.client.get("/", follow_redirects=False).status_code == 303
    log_in(web.client)
    for _ in range(int(web.config.web.session_minutes // web.config.web.idle_minutes) + 1):
        web.clock.t += web.config.web.idle_minutes * 60 - 1
        web.client.get("/")
    assert web.client.get("/", follow_redirects=False).status_code == 303
    log_in(web.client)
    r = web.client.post("/logout", data={"csrf": csrf(web.client)}, follow_redirects=False)
    assert r.status_code == 303
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_secure_and_every_response_is_locked_down(web):
    cookie = log_in(web.client).headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    r = web.client.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"


def test_the_first_password_is_written_once_0600_never_printed_or_logged(tmp_path, capsys, caplog):
    d = prepare_state_dir(tmp_path / "web")
    outside = tmp_path / "outside.txt"
    outside.write_text("theirs\n")
    (d / "first-password.txt").symlink_to(outside)  # planted: never written through
    with caplog.at_level("DEBUG"):
        announce_first_password(d)
    out = capsys.readouterr()
    where = d / "first-password.txt"
    assert f"first password is in {where}" in out.out
    assert not where.is_symlink() and outside.read_text() == "theirs\n"
    password = where.read_text().strip()
    assert len(password) >= 16 and where.stat().st_mode & 0o777 == 0o600
    assert password not in out.out + out.err + caplog.text
    stored = (d / "password.argon2").read_text()
    assert stored.startswith("$argon2id$") and password not in stored
    assert (d / "password.argon2").stat().st_mode & 0o777 == 0o600
    announce_first_password(d)
    assert capsys.readouterr().out == "" and where.read_text().strip() == password
    assert Passwords(d).check(password) and not Passwords(d).check("guess")
    set_password(d, "a new one, set by facegate web-password")
    assert not where.exists()  # no stale first password left behind


def test_a_password_hash_others_may_read_or_a_writable_state_dir_is_refused(tmp_path):
    d = prepare_state_dir(tmp_path / "web")
    set_password(d, "x" * 20)
    (d / "password.argon2").chmod(0o644)
    with pytest.raises(
        ValueError, match=r"password.argon2: web.state_dir: group or others may read"
    ):
        Passwords(d)
    d.chmod(0o777)
    with pytest.raises(ValueError, match=r"web.state_dir: group or others may write it"):
        prepare_state_dir(d)


def test_sessions_are_random_and_their_own():
    s = Sessions(max_age_s=60, idle_s=60)
    a, b = s.new("1"), s.new("1")
    assert a.token != b.token and a.csrf != b.csrf and len(a.token) >= 40
    assert s.get(a.token) is a and s.get("guess") is None


# --------------------------------------------------------------------------- the pages


def enroll(web: Any, files: list[tuple[str, bytes]], name: str = "0009", **extra: str) -> Any:
    return web.client.post(
        "/enroll",
        data={"name": name, "csrf": csrf(web.client, "/enroll"), **extra},
        files=[("photos", (n, data, "image/jpeg")) for n, data in files],
    )


def test_enroll_from_uploads_says_why_each_bad_photo_is_refused(web):
    log_in(web.client)
    blank = cv2.imencode(".jpg", np.full((480, 640, 3), 90, np.uint8))[1].tobytes()
    two = cv2.imencode(".jpg", np.hstack([cv2.imread(str(frames("0005", "01")[0]))] * 2))[
        1
    ].tobytes()
    good = [(p.name, p.read_bytes()) for p in frames("0009", "01")]
    # A PNG header declaring 100,000 x 100,000 pixels: refused before anything is decoded.
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + b"\x00\x00\x00\rIHDR"
        + (100_000).to_bytes(4, "big") * 2
        + b"\x08\x02\x00\x00\x00"
    )
    files = [
        ("blank.jpg", blank),
        ("notes.txt", b"not an image"),
        ("two.jpg", two),
        ("bomb.png", bomb),
    ]
    r = enroll(web, [*files, *good])
    assert r.status_code == 200, r.text
    rows = re.findall(r"<tr class=\"(ok|deny)\"><td>(\d+)</td><td>([^<]*)</td>", r.text)
    assert rows[0][2] == "no face found"
    assert "not a decodable image" in rows[1][2]
    assert rows[2][2].startswith("2 faces")
    assert "100000 x 100000 pixels" in rows[3][2] and "refusing to decode it" in rows[3][2]
    assert [x[0] for x in rows[4:]] == ["ok"] * len(good)
    assert gallery(web).count("0009") == len(good)
    entry = audit(web)[-1]
    assert (entry["action"], entry["ok"], entry["person"]) == ("enroll", True, "0009")
    assert web.client.get("/img/face/0009.jpg").headers["content-type"] == "image/jpeg"


def test_an_enrollment_with_no_usable_photo_changes_nothing(web):
    log_in(web.client)
    blank = cv2.imencode(".jpg", np.full((480, 640, 3), 90, np.uint8))[1].tobytes()
    r = enroll(web, [("blank.jpg", blank)])
    assert r.status_code == 422 and "nothing enrolled" in r.text
    assert gallery(web).names() == ["0005"]
    assert audit(web)[-1]["ok"] is False


def test_an_upload_over_the_limit_is_refused_before_it_is_read(web):
    log_in(web.client)
    big = b"\xff" * int(web.config.web.upload_max_mb * (1 << 20) + 1)
    assert enroll(web, [("big.jpg", big)]).status_code == 413


def test_people_are_renamed_and_removed_only_when_confirmed(web):
    log_in(web.client)
    page = web.client.get("/people").text
    assert '<td class="name">0005</td>' in page and "<td>5</td>" in page
    r = web.client.post(
        "/people/rename", data={"old": "0005", "new": "alice", "csrf": csrf(web.client)}
    )
    assert "renamed 0005 to alice" in r.text and gallery(web).names() == ["alice"]
    r = web.client.post(
        "/people/remove", data={"name": "alice", "confirm": "al", "csrf": csrf(web.client)}
    )
    assert "Not removed" in r.text and gallery(web).names() == ["alice"]
    r = web.client.post(
        "/people/remove", data={"name": "alice", "confirm": "alice", "csrf": csrf(web.client)}
    )
    assert gallery(web).names() == []
    assert [e["action"] for e in audit(web)][-2:] == ["rename", "remove"]


def test_review_answers_are_the_labels_csv_tools_report_reads(web):
    from tools.report.labels import read_labels

    log_in(web.client)
    logged = records(web)
    assert [r["decision"] for r in logged] == ["unlock", "deny"]
    page = web.client.get("/review").text
    for r in logged:
        assert f'data-event="{r["event_id"]}"' in page
        assert f"/img/snapshot/{r['event_id']}.jpg" in page
    assert web.client.get(f"/img/snapshot/{logged[1]['event_id']}.jpg").content[:2] == b"\xff\xd8"
    # The bulk form offers each enrolled person, a stranger and an attack, and no answer by default.
    assert (
        '<option value="">choose who it was' in page
        and '<option value="0005">that was 0005' in page
    )
    token = csrf(web.client, "/review")
    r = web.client.post(
        "/review/label", data={"event_id": [logged[1]["event_id"]], "truth": "", "csrf": token}
    )
    assert r.status_code == 422 and not (Path(web.config.web.state_dir) / "labels.csv").exists()
    # One answer by its htmx button, one by the bulk form.
    r = web.client.post(
        "/review/label",
        data={"event_id": logged[0]["event_id"], "truth": "0005"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert r.status_code == 200 and r.text == ""
    web.client.post(
        "/review/label",
        data={"event_id": [logged[1]["event_id"]], "truth": "impostor", "csrf": token},
    )
    labels = read_labels(Path(web.config.web.state_dir) / "labels.csv")
    assert labels == {logged[0]["event_id"]: "0005", logged[1]["event_id"]: "impostor"}
    assert "Nothing to review" in web.client.get("/review").text
    report = web.client.get("/report?period=all").text
    assert re.search(r'id="labelled">2<', report)
    assert re.search(r'id="tp">1<', report) and re.search(r'id="tn">1<', report)
    assert re.search(r'id="false-accepts"[^>]*>0<', report)


def test_that_was_me_adds_a_template_only_after_the_gates_and_a_confirmation(web):
    from tools.report.labels import read_labels

    log_in(web.client)
    let_in, refused = records(web)
    floor = web.config.match.threshold_floor
    assert refused["best_score"] < floor <= let_in["best_score"]
    # The confirmation page shows both faces and the score against the floor.
    r = web.client.get(f"/review/template?event_id={refused['event_id']}")
    assert r.status_code == 200 and "Yes, this was" in r.text
    assert f"/img/snapshot/{refused['event_id']}.jpg" in r.text and "/img/face/0005.jpg" in r.text
    assert f"{refused['best_score']:.3f}" in r.text and f"{floor:.2f}" in r.text
    assert 'id="unlike"' in r.text
    token = csrf(web.client, "/review")
    r = web.client.post("/review/template", data={"event_id": refused["event_id"], "csrf": token})
    assert r.status_code == 422 and gallery(web).count("0005") == 5
    # A stranger's face (0009, refused) is not added to 0005's templates, even confirmed:
    # the daemon measures it against them (match.threshold_floor).
    r = web.client.post(
        "/review/template", data={"event_id": refused["event_id"], "confirm": "yes", "csrf": token}
    )
    entry = audit(web)[-1]
    assert (entry["action"], entry["ok"]) == ("add_template", False)
    assert r.status_code == 422 and "does not resemble 0005" in r.text
    assert gallery(web).count("0005") == 5
    assert not (Path(web.config.web.state_dir) / "labels.csv").exists()
    # 0005's own face passes the gates and resembles their templates: one more template.
    r = web.client.post(
        "/review/template", data={"event_id": let_in["event_id"], "confirm": "yes", "csrf": token}
    )
    entry = audit(web)[-1]
    assert entry["action"] == "add_template" and entry["person"] == "0005"
    assert r.status_code == 200 and "Added: " in r.text and entry["ok"] is True
    assert gallery(web).count("0005") == 6
    assert read_labels(Path(web.config.web.state_dir) / "labels.csv") == {
        let_in["event_id"]: "0005"
    }


def test_the_daemon_refuses_a_template_unlike_the_person_whatever_the_app_says(web):
    from edge.web.app import _padded

    refused = records(web)[1]
    snap = web.daemon.request("snapshot", event_id=refused["event_id"])["data"]["jpeg_b64"]
    import base64

    res = web.daemon.request("add_template", name="0005", photo=_padded(base64.b64decode(snap)))
    assert res["ok"] is False and res["data"]["score"] < web.config.match.threshold_floor
    assert gallery(web).count("0005") == 5


def test_review_selects_no_answer_and_shows_times_in_the_household_time_zone(web, monkeypatch):
    log_in(web.client)
    refused = records(web)[1]
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+05:30, no summer time
    time.tzset()
    try:
        page = web.client.get("/review").text
        audit_page = web.client.get("/audit").text
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    row = page[page.index(f'id="row-{refused["event_id"]}"') :]
    row = row[: row.index("</tr>")]
    # The nearest person is not the first, default answer; no "add as a template" for a face
    # unlike them (below match.threshold_floor).
    assert row.index('class="stranger"') < row.index('class="was"')
    assert "selected" not in page and "autofocus" not in page
    assert "add this as a template" not in row
    import datetime as dt

    local = dt.datetime.fromisoformat(refused["time"].replace("Z", "+00:00")) + dt.timedelta(
        hours=5, minutes=30
    )
    assert local.strftime("%Y-%m-%d %H:%M:%S") in row
    assert refused["time"][:19].replace("T", " ") not in row
    entry = audit(web)[-1]["time"]
    shown = dt.datetime.fromisoformat(entry.replace("Z", "+00:00")) + dt.timedelta(
        hours=5, minutes=30
    )
    assert shown.strftime("%Y-%m-%d %H:%M") in audit_page


def test_a_threshold_is_applied_only_after_a_confirmation_saying_what_it_changes(web):
    log_in(web.client)
    token = csrf(web.client, "/report")
    first = web.policy.match.min_cosine_similarity
    r = web.client.post("/report/apply", data={"threshold": "0.9", "period": "all", "csrf": token})
    assert r.status_code == 200 and "Change the threshold from" in r.text and "stricter" in r.text
    assert web.policy.match.min_cosine_similarity == first
    settings = Path(web.config.gallery.path).with_name("settings.json")
    assert not settings.exists()
    r = web.client.post(
        "/report/apply", data={"threshold": "0.9", "period": "all", "confirm": "yes", "csrf": token}
    )
    assert web.policy.match.min_cosine_similarity == 0.9
    assert json.loads(settings.read_text()) == {"min_cosine_similarity": 0.9}
    assert audit(web)[-1]["action"] == "threshold" and audit(web)[-1]["was"] == first
    assert re.search(r'id="threshold-now">0.900<', r.text)
    r = web.client.post(
        "/report/apply", data={"threshold": "1.5", "period": "all", "confirm": "yes", "csrf": token}
    )
    assert web.policy.match.min_cosine_similarity == 0.9
    # "-0.0" once opened the door to a never-enrolled face; "nan" and "inf" were a 500
    for bad in ("-0.0", "0", "0.1", "0.41", "nan", "inf", "-inf", "1e309"):
        for confirm in ("", "yes"):
            r = web.client.post(
                "/report/apply",
                data={"threshold": bad, "period": "all", "confirm": confirm, "csrf": token},
            )
            assert r.status_code == 422 and "match.threshold_floor" in r.text, bad
    assert web.policy.match.min_cosine_similarity == 0.9


def test_access_rules_are_checked_by_the_daemon_before_they_are_written(web):
    log_in(web.client)
    rules = Path(web.config.access.rules)
    token = csrf(web.client, "/access")
    r = web.client.post(
        "/access",
        data={"text": "people:\n  bob:\n    windows: [Someday 25:00-26:00]\n", "csrf": token},
    )
    assert r.status_code == 422 and "people.bob.windows" in r.text
    assert rules.read_text() == "people: {}\n"
    good = "timezone: Europe/Berlin\npeople:\n  bob:\n    disabled: true\n"
    r = web.client.post("/access", data={"text": good, "csrf": token})
    assert r.status_code == 200 and "saved" in r.text and rules.read_text() == good
    assert audit(web)[-1]["action"] == "access_rules"


def test_no_answer_of_the_daemon_ever_carries_an_embedding(web):
    """Walk every page once, and every answer the daemon gave the app: no vector of numbers anywhere."""
    log_in(web.client)
    for path in (
        "/",
        "/people",
        "/review",
        "/report?period=all",
        "/access",
        "/audit",
        "/api/status",
    ):
        assert web.client.get(path).status_code == 200, path
    enroll(web, [(p.name, p.read_bytes()) for p in frames("0009", "01")])

    def vectors(x: Any) -> int:
        if isinstance(x, list):
            return int(len(x) >= 16 and all(isinstance(v, float) for v in x)) + sum(map(vectors, x))
        if isinstance(x, dict):
            return sum(vectors(v) for v in x.values())
        return 0

    actions = {json.dumps(a)[:0] or a.get("why", "") for a in web.daemon.answers}
    assert web.daemon.answers and actions
    assert sum(vectors(a) for a in web.daemon.answers) == 0
    templates = gallery(web).matrix()[0]
    text = json.dumps(web.daemon.answers)
    assert f"{templates[0][0]:.5f}"[:-1] not in text


def test_the_vendored_htmx_is_the_published_file():
    data = (HERE / "static" / "htmx.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256


def test_status_shows_the_door_and_the_last_decisions_with_thumbnails(web):
    log_in(web.client)
    r = web.client.get("/status/panel", headers={"HX-Request": "true"})
    assert 'id="lock">LOCKED<' in r.text
    for rec in records(web):
        assert f"/img/snapshot/{rec['event_id']}.jpg" in r.text
    web.daemon._state = None
    assert "not connected" in web.client.get("/").text
    assert NUAA.is_dir()


def test_the_status_page_starts_and_stops_an_attack_drill_and_the_audit_records_it(web):
    log_in(web.client)
    assert 'id="drill-start"' in web.client.get("/").text and not web.policy.drilling()
    token = csrf(web.client)
    r = web.client.post("/door/drill", data={"minutes": "5", "csrf": token}, follow_redirects=False)
    assert (
        r.status_code == 303 and "attack drill until" in web.client.get(r.headers["location"]).text
    )
    until = web.policy.drill_until
    assert web.policy.drilling() and abs(until - time.time() - 300.0) < 60.0
    saved = Path(web.config.gallery.path).with_name("drill.json")
    assert json.loads(saved.read_text()) == {"until": until}
    entry = audit(web)[-1]
    assert (entry["action"], entry["ok"], entry["minutes"]) == ("drill", True, 5)
    # The daemon's state says so (the bridge's copy); the page offers to stop it.
    web.daemon._state = {**(web.daemon.state or {}), "drill_until": until}
    page = web.client.get("/").text
    assert 'id="drill-stop"' in page and 'id="drill-start"' not in page
    panel = web.client.get("/status/panel", headers={"HX-Request": "true"}).text
    assert 'id="drill-until"' in panel
    # Minutes the form cannot mean are refused here; 31 by the daemon (and audited).
    for bad in ("five", "", "-1", "1.5", "\u00b2"):
        r = web.client.post("/door/drill", data={"minutes": bad, "csrf": token})
        assert r.status_code == 422, bad
    r = web.client.post(
        "/door/drill", data={"minutes": "31", "csrf": token}, follow_redirects=False
    )
    assert r.status_code == 303 and (audit(web)[-1]["ok"], audit(web)[-1]["minutes"]) == (False, 31)
    assert web.policy.drill_until == until
    r = web.client.post("/door/drill", data={"minutes": "0", "csrf": token}, follow_redirects=False)
    assert "attack drill stopped" in web.client.get(r.headers["location"]).text
    assert not web.policy.drilling()
    assert (audit(web)[-1]["action"], audit(web)[-1]["minutes"]) == ("drill", 0)
    assert json.loads(saved.read_text()) == {"until": None}
    web.daemon._state = {**(web.daemon.state or {}), "drill_until": None}
    assert 'id="drill-start"' in web.client.get("/").text


def test_liveness_points_set_from_the_app_are_applied_and_audited(web):
    from dataclasses import replace

    st = web.app.state.web
    settings = Path(web.config.gallery.path).with_name("settings.json")
    res = st.set_liveness_points({"texture": 0.3}, address="192.0.2.7")
    assert not res.ok and "liveness is off" in res.why and not settings.exists()
    assert audit(web)[-1]["action"] == "liveness_points" and not audit(web)[-1]["ok"]
    web.policy.liveness = replace(web.config.liveness, enabled=True)  # as a door with it on
    res = st.set_liveness_points({"texture": 0.3, "minifasnet": 0.5}, address="192.0.2.7")
    assert res.ok and web.policy.liveness.min_live_probability == 0.3
    entry = audit(web)[-1]
    assert (entry["from"], entry["action"], entry["ok"]) == ("192.0.2.7", "liveness_points", True)
    assert entry["points"] == {"texture": 0.3, "minifasnet": 0.5}
    assert entry["was"] == {"texture": 0.018, "minifasnet": 0.46}
    assert json.loads(settings.read_text())["liveness_points"] == {
        "texture": 0.3,
        "minifasnet": 0.5,
    }
    answer = st.client.settings().data
    assert answer.liveness_points == {"texture": 0.3, "minifasnet": 0.5}
    # Not JSON the socket carries: refused in the app, and still audited.
    for bad in (float("nan"), float("inf"), True):
        res = st.set_liveness_points({"texture": bad}, address="192.0.2.7")
        assert not res.ok and "points.texture" in res.why
        assert audit(web)[-1]["points"] == {"texture": repr(bad)} and not audit(web)[-1]["ok"]
    assert web.policy.liveness.min_live_probability == 0.3


def test_the_report_recommends_liveness_points_and_applies_them_only_when_confirmed(web):
    """A drill's photos (unlabelled) and the household's reviewed attempts: MiniFASNet refuses 9
    of 40 live attempts at 0.46; at 0.15 it refuses none and still every photo."""
    from dataclasses import replace

    from liveness_log import lv_record

    from tools.report.labels import append_label

    st = web.app.state.web
    points = {"texture": 0.46, "minifasnet": 0.46}
    attempts = [(f"x{i}", 0.7, 0.06 + 0.002 * i, True) for i in range(12)]
    attempts += [(f"a{i}", 0.8, 0.3 if i < 9 else 0.9, False) for i in range(40)]
    for n, (ident, texture, minifasnet, drill) in enumerate(attempts):
        cues = {"texture": texture, "minifasnet": minifasnet}
        record = lv_record(
            ident, cues, points=points, drill=drill, t=st.wall() - 3600 + n, person="0005"
        )
        st.mirror.add(record)
        if not drill:
            append_label(st.labels, ident, "0005")
    log_in(web.client)
    page = web.client.get("/report?period=all").text
    assert re.search(
        r"<td>MiniFASNet</td><td>0.46</td><td>0.00% \(95% CI 0.00-24.25%, 0/12\)</td><td>22.50%",
        page,
    )
    assert "MiniFASNet 0.46 -&gt; 0.15: live attempts refused 22.50%" in page
    assert 'name="point_minifasnet" value="0.15"' in page
    # texture refuses nobody and no photo here: nothing to gain by moving it, so it stays
    assert 'name="point_texture" value="0.46"' in page
    token = csrf(web.client, "/report")
    form = {"point_texture": "0.46", "point_minifasnet": "0.15", "period": "all", "csrf": token}
    r = web.client.post("/report/liveness", data=form)
    assert r.status_code == 200 and "Change the liveness operating points?" in r.text
    assert (
        "MiniFASNet 0.46 -&gt; 0.15: live attempts refused 9/40 -&gt; 0/40, attacks accepted "
        "0/12 -&gt; 0/12 at this door&#39;s reviewed attempts"
    ) in r.text
    assert (
        "All together: live attempts refused 9/40 -&gt; 0/40, attacks accepted 0/12 -&gt; 0/12"
        in r.text
    )
    assert 'class="bad"' not in r.text
    settings = Path(web.config.gallery.path).with_name("settings.json")
    assert not settings.exists() and all(e["action"] != "liveness_points" for e in audit(web))
    # A point that lets the photos through says so.
    r = web.client.post("/report/liveness", data={**form, "point_minifasnet": "0.05"})
    assert re.search(
        r'<li class="bad">MiniFASNet 0.46 -&gt; 0.05: [^<]*attacks accepted 0/12 -&gt; 12/12',
        r.text,
    )
    # Points the daemon would not take are refused before anything is asked.
    for bad in ({"point_texture": "1.5"}, {"point_eyes": "0.2"}, {"point_texture": "nan"}, {}):
        r = web.client.post("/report/liveness", data={**bad, "period": "all", "csrf": token})
        assert r.status_code == 422, bad
    assert not settings.exists()
    web.policy.liveness = replace(web.config.liveness, enabled=True)  # as a door with it on
    r = web.client.post("/report/liveness", data={**form, "confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/report?period=all&flash=")
    live = web.policy.liveness
    assert (live.min_live_probability, live.minifasnet_min_live_probability) == (0.46, 0.15)
    entry = audit(web)[-1]
    assert (entry["action"], entry["ok"]) == ("liveness_points", True)
    assert entry["points"] == {"texture": 0.46, "minifasnet": 0.15}


def test_a_capture_at_the_door_camera_is_judged_shown_and_enrolled_when_ticked(web):
    from edge.images import read_image

    log_in(web.client)
    r = web.client.post(
        "/enroll/capture", data={"name": "0009", "csrf": csrf(web.client, "/enroll")}
    )
    assert "no frame from the camera yet" in r.text
    shots = iter([read_image(frames("0009", "01")[0]), read_image(frames("0005", "02")[0])])
    current = [next(shots)]
    web.daemon.household.last_frame = lambda: current[0]
    r = web.client.post(
        "/enroll/capture", data={"name": "0009", "csrf": csrf(web.client, "/enroll")}
    )
    ident = re.search(r"/img/capture/([\w-]+)\.jpg", r.text)
    assert ident and "Good: ok" in r.text
    assert web.client.get(f"/img/capture/{ident.group(1)}.jpg").content[:2] == b"\xff\xd8"
    r = web.client.post(
        "/enroll",
        data={"name": "0009", "capture": ident.group(1), "csrf": csrf(web.client, "/enroll")},
    )
    assert r.status_code == 200 and "1 template(s) added" in r.text
    assert gallery(web).count("0009") == 1
    # A capture id that was never made adds nothing.
    r = web.client.post(
        "/enroll", data={"name": "0009", "capture": "made-up", "csrf": csrf(web.client, "/enroll")}
    )
    assert r.status_code == 422 and gallery(web).count("0009") == 1


def test_a_phone_photo_is_enrolled_the_way_up_its_exif_orientation_says(web):
    """Phones store the sensor's pixels and an EXIF orientation; the face is upright only once it is applied."""
    import io

    from PIL import Image

    log_in(web.client)
    rotated = []
    for p in frames("0009", "01"):
        sideways = np.ascontiguousarray(
            np.rot90(cv2.imread(str(p))[:, :, ::-1])
        )  # as the sensor saw it
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
        buf = io.BytesIO()
        Image.fromarray(sideways).save(buf, "JPEG", quality=92, exif=exif.tobytes())
        rotated.append((p.name, buf.getvalue()))
    r = enroll(web, rotated)
    assert r.status_code == 200, r.text
    assert gallery(web).count("0009") == len(rotated)


def test_a_person_enrolled_here_is_re_enrolled_from_the_kept_photos_in_one_click(web):
    log_in(web.client)
    enroll(web, [(p.name, p.read_bytes()) for p in frames("0009", "01")])
    page = web.client.get("/people").text
    assert 'action="/people/reenroll"' in page and "<td>5 <form" in page
    r = web.client.post("/people/reenroll", data={"name": "0009", "csrf": csrf(web.client)})
    assert "0009: 5 template(s) added, 5 in all" in r.text
    assert (audit(web)[-1]["action"], audit(web)[-1]["ok"]) == ("reenroll", True)
    r = web.client.post("/people/reenroll", data={"name": "0005", "csrf": csrf(web.client)})
    assert "no kept photos" in r.text and gallery(web).count("0005") == 5


def test_the_format_the_access_page_shows_is_edge_access_own_and_loads():
    from edge.access import parse_rules
    from edge.web.app import RULES_EXAMPLE

    rules = parse_rules(RULES_EXAMPLE, "the access page")
    assert sorted(rules.people) == ["alice", "bob", "carol"]


def test_a_web_port_in_use_stops_the_bridge_with_one_line_before_it_serves(tmp_path):
    import socket
    import subprocess
    import sys

    import yaml

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    cfg = tmp_path / "door.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "mqtt": {"enabled": True, "broker": False, "socket": str(tmp_path / "s.sock")},
                "web": {
                    "enabled": True,
                    "listen": "127.0.0.1",
                    "port": port,
                    "state_dir": str(tmp_path / "web"),
                },
            }
        )
    )
    try:
        r = subprocess.run(
            [sys.executable, "-m", "edge", "-c", str(cfg), "bridge"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        busy.close()
    assert r.returncode == 3, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"door.yaml: web.port: cannot listen on 127.0.0.1:{port}" in lines[0]
    assert not (tmp_path / "web" / "password.argon2").exists() and "password" not in r.stdout


# --------------------------------------------------------------------------- red-team fixes


def test_a_flash_message_comes_from_the_server_never_from_the_url(web):
    lie = "Your session expired: call 555-0100 to unlock"
    assert lie not in web.client.get("/login", params={"flash": lie}).text
    log_in(web.client)
    for page in ("/", "/people", "/report", "/review", "/access", "/audit"):
        assert lie not in web.client.get(page, params={"flash": lie}).text, page
    # A redirect's message still shows, once: the URL carries only its key.
    token = csrf(web.client)
    r = web.client.post("/door/lock", data={"csrf": token}, follow_redirects=False)
    location = r.headers["location"]
    assert r.status_code == 303 and location.startswith("/?flash=")
    why = audit(web)[-1]["result"]
    assert why and urllib.parse.quote_plus(why) not in location
    page = web.client.get(location)
    assert f'id="flash">{why}</p>' in page.text.replace("&#39;", "'")
    assert 'id="flash"' not in web.client.get(location).text  # one-shot
    r = web.client.post("/people/remove", data={"name": "0005", "csrf": token})
    assert "Not removed: type 0005 to confirm." in r.text


def test_a_slow_daemon_request_does_not_hold_up_the_login_page(web, monkeypatch):
    asked = web.daemon.request

    def slow(action: str, **fields: Any) -> dict[str, Any]:
        if action == "rename":
            time.sleep(3.0)
        return asked(action, **fields)

    monkeypatch.setattr(web.daemon, "request", slow)
    log_in(web.client)
    token = csrf(web.client)
    renamed: list[Any] = []
    t = threading.Thread(
        target=lambda: renamed.append(
            web.client.post("/people/rename", data={"old": "0005", "new": "0006", "csrf": token})
        )
    )
    t.start()
    time.sleep(0.5)  # the rename is waiting for the daemon now
    start = time.monotonic()
    assert web.client.get("/login").status_code == 200
    assert time.monotonic() - start < 1.5
    t.join(10)
    assert renamed and renamed[0].status_code == 200 and "0006" in renamed[0].text


def test_the_login_limiter_stays_bounded_and_reports_a_lockout_once():
    clock = [0.0]
    limiter = LoginLimiter(3, 60.0, clock=lambda: clock[0], max_addresses=500)
    refusals = []
    for i in range(5000):
        limiter.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        for _ in range(2):
            refusals.append(limiter.lockout(f"10.9.{i // 256 % 256}.{i % 256}"))
    assert limiter.size() <= 2 * 500
    refusals += [limiter.lockout(f"192.168.0.{i}") for i in range(200)]
    assert all(f is not None for f in refusals[60:])  # 30 failures: all addresses locked out
    # ... and only that lockout's first refusal is to be audited, whoever tries during it.
    assert sum(f[1] for f in refusals if f is not None) == 1
    # Once it has passed, everything expired is forgotten.
    clock[0] = 61.0
    assert limiter.locked("192.168.0.1") is None
    limiter.failed("10.0.0.1")
    assert limiter.size() == 1


def test_many_addresses_during_a_lockout_write_one_audit_line(web):
    from fastapi.testclient import TestClient

    def client(i: int) -> TestClient:
        return TestClient(web.app, base_url="https://testserver", client=(f"10.0.0.{i}", 1))

    n = web.config.web.login_max_failures
    for i in range(10):  # ten addresses, each just under its own limit: all of them locked out
        with client(i) as c:
            for _ in range(n):
                assert log_in(c, "wrong").status_code == 401
    for i in range(10, 40):
        with client(i) as c:
            assert log_in(c).status_code == 429
    assert sum(e["action"] == "login_locked_out" for e in audit(web)) == 1


def test_the_web_server_is_bounded_and_its_bounds_reach_uvicorn(web):
    from dataclasses import replace

    from edge.web import server as ws

    config = replace(web.config, web=replace(web.config.web, listen="127.0.0.1", port=0))
    srv = ws.WebServer(config, web.daemon)
    try:
        c = srv.config
        assert (c.limit_concurrency, c.backlog, c.timeout_keep_alive, c.loop) == (
            ws.LIMIT_CONCURRENCY,
            ws.BACKLOG,
            ws.KEEP_ALIVE_S,
            "asyncio",  # whose accept goes through the capped socket
        )
        assert isinstance(srv.sock, ws.CappedSocket) and srv.sock.cap == ws.MAX_CONNECTIONS
    finally:
        srv.sock.close()


def test_beyond_the_cap_the_oldest_connections_are_shut_with_one_log_line(caplog):
    """Idle connections (a TLS handshake never finished) cannot keep a new one out."""
    import socket

    from edge.web import server as ws

    ws.OVERLOAD.throttle.reset()
    sock = ws.listen("127.0.0.1", 0, cap=3)
    sock.setblocking(False)
    clients = [socket.create_connection(sock.getsockname()) for _ in range(10)]
    time.sleep(0.2)
    accepted = []
    with caplog.at_level("WARNING"):
        try:
            while True:
                accepted.append(sock.accept()[0])
        except BlockingIOError:
            pass
        # every new connection is taken, and only the newest three stay open
        assert len(accepted) == 10 and sock._open == accepted[-3:]
        # an overload from asyncio's accept: one line, no traceback
        for _ in range(5):
            logging.getLogger("asyncio").error(
                "socket.accept() out of system resource", exc_info=OSError(24, "Too many")
            )
    # the oldest seven were shut down: their clients see the end; the newest are still open
    for c in clients[:7]:
        c.settimeout(2.0)
        assert c.recv(1) == b""
    for c in clients[7:]:
        c.setblocking(False)
        with pytest.raises(BlockingIOError):
            c.recv(1)
    lines = [r for r in caplog.records if "overload" in r.getMessage()]
    assert [r.getMessage() for r in lines] == [
        "web: overload: too many connections at once (the oldest closed)",
        "web: overload: out of descriptors or memory (accept)",
    ]
    assert all(r.exc_info is None for r in lines)
    for s in [*accepted, *clients, sock]:
        s.close()
