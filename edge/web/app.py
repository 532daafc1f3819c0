"""The household's web app: status, enroll, people, review, report and access rules.

In: the config, and the daemon as a :class:`DaemonPort` (the bridge's socket: requests
answered by :mod:`edge.bridge.household`, and every decision as it is made), asked only
through :class:`edge.web.client.DaemonClient` (typed requests and answers,
:mod:`edge.bridge.contract`).  Out: a
FastAPI app of server-rendered pages (Jinja2; htmx for the live parts), served over HTTPS
by :mod:`edge.web.server`.

Every page, image and form needs a session (:mod:`edge.web.auth`); every form carries the
session's CSRF token; every change is written to the audit trail before it is answered.
The app holds no embedding and can ask for none: the daemon answers with names, counts,
decision records and JPEGs.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import logging
import math
import re
import secrets
import tempfile
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

import edge.access
from edge.bridge.contract import (
    MAX_DRILL_MINUTES,
    MAX_PHOTOS,
    ImageAnswer,
    LivenessAnswer,
    Reply,
    threshold_ok,
    threshold_why,
)
from edge.config import Config
from edge.errors import FacegateError
from edge.gallery import validate_name
from edge.images import decode
from edge.jsonfields import as_finite
from edge.text import first_line
from edge.types import REMOTE
from edge.web.auth import LoginLimiter, Passwords, Session, Sessions, csrf_ok
from edge.web.client import DaemonClient, DaemonPort
from edge.web.store import Audit, Mirror

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
COOKIE = "facegate_session"
LOGIN_COOKIE = "facegate_login"
MAX_SIDE = 1280  # uploads are scaled down to this before they go to the daemon
# Remote commands are not faces at the door: nothing to review.
REMOTE_REASONS = tuple(sorted(str(r) for r in REMOTE))
TRUTHS = {"impostor": "a stranger", "attack": "a photo or screen attack"}
PERIODS = {
    "7": "the last 7 days",
    "30": "the last 30 days",
    "365": "the last year",
    "all": "everything",
}
# The rules file's format, as edge.access documents it (its docstring's indented example).
RULES_EXAMPLE = textwrap.dedent(
    "\n".join(line for line in (edge.access.__doc__ or "").splitlines() if line.startswith("    "))
)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


__all__ = ["DaemonPort", "WebState", "create_app"]


@dataclass
class WebState:
    config: Config
    daemon: DaemonPort
    passwords: Passwords
    sessions: Sessions
    limiter: LoginLimiter
    mirror: Mirror
    audit: Audit
    labels: Path
    wall: Callable[[], float]
    images: collections.OrderedDict[str, bytes] = field(default_factory=collections.OrderedDict)
    captures: dict[str, bytes] = field(default_factory=dict)
    reports: dict[tuple[Any, ...], ReportView] = field(default_factory=dict)  # the newest one
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: DaemonClient = field(init=False)  # the one way to the daemon

    def __post_init__(self) -> None:
        self.client = DaemonClient(self.daemon)

    def jpeg(self, key: str, fetch: Callable[[], Reply[ImageAnswer]]) -> bytes | None:
        """An image from the daemon (``fetch``: e.g. a snapshot), kept for the next asking."""
        with self.lock:
            if key in self.images:
                self.images.move_to_end(key)
                return self.images[key]
        res = fetch()
        if not res.ok or res.data is None:
            return None
        data = base64.b64decode(res.data.jpeg_b64)  # valid base64 (the contract)
        with self.lock:
            self.images[key] = data
            while len(self.images) > 256:
                self.images.popitem(last=False)
        return data

    def forget_face(self, name: str) -> None:
        with self.lock:
            self.images.pop("face:" + name, None)

    def record(self, event_id: str) -> dict[str, Any] | None:
        """A decision the app has (fetching the daemon's newest first if it has not)."""
        rec = self.mirror.get(event_id)
        if rec is None:
            self.mirror.sync(self.client.decisions, force=True)
            rec = self.mirror.get(event_id)
        return rec

    def set_liveness_points(
        self, points: dict[str, float], *, address: str
    ) -> Reply[LivenessAnswer]:
        """Ask the daemon to judge liveness at these operating points (score cue -> live
        probability, edge.liveness.SCORE_CUES) from the next attempt on, kept across restarts;
        the change (or its refusal) is in the audit trail before this returns the answer.
        A point that is no finite number is refused here, by the contract, before it is sent."""
        res = self.client.liveness_set(points)
        self.audit.write(
            address,
            "liveness_points",
            res.ok,
            points={k: p if as_finite(p) is not None else repr(p) for k, p in points.items()},
            was=res.data.old if res.data is not None else None,
            result=res.why,
        )
        return res

    def label_map(self) -> dict[str, str]:
        from tools.report.labels import read_labels

        return read_labels(self.labels) if self.labels.exists() else {}


class Ui:
    """What every route shares: the state, the templates, and the session and CSRF checks."""

    def __init__(self, st: WebState) -> None:
        self.st = st
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["quote"] = lambda s: urllib.parse.quote(str(s), safe="")
        self.templates.env.filters["local_time"] = local_time

    @staticmethod
    def address(request: Request) -> str:
        return request.client.host if request.client else "?"

    def page(
        self, request: Request, template: str, status_code: int = 200, **ctx: Any
    ) -> HTMLResponse:
        session: Session | None = getattr(request.state, "session", None)
        if ctx.get("flash") is None:  # a redirect's one-shot message: by its key, never its text
            ctx["flash"] = (
                session.take_flash(request.query_params.get("flash")) if session else None
            )
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "csrf": session.csrf if session else "",
                "nav": template.split(".", maxsplit=1)[0],
                "door": self.st.daemon.state,
                "now": self.st.wall(),  # e.g. a drill's end, in the door's state, is past
                **ctx,
            },
            status_code=status_code,
        )

    async def form(self, request: Request, *, files: int = 0) -> Any:
        """The posted form, once its CSRF token is the session's; else None (refused)."""
        session: Session | None = request.state.session
        data = await request.form(max_files=files, max_fields=400)
        given = data.get("csrf") or request.headers.get("x-csrf-token")
        if session is None or not csrf_ok(session, given if isinstance(given, str) else None):
            await run_in_threadpool(
                self.st.audit.write,
                self.address(request),
                "csrf_refused",
                False,
                path=request.url.path,
            )
            return None
        return data

    @staticmethod
    def redirect(request: Request, url: str, message: Any = None) -> RedirectResponse:
        """A redirect to ``url`` whose page shows ``message`` once (kept in the session, the
        URL carrying only its key)."""
        session: Session | None = getattr(request.state, "session", None)
        if message and session is not None:
            sep = "&" if "?" in url else "?"
            url += sep + urllib.parse.urlencode({"flash": session.put_flash(str(message))})
        return RedirectResponse(url, status_code=303)

    @staticmethod
    def forged() -> Response:
        return Response(
            "refused: the form has no valid CSRF token (reload the page)", status_code=403
        )


def local_time(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A record's time (ISO 8601 UTC, or a Unix time) in the household's time zone: the
    system's local one (the door's, as its clock shows)."""
    try:
        if isinstance(value, (int, float)):
            t = dt.datetime.fromtimestamp(float(value), dt.UTC)
        else:
            t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError):
        return str(value)[:19].replace("T", " ")
    return t.astimezone().strftime(fmt)


ROUTES: tuple[Callable[[FastAPI, Ui], None], ...]  # set below the route groups


def create_app(
    config: Config,
    daemon: DaemonPort,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> FastAPI:
    w = config.web
    state_dir = Path(w.state_dir)
    st = WebState(
        config=config,
        daemon=daemon,
        passwords=Passwords(state_dir),
        sessions=Sessions(
            max_age_s=w.session_minutes * 60, idle_s=w.idle_minutes * 60, clock=clock
        ),
        limiter=LoginLimiter(w.login_max_failures, w.login_lockout_s, clock),
        mirror=Mirror(state_dir, clock),
        audit=Audit(state_dir, wall),
        labels=state_dir / "labels.csv",
        wall=wall,
    )
    daemon.listeners.append(st.mirror.on_message)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = st
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    max_body = int(w.upload_max_mb * (1 << 20))

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        """No page, image or API without a session; security headers on everything."""
        path = request.url.path
        open_path = path.startswith("/static/") or path == "/login"
        session = st.sessions.get(request.cookies.get(COOKIE))
        length = request.headers.get("content-length")
        if request.method != "GET" and length is None:
            # A body of unknown length (chunked) could be any size: browsers always say it.
            response: Response = Response("a request body needs a Content-Length", status_code=411)
        elif length is not None and (not length.isdigit() or int(length) > max_body):
            response = Response("upload too large", status_code=413)
        elif session is None and not open_path:
            if request.method == "GET" and "hx-request" not in request.headers:
                response = RedirectResponse("/login", status_code=303)
            else:
                response = Response(
                    "log in first", status_code=401, headers={"HX-Redirect": "/login"}
                )
        else:
            request.state.session = session
            response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    ui = Ui(st)
    for routes in ROUTES:
        routes(app, ui)
    return app


def _login_routes(app: FastAPI, ui: Ui) -> None:
    st = ui.st

    @app.get("/login")
    async def login_page(request: Request) -> Response:
        # On the event loop, never waiting for a thread: daemon requests filling the thread
        # pool cannot keep anyone from the login page.
        # The token stays while its cookie does: a second load of this page (or the browser's
        # own request for a favicon, sent here) must not invalidate the form already shown.
        token = request.cookies.get(LOGIN_COOKIE) or ""
        if not re.fullmatch(r"[A-Za-z0-9_-]{32}", token):
            token = secrets.token_urlsafe(24)
        response = ui.page(request, "login.html", login_csrf=token)
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, secure=True, samesite="strict", max_age=3600
        )
        return response

    @app.post("/login")
    async def login(request: Request) -> Response:
        who = ui.address(request)
        data = await request.form(max_files=0, max_fields=10)
        cookie, given = request.cookies.get(LOGIN_COOKIE), data.get("login_csrf")
        if not cookie or not isinstance(given, str) or not secrets.compare_digest(cookie, given):
            return ui.forged()  # not a login attempt (and not audited: anyone can send these)
        # argon2 and the audit's fsync off the event loop: the other pages stay served
        return await run_in_threadpool(attempt, request, who, cookie, data.get("password"))

    def attempt(request: Request, who: str, cookie: str, password: Any) -> Response:
        locked = st.limiter.lockout(who)
        if locked is not None:
            wait, first = locked
            if first:  # one audit line per lockout, however many addresses try during it
                st.audit.write(who, "login_locked_out", False)
            return ui.page(
                request,
                "login.html",
                429,
                login_csrf=cookie,
                flash=f"Too many wrong passwords: try again in {math.ceil(wait / 60)} min.",
            )
        if not isinstance(password, str) or not st.passwords.check(password):
            st.limiter.failed(who)
            st.audit.write(who, "login", False)
            return ui.page(request, "login.html", 401, login_csrf=cookie, flash="Wrong password.")
        st.limiter.succeeded(who)
        session = st.sessions.new(who)
        st.audit.write(who, "login", True)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, session.token, httponly=True, secure=True, samesite="strict")
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        if await ui.form(request) is None:
            return ui.forged()
        st.sessions.end(request.cookies.get(COOKIE))
        await run_in_threadpool(st.audit.write, ui.address(request), "logout", True)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response


def _status_routes(app: FastAPI, ui: Ui) -> None:
    st = ui.st

    def recent(n: int) -> list[dict[str, Any]]:
        st.mirror.sync(st.client.decisions)
        return list(reversed(st.mirror.records()[-n:]))

    @app.get("/")
    def status(request: Request) -> Response:
        return ui.page(
            request, "status.html", decisions=recent(10), max_drill_minutes=MAX_DRILL_MINUTES
        )

    @app.get("/status/panel")
    def status_panel(request: Request) -> Response:
        return ui.page(request, "status_panel.html", decisions=recent(10))

    @app.get("/api/status")
    def api_status(request: Request) -> dict[str, Any]:
        return {"door": st.daemon.state, "decisions": recent(10)}

    # The door itself: lock it now, switch face unlock off or on. Never an unlock: that is
    # the face's (or, opt-in, Home Assistant's with its code), not a web page's.
    @app.post("/door/lock")
    async def lock(request: Request) -> Response:
        if await ui.form(request) is None:
            return ui.forged()
        return await run_in_threadpool(door_command, request, "lock", st.client.lock)

    @app.post("/door/face_unlock")
    async def face_unlock(request: Request) -> Response:
        data = await ui.form(request)
        if data is None:
            return ui.forged()
        value = data.get("value") == "on"
        return await run_in_threadpool(
            lambda: door_command(
                request, "face_unlock", lambda: st.client.face_unlock(value), value=value
            )
        )

    # An attack drill: for the next N minutes no face is let in (attack_drill); 0 stops it.
    @app.post("/door/drill")
    async def drill(request: Request) -> Response:
        data = await ui.form(request)
        if data is None:
            return ui.forged()
        raw = str(data.get("minutes", ""))
        if not re.fullmatch(r"[0-9]{1,3}", raw):
            return Response(
                f"minutes: a whole number from 0 to {MAX_DRILL_MINUTES}", status_code=422
            )
        minutes = int(raw)
        return await run_in_threadpool(
            lambda: door_command(
                request, "drill", lambda: st.client.drill(minutes), minutes=minutes
            )
        )

    def door_command(
        request: Request, action: str, send: Callable[[], Reply[Any]], **fields: Any
    ) -> Response:
        res = send()
        st.audit.write(ui.address(request), action, res.ok, result=res.why, **fields)
        return ui.redirect(request, "/", res.why)


def _images_routes(app: FastAPI, ui: Ui) -> None:
    st = ui.st

    def jpeg_response(data: bytes | None) -> Response:
        if data is None:
            return Response("no such image", status_code=404)
        return Response(
            data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"}
        )

    @app.get("/img/snapshot/{event_id}.jpg")
    def snapshot(event_id: str) -> Response:
        return jpeg_response(st.jpeg("snap:" + event_id, lambda: st.client.snapshot(event_id)))

    @app.get("/img/face/{name}.jpg")
    def face(name: str) -> Response:
        return jpeg_response(st.jpeg("face:" + name, lambda: st.client.face(name)))

    @app.get("/img/capture/{ident}.jpg")
    def capture_image(ident: str) -> Response:
        return jpeg_response(st.captures.get(ident))


def _enroll_routes(app: FastAPI, ui: Ui) -> None:
    st = ui.st

    @app.get("/enroll")
    def enroll_page(request: Request, name: str = "", replace: str = "") -> Response:
        return ui.page(
            request, "enroll.html", name=name, replace=replace == "1", attempts=None, captured=None
        )

    @app.post("/enroll")
    async def enroll(request: Request) -> Response:
        data = await ui.form(request, files=MAX_PHOTOS)
        if data is None:
            return ui.forged()
        name = str(data.get("name", "")).strip()
        replace = data.get("replace") == "1"
        photos, numbers, problems = await _photos(data, st)
        return await run_in_threadpool(
            lambda: enrolled(request, name, replace, (photos, numbers, problems))
        )

    def enrolled(
        request: Request,
        name: str,
        replace: bool,
        uploads: tuple[list[str], list[int], list[dict[str, Any]]],
    ) -> Response:
        photos, numbers, problems = uploads
        flash, ok, attempts = None, False, problems
        try:
            validate_name(name)
        except FacegateError as exc:
            flash = first_line(exc)
        else:
            if not photos:
                flash = "Choose at least one photo (or capture one at the door)."
            elif len(photos) > MAX_PHOTOS:
                flash = f"At most {MAX_PHOTOS} photos at a time."
            else:
                res = st.client.enroll(name, photos, replace=replace)
                ok, flash = res.ok, res.why
                answered = res.data.attempts if res.data is not None else ()
                attempts = sorted(
                    problems
                    + [
                        {"photo": numbers[a.photo - 1], "ok": a.ok, "why": a.why}
                        for a in answered
                        if a.photo <= len(numbers)
                    ],
                    key=lambda a: a["photo"],
                )
                st.audit.write(
                    ui.address(request),
                    "enroll",
                    ok,
                    person=name,
                    photos=len(photos),
                    replace=replace,
                    result=flash,
                )
                st.forget_face(name)
        return ui.page(
            request,
            "enroll.html",
            200 if ok else 422,
            name=name,
            replace=replace,
            attempts=attempts,
            flash=flash,
            ok=ok,
            captured=None,
        )

    @app.post("/enroll/capture")
    async def enroll_capture(request: Request) -> Response:
        data = await ui.form(request)
        if data is None:
            return ui.forged()
        res = await run_in_threadpool(st.client.capture)
        captured = None
        if res.ok and res.data is not None:
            ident = secrets.token_urlsafe(12)
            with st.lock:
                st.captures[ident] = base64.b64decode(res.data.jpeg_b64)
                while len(st.captures) > MAX_PHOTOS:
                    st.captures.pop(next(iter(st.captures)))
            captured = {"id": ident, "ok": res.data.ok, "why": res.why}
        name = str(data.get("name", ""))
        return ui.page(
            request,
            "enroll.html",
            name=name,
            replace=data.get("replace") == "1",
            attempts=None,
            captured=captured,
            flash=None if captured else res.why,
        )


def _people_routes(app: FastAPI, ui: Ui) -> None:
    st = ui.st

    @app.get("/people")
    def people(request: Request) -> Response:
        res = st.client.people()
        return ui.page(
            request,
            "people.html",
            people=res.data.people if res.data is not None else (),
            ok=res.ok,
            why=res.why,
            current=res.data.model_current if res.data is not None else True,
        )

    def back(request: Request, why: Any) -> Response:
        return ui.redirect(request, "/people", why)

    def change(
        request: Request, action: str, person: str, send: Callable[[], Reply[Any]], **fields: Any
    ) -> Response:
        """Ask the daemon for a change to ``person`` (``send``), audit it, and show the People
        page again."""
        res = send()
        ok, why = res.ok, res.why
        st.audit.write(ui.address(request), action, ok, person=person, result=why, **fields)
        st.forget_face(person)
        return back(request, why)

    @app.post("/people/rename")
    async def rename(request: Request) -> Response:
        data = await ui.form(request)
        if data is None:
            return ui.forged()
        old, new = str(data.get("old", "")), str(data.get("new", "")).strip()
        return await run_in_threadpool(
            lambda: change(
                request, "rename", old, lambda: st.client.rename(old, new), old=old, new=new
            )
        )

    @app.post("/people/reenroll")
    async def reenroll(request: Request) -> Response:
        data = await ui.form(request)
        if data is None:
            return ui.forged()
        name = str(data.get("name", ""))
        return await run_in_threadpool(
            lambda: change(request, "reenroll", name, lambda: st.client.reenroll(name), name=name)
        )

    @app.post("/people/remove")
    async def remove(request: Request) -> Response:
        data = await ui.form(request)
        if data is None:
            return ui.forged()
        name = str(data.get("name", ""))
        if data.get("confirm") != name:
            return back(request, f"Not removed: type {name} to confirm.")
        return await run_in_threadpool(
            lambda: change(request, "remove", name, lambda: st.client.remove(name), name=name)
        )


def _review_routes(app: FastAPI, ui: Ui) -> None:
    st = ui.st

    def unlabelled(limit: int = 60) -> list[dict[str, Any]]:
        st.mirror.sync(st.client.decisions)
        done = st.label_map()
        out = [
            r
            for r in st.mirror.records()
            if r["event_id"] not in done and r.get("reason") not in REMOTE_REASONS
        ]
        return list(reversed(out))[:limit]

    @app.get("/review")
    def review(request: Request) -> Response:
        rows = unlabelled()
        answer = st.client.people().data
        people = answer.people if answer is not None else ()
        faces = {p.name for p in people if p.face}
        truths = {p.name: f"that was {p.name}" for p in people} | TRUTHS
        return ui.page(
            request,
            "review.html",
            rows=rows,
            truths=truths,
            left=len(rows),
            faces=faces,
            floor=st.config.match.threshold_floor,  # below it, no "add this as a template"
        )

    @app.post("/review/label")
    async def label(request: Request) -> Response:
        from tools.report.labels import append_label

        data = await ui.form(request)
        if data is None:
            return ui.forged()
        truth = str(data.get("truth", ""))
        ids = [i for i in data.getlist("event_id") if isinstance(i, str)]
        known = {r["event_id"]: r for r in st.mirror.records()}
        if truth not in TRUTHS:
            try:
                validate_name(truth)
            except FacegateError as exc:
                return Response(first_line(exc), status_code=422)
        written = [i for i in ids if i in known]

        def write() -> None:
            for ident in written:
                append_label(st.labels, ident, truth)
            st.audit.write(ui.address(request), "label", True, truth=truth, decisions=len(written))

        await run_in_threadpool(write)
        if "hx-request" in request.headers:
            return HTMLResponse("")  # htmx drops the row
        return RedirectResponse("/review", status_code=303)

    @app.get("/review/template")
    def template_confirm(request: Request, event_id: str) -> Response:
        rec = st.record(event_id)
        if rec is None or not rec.get("best") or not rec.get("snapshot"):
            return Response("no such refused attempt with a snapshot", status_code=404)
        return ui.page(request, "template.html", rec=rec, floor=st.config.match.threshold_floor)

    @app.post("/review/template")
    async def template_add(request: Request) -> Response:
        data = await ui.form(request)
        if data is None:
            return ui.forged()
        return await run_in_threadpool(
            add_template, request, str(data.get("event_id", "")), data.get("confirm") == "yes"
        )

    def add_template(request: Request, event_id: str, confirmed: bool) -> Response:
        from tools.report.labels import append_label

        rec = st.record(event_id)
        if rec is None or not rec.get("best") or not confirmed:
            return Response("not confirmed", status_code=422)
        name = str(rec["best"])
        event_id = str(rec["event_id"])
        snap = st.jpeg("snap:" + event_id, lambda: st.client.snapshot(event_id))
        if snap is None:
            return Response("the snapshot is gone", status_code=404)
        # The daemon checks it passes the enrollment gates and resembles the person's
        # templates (match.threshold_floor): the app's confirmation is not enough.
        res = st.client.add_template(name, _padded(snap))
        ok, why = res.ok, res.why
        if ok:
            append_label(st.labels, rec["event_id"], name)
        st.audit.write(
            ui.address(request),
            "add_template",
            ok,
            person=name,
            decision=rec["event_id"],
            result=why,
        )
        return ui.page(
            request,
            "template.html",
            200 if ok else 422,
            rec=rec,
            floor=st.config.match.threshold_floor,
            done=ok,
            flash=("Added: " if ok else "Not added: ") + str(why),
        )


def _report_routes(app: FastAPI, ui: Ui) -> None:
    st = ui.st

    @app.get("/report")
    def report_page(request: Request, period: str = "30") -> Response:
        period = period if period in PERIODS else "30"
        from tools.report.wording import recommendation_statement

        view = _report(st, period)
        rep, text, error = view.report, view.text, view.error
        settings = st.client.settings().data
        statement = recommendation_statement(rep.recommendation) if rep is not None else ""
        return ui.page(
            request,
            "report.html",
            rep=rep,
            text=text,
            error=error,
            period=period,
            periods=PERIODS,
            settings=settings,
            statement=statement,
            lv=_liveness_view(rep.door_liveness if rep is not None else None),
        )

    @app.get("/report/plot/{period}/{name}.png")
    def report_plot(period: str, name: str) -> Response:
        if period not in PERIODS:
            return Response("no such period", status_code=404)
        view = _report(st, period)
        plot = view.plot(name)
        if plot is None:
            return Response("no such plot", status_code=404)
        return Response(plot, media_type="image/png")

    @app.post("/report/apply")
    async def apply_threshold(request: Request) -> Response:
        data = await ui.form(request)
        if data is None:
            return ui.forged()
        try:
            value = float(str(data.get("threshold", "")))
        except ValueError:
            return Response("threshold: not a number", status_code=422)
        floor = st.config.match.threshold_floor
        # "nan", "inf" and "-0.0" parse as floats: none of them is a threshold
        if not threshold_ok(value, floor):
            return Response(threshold_why(floor), status_code=422)
        period = str(data.get("period", "30"))
        return await run_in_threadpool(
            threshold_apply, request, value, period, data.get("confirm") == "yes"
        )

    def threshold_apply(request: Request, value: float, period: str, confirmed: bool) -> Response:
        settings = st.client.settings().data
        current = settings.min_cosine_similarity if settings is not None else None
        if not confirmed:
            rep = _report(st, period if period in PERIODS else "30").report
            at = _at_threshold(rep, value) if rep is not None else None
            now = (
                _at_threshold(rep, current if current is not None else value)
                if rep is not None
                else None
            )
            return ui.page(
                request,
                "apply.html",
                value=value,
                settings=settings,
                at=at,
                now=now,
                period=period,
                periods=PERIODS,
            )
        res = st.client.threshold_set(value)
        st.audit.write(
            ui.address(request),
            "threshold",
            res.ok,
            value=value,
            was=current,
            result=res.why,
        )
        return ui.redirect(request, f"/report?period={urllib.parse.quote(period)}", res.why)

    @app.post("/report/liveness")
    async def apply_liveness(request: Request) -> Response:
        """The recommended liveness operating points: what they change first, then (confirmed) set."""
        data = await ui.form(request)
        if data is None:
            return ui.forged()
        points = _posted_points(data)
        if isinstance(points, str):
            return Response(points, status_code=422)
        period = str(data.get("period", "30"))
        period = period if period in PERIODS else "30"
        if data.get("confirm") != "yes":
            view = await run_in_threadpool(_report, st, period)
            settings = (await run_in_threadpool(st.client.settings)).data
            dl = view.report.door_liveness if view.report is not None else None
            door = settings.liveness_points if settings is not None else None
            return ui.page(
                request,
                "apply_liveness.html",
                points=points,
                points_text=_points_text(points),
                changes=_liveness_changes(dl, points),
                door_points=_points_text(door) if isinstance(door, dict) and door else None,
                period=period,
                periods=PERIODS,
            )
        res = await run_in_threadpool(
            lambda: st.set_liveness_points(points, address=ui.address(request))
        )
        return ui.redirect(request, f"/report?period={urllib.parse.quote(period)}", res.why)


def _access_routes(app: FastAPI, ui: Ui) -> None:
    st = ui.st

    @app.get("/access")
    def access_page(request: Request) -> Response:
        res = st.client.rules_get()
        return ui.page(
            request,
            "access.html",
            example=RULES_EXAMPLE,
            text=res.data.text if res.data is not None else "",
            path=res.data.path if res.data is not None else None,
            why=res.why,
            errors=None,
        )

    @app.post("/access")
    async def access_save(request: Request) -> Response:
        data = await ui.form(request)
        if data is None:
            return ui.forged()
        text = str(data.get("text", "")).replace("\r\n", "\n")
        return await run_in_threadpool(rules_save, request, text)

    def rules_save(request: Request, text: str) -> Response:
        res = st.client.rules_set(text)
        ok = res.ok
        st.audit.write(ui.address(request), "access_rules", ok, result=res.why)
        rules = st.client.rules_get().data
        return ui.page(
            request,
            "access.html",
            200 if ok else 422,
            example=RULES_EXAMPLE,
            text=text,
            path=rules.path if rules is not None else None,
            why=None,
            errors=None if ok else res.why,
            flash=res.why if ok else None,
        )


def _audit_routes(app: FastAPI, ui: Ui) -> None:
    st = ui.st

    @app.get("/audit")
    def audit(request: Request) -> Response:
        return ui.page(request, "audit.html", entries=st.audit.last(200))


ROUTES = (
    _login_routes,
    _status_routes,
    _images_routes,
    _enroll_routes,
    _people_routes,
    _review_routes,
    _report_routes,
    _access_routes,
    _audit_routes,
)


async def _photos(data: Any, st: WebState) -> tuple[list[str], list[int], list[dict[str, Any]]]:
    """The uploads (then the ticked captures) ready for the daemon, each one's number on the
    page, and the uploads refused already (not an image, too many pixels) with why."""
    photos: list[str] = []
    numbers: list[int] = []
    problems: list[dict[str, Any]] = []
    uploads = [u for u in data.getlist("photos") if not isinstance(u, str) and u.filename]
    for i, upload in enumerate(uploads, 1):
        raw = await upload.read()
        try:
            photos.append(await run_in_threadpool(_shrink, raw, f"photo {i} ({upload.filename})"))
            numbers.append(i)
        except FacegateError as exc:
            problems.append({"photo": i, "ok": False, "why": first_line(exc)})
    n = len(uploads)
    for ident in data.getlist("capture"):
        if isinstance(ident, str) and ident in st.captures:
            photos.append(base64.b64encode(st.captures[ident]).decode())
            n += 1
            numbers.append(n)
    return photos, numbers, problems


def _shrink(raw: bytes, where: str) -> str:
    """An upload, decoded (bounded), scaled to at most MAX_SIDE, as base64 JPEG for the daemon."""
    frame = decode(raw, where)
    rgb = frame.rgb
    scale = MAX_SIDE / max(rgb.shape[:2])
    if scale < 1:
        rgb = cv2.resize(
            rgb,
            (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
            interpolation=cv2.INTER_AREA,
        )
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
    )
    if not ok:
        raise FacegateError(f"{where}: cannot be re-encoded")
    return base64.b64encode(buf.tobytes()).decode()


def _padded(jpeg: bytes) -> str:
    """A snapshot (the aligned face) on a plain border, so the detector finds it as in a photo."""
    frame = decode(jpeg, "snapshot")
    rgb = np.ascontiguousarray(frame.rgb)
    h, w = rgb.shape[:2]
    big = cv2.copyMakeBorder(rgb, h, h, w, w, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    big = cv2.resize(big, (big.shape[1] * 2, big.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
    )
    if not ok:
        raise FacegateError("snapshot: cannot be re-encoded")
    return base64.b64encode(buf.tobytes()).decode()


@dataclass
class ReportView:
    """One period's report, its text, or why there is none; its plots drawn once, when asked."""

    report: Any
    text: str = ""
    error: str | None = None
    _plots: dict[str, bytes] | None = None

    def plot(self, name: str) -> bytes | None:
        if self.report is None:
            return None
        if self._plots is None:
            from tools.report.plots import all_plots

            self._plots = all_plots(self.report)
        return self._plots.get(name)


def _report(st: WebState, period: str) -> ReportView:
    """tools/report on the app's copy of the log and its labels, for ``period`` (cached until either changes)."""
    import json

    from tools.report import ReportError
    from tools.report.collect import collect
    from tools.report.labels import CsvLabeller, NoLabels
    from tools.report.metrics import build_report
    from tools.report.render import to_text

    st.mirror.sync(st.client.decisions)
    records = st.mirror.records()
    since = "" if period == "all" else _iso(st.wall() - int(period) * 86400)
    chosen = [r for r in records if r["time"] >= since]
    labels_seen = (
        (st.labels.stat().st_mtime_ns, st.labels.stat().st_size) if st.labels.exists() else ()
    )
    key = (period, len(records), chosen[0]["event_id"] if chosen else "", labels_seen)
    with st.lock:
        if key in st.reports:
            return st.reports[key]
    if not chosen:
        return ReportView(None, error=f"No decisions in {PERIODS[period]}.")
    labels = st.label_map()
    labeller = CsvLabeller(labels, f"{st.labels.name} (the review page)") if labels else NoLabels()
    with tempfile.NamedTemporaryFile("w", dir=st.mirror.path.parent, suffix=".jsonl") as f:
        for r in chosen:
            f.write(json.dumps(r) + "\n")
        f.flush()
        try:
            cols = collect([f.name], labeller, strict=False, progress=False)
            rep = build_report(cols, label_source=labeller.description)
        except ReportError as exc:
            return ReportView(None, error=first_line(exc))
    view = ReportView(rep, to_text(rep))
    with st.lock:
        st.reports.clear()
        st.reports[key] = view
    return view


def _iso(t: float) -> str:
    from edge.decisions import iso_utc_ms

    return iso_utc_ms(t)


def _liveness_view(dl: Any) -> dict[str, Any] | None:
    """The Report page's liveness at this door (tools.report.door_liveness.DoorLiveness), or None."""
    if dl is None:
        return None
    from tools.report.wording import liveness_points_statement, point_text

    rule = dl.rule
    rows = [
        (c.title, point_text(c.point), c.apcer.text(), c.bpcer.text())
        for c in dl.cues
        if c.in_force
    ]
    rows.append(
        (
            "all together",
            _points_text(rule.points),
            rule.attacks_accepted.text(),
            rule.live_refused.text(),
        )
    )
    advice = dl.advice
    return {
        "shown": dl.attacks > 0,
        "attacks": dl.attacks,
        "drilled": dl.attacks_by_drill,
        "live": dl.live,
        "rows": rows,
        "statement": liveness_points_statement(dl),
        "apply": dict(advice.together.points) if advice.changes else None,
    }


def _points_text(points: dict[str, Any]) -> str:
    """``texture 0.02, MiniFASNet 0.20``."""
    from tools.report.door_liveness import cue_title
    from tools.report.wording import point_text

    return ", ".join(
        f"{cue_title(k)} {point_text(p) if isinstance(p, float) else p}" for k, p in points.items()
    )


def _posted_points(data: Any) -> dict[str, float] | str:
    """The form's ``point_<cue>`` fields as score cue -> live probability, or why they are refused."""
    from edge.liveness import SCORE_CUES

    points: dict[str, float] = {}
    for key in data:
        if not key.startswith("point_"):
            continue
        cue = key.removeprefix("point_")
        if cue not in SCORE_CUES:
            return f"{key}: not a liveness score cue ({', '.join(SCORE_CUES)})"
        try:
            p = float(str(data.get(key)))
        except ValueError:
            return f"{key}: not a number"
        if not 0.0 < p < 1.0:  # NaN fails too
            return f"{key}: a number strictly between 0 and 1"
        points[cue] = p
    return points or "no operating point given"


def _liveness_changes(dl: Any, points: dict[str, float]) -> list[tuple[str, bool]]:
    """What ``points`` would have done to the reviewed attempts, a line per cue and one for all
    of them together; each with whether it lets more attacks in than now.  Empty without any."""
    if dl is None or dl.rule.attacks_accepted.n + dl.rule.live_refused.n == 0:
        return []
    from tools.report.door_liveness import cue_title
    from tools.report.wording import point_change

    now = dl.rule
    judged = {k: p for k, p in points.items() if k in dl.points}
    lines = []
    for cue, p in judged.items():
        at = dl.at({cue: p})
        line = point_change(cue_title(cue), dl.points[cue], p, now, at, rates=False)
        lines.append((line, at.attacks_accepted.k > now.attacks_accepted.k))
    for cue in points.keys() - judged.keys():
        lines.append((f"{cue_title(cue)}: not judged in these attempts' logs", False))
    if len(judged) > 1:
        at = dl.at(judged)
        live, att = at.live_refused, at.attacks_accepted
        lines.append(
            (
                f"All together: live attempts refused {now.live_refused.k}/{live.n} -> "
                f"{live.k}/{live.n}, attacks accepted {now.attacks_accepted.k}/{att.n} -> "
                f"{att.k}/{att.n}",
                att.k > now.attacks_accepted.k,
            )
        )
    return lines


def _at_threshold(rep: Any, value: float) -> Any:
    """The chosen period's labelled attempts as they would have been decided at ``value``
    (a Confusion: the sweep re-decides each attempt on its logged score)."""
    return rep.sweep.at(value)
