"""The household web app in a real Chromium, against the real daemon and bridge (tests/household.py).

FACEGATE_SCREENSHOTS=docs/screenshots saves each page as the flow reaches it (docs/web.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from household import PAGES, VISITOR, HouseholdDoor, frames

SHOTS = os.environ.get("FACEGATE_SCREENSHOTS")


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def log_in(page: Any, door: HouseholdDoor, password: str | None = None) -> None:
    page.goto(door.url + "/login")
    page.fill("#password", password or door.password)
    with page.expect_navigation():
        page.click("#login")


def test_log_in_enroll_watch_an_attempt_label_it_and_see_the_report_change(page, household_door):
    door = household_door
    page.goto(door.url + "/")
    assert page.url.endswith("/login")
    shot(page, "login")
    log_in(page, household_door)
    assert page.url == door.url + "/", page.content()[:1500]
    page.wait_for_selector("#lock")

    page.goto(door.url + "/report?period=all")
    page.wait_for_selector("#labelled")
    labelled_before = int(page.inner_text("#labelled"))

    enroll_the_visitor(page, door)
    label_an_attempt(page, door)
    switch_face_unlock_off_and_on(page, door)

    # The report counts the new label.
    page.goto(door.url + "/report?period=all")
    page.wait_for_selector("#labelled")
    assert int(page.inner_text("#labelled")) == labelled_before + 1
    shot(page, "report")
    bulk_label_the_rest(page, door)
    apply_a_threshold_and_a_rule(page, door)


def enroll_the_visitor(page: Any, door: HouseholdDoor) -> None:
    """From uploaded photos (their session-1 frames); the replay then shows them let in, live."""
    page.goto(door.url + "/enroll")
    page.fill("#name", VISITOR)
    page.set_input_files("#photos", [str(p) for p in frames(VISITOR, "01")])
    page.click("#enroll")
    page.wait_for_selector("#attempts")
    assert "template(s) added" in page.inner_text("#flash")
    shot(page, "enroll")
    if SHOTS:  # as a phone shows it
        page.set_viewport_size({"width": 390, "height": 844})
        shot(page, "enroll-phone")
        page.set_viewport_size({"width": 1100, "height": 800})
    page.goto(door.url + "/people")
    names = page.locator("#people td.name").all_inner_texts()
    assert VISITOR in names
    shot(page, "people")

    page.goto(door.url + "/")
    page.wait_for_selector(f"#decisions tr.ok td.who:text-is('{VISITOR}')", timeout=60_000)
    shot(page, "status")


def label_an_attempt(page: Any, door: HouseholdDoor) -> None:
    # Review: say who it was; the answer leaves the list and lands in the labels CSV.
    page.goto(door.url + "/review")
    row = page.locator("#review tr[data-event]").filter(has=page.locator("button.was")).first
    event_id = row.get_attribute("data-event")
    shot(page, "review")
    link = page.locator("#review a[href^='/review/template']").first
    if SHOTS and link.count():  # the confirmation page, for docs/web.md
        page.goto(door.url + link.get_attribute("href"))
        page.wait_for_selector("#add-template")
        shot(page, "template")
        page.goto(door.url + "/review")
        row = page.locator(f"#row-{event_id}")
    row.locator("button.was").click()
    page.wait_for_selector(f"#row-{event_id}", state="detached")
    labels = (door.web_dir / "labels.csv").read_text()
    assert re.search(rf"^{event_id},\S+$", labels, re.M)


def bulk_label_the_rest(page: Any, door: HouseholdDoor) -> None:
    """Select all, one answer for them all: each ticked decision is a line of the labels CSV."""
    page.goto(door.url + "/review")
    ids = page.locator("#review tr[data-event]").evaluate_all(
        "rows => rows.map(r => r.dataset.event)"
    )
    assert ids
    page.check("#select-all")
    assert page.locator("input[name=event_id]:checked").count() == len(ids)
    page.select_option("#bulk-truth", VISITOR)  # every attempt of the replay was the visitor
    with page.expect_navigation():
        page.click("#bulk-apply")
    labels = (door.web_dir / "labels.csv").read_text()
    assert all(f"{i},{VISITOR}" in labels for i in ids)


def switch_face_unlock_off_and_on(page: Any, door: HouseholdDoor) -> None:
    """Off: the enrolled visitor is refused with face_unlock_off; on again: let in again."""
    page.goto(door.url + "/")
    with page.expect_navigation():
        page.click("#face-unlock")
    assert page.inner_text("#flash") == "face unlock off"
    page.wait_for_selector("#decisions td:text-is('face_unlock_off')", timeout=60_000)
    with page.expect_navigation():
        page.click("#face-unlock")
    assert page.inner_text("#flash") == "face unlock on"
    with page.expect_navigation():
        page.click("#lock-now")
    assert page.inner_text("#flash") == "locked"


def apply_a_threshold_and_a_rule(page: Any, door: HouseholdDoor) -> None:
    # Applying a threshold asks first, saying what it changes; then the daemon has it.
    page.goto(door.url + "/report?period=all")
    page.fill("#threshold", "0.600")
    page.click("#apply")
    page.wait_for_selector("#confirm-apply")
    assert "0.600" in page.inner_text("h1")
    shot(page, "apply")
    page.click("#confirm-apply")
    page.wait_for_selector("#threshold-now")
    assert page.inner_text("#threshold-now") == "0.600"

    page.goto(door.url + "/access")
    page.fill("#rules", f"people:\n  {VISITOR}:\n    windows: [Mon-Sun 00:00-23:59]\n")
    page.click("#save-rules")
    assert "saved" in page.inner_text("#flash")
    shot(page, "access")
    page.goto(door.url + "/audit")
    actions = page.locator("#audit td:nth-child(3)").all_inner_texts()
    assert {"login", "enroll", "label", "face_unlock", "lock", "threshold", "access_rules"} <= set(
        actions
    )
    shot(page, "audit")


def test_a_logged_out_browser_gets_nothing(page, household_door):
    door = household_door
    for path in PAGES:
        page.goto(door.url + path)
        assert page.url == door.url + "/login", path
    # The same over the app's own self-signed certificate, verified (its SAN names 127.0.0.1).
    status, body = door.get("/people")
    assert status == 200 and b'id="password"' in body and b"0005" not in body
    response = page.request.get(door.url + "/img/face/0005.jpg", max_redirects=0)
    assert response.status == 303
    response = page.request.post(
        door.url + "/people/remove", form={"name": "0005", "confirm": "0005"}
    )
    assert response.status == 401
    assert "0005" in (door.tmp / "state" / "gallery.json").read_text()


def test_a_forged_form_without_its_csrf_token_is_refused(page, household_door):
    door = household_door
    log_in(page, household_door)
    page.goto(door.url + "/people")
    # A form the page did not make: the session cookie goes with it, the CSRF token does not.
    status = page.evaluate(
        """async () => {
            const body = new URLSearchParams({name: '0005', confirm: '0005'});
            const r = await fetch('/people/remove', {method: 'POST', body});
            return r.status;
        }"""
    )
    assert status == 403
    assert page.locator("#people td.name").all_inner_texts() == ["0005"]
    page.reload()
    assert page.locator("#people td.name").all_inner_texts() == ["0005"]


def test_the_login_rate_limit_holds_even_for_the_right_password(page, household_door):
    door = household_door
    for _ in range(5):  # web.login_max_failures
        log_in(page, door, password="not-the-password")
        assert "Wrong password" in page.inner_text("#flash")
    log_in(page, household_door)
    assert page.url.endswith("/login")
    assert "Too many wrong passwords" in page.inner_text("#flash")
    page.goto(door.url + "/")
    assert page.url.endswith("/login")
