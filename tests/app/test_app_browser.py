"""ssmvos app in a real browser (headless Chromium): the demo clip, a box -> GrabCut mask,
propagation, a correction on a later frame, re-propagation, and the exported zip.

Needs the [app] extra, Playwright's Python package and a Chromium binary (Debian's
`chromium`, installed by .ci/run); skips with the reason otherwise.
"""
from __future__ import annotations

import io
import shutil
import socket
import threading
import time
import urllib.request
import zipfile

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the app's extra is not installed: pip install -e '.[app]'")
uvicorn = pytest.importorskip("uvicorn", reason="the app's extra is not installed: pip install -e '.[app]'")
playwright = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")

from conftest import assert_clean_error, run_cli  # noqa: E402
from ssmvos.app.server import AppConfig, create_app  # noqa: E402
from ssmvos.data.io import read_mask  # noqa: E402
from ssmvos.inference.predictor import VideoPredictor  # noqa: E402
from ssmvos.assets import demo_clip  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
TIMEOUT_MS = 300_000  # generous: the network runs on a busy 2-core CPU


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    predictor = VideoPredictor(model, 224, device="cpu")
    port = free_port()
    app = create_app(predictor, AppConfig(demo=True, state_dir=tmp_path_factory.mktemp("app"), port=port))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def page(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        yield pg
        browser.close()


def results(server, sid: str, frames: int) -> list[bytes | None]:
    out = []
    for k in range(frames):
        with urllib.request.urlopen(f"{server[0]}/api/sessions/{sid}/frames/{k}/result") as r:
            out.append(r.read() if r.status == 200 else None)
    return out


def canvas_point(page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of pixel (x, y) of the 854x480 frame shown scaled in the canvas."""
    box = page.locator("#view").bounding_box()
    return box["x"] + x * box["width"] / 854, box["y"] + y * box["height"] / 480


def wait_saved(page, before: int) -> None:
    page.wait_for_function(f"Number(document.getElementById('canvas-wrap').dataset.saved || 0) > {before}")


def saved(page) -> int:
    return int(page.eval_on_selector("#canvas-wrap", "e => Number(e.dataset.saved || 0)"))


def propagate(page, button: str) -> None:
    page.evaluate("document.body.dataset.job = ''")
    page.click(button)
    page.wait_for_function("document.body.dataset.job === 'done'")


def test_box_propagate_correct_repropagate_export(server, page, tmp_path, reference_checkpoint):
    page.goto(server[0])
    page.wait_for_function("document.getElementById('frame-label').textContent.startsWith('frame 1 / 30')")
    sid = page.evaluate("location.hash").split("s=")[1]

    # box -> mask on frame 0 (the tool selected by default), around the demo clip's car
    gt = read_mask(demo_clip()[1]) > 0
    before = saved(page)
    page.mouse.move(*canvas_point(page, 293, 68))
    page.mouse.down()
    page.mouse.move(*canvas_point(page, 500, 200), steps=5)
    page.mouse.move(*canvas_point(page, 674, 301), steps=5)
    page.mouse.up()
    wait_saved(page, before)
    with urllib.request.urlopen(f"{server[0]}/api/sessions/{sid}/frames/0/annotation") as r:
        mask = np.frombuffer(r.read(), np.uint8).reshape(480, 854)
    assert set(np.unique(mask)) == {0, 1}
    assert ((mask > 0) & gt).sum() / ((mask > 0) | gt).sum() > 0.6  # GrabCut found the car

    # propagate forward: every frame gets a result, shown on the page as frames arrive
    propagate(page, "#forward")
    first = results(server, sid, 30)
    assert all(r is not None for r in first)
    assert "Done: 30 frames" in page.inner_text("#status")
    # the current frame shows the mask in the object's palette colour (DAVIS colour 1: red)
    pixel = page.evaluate("Array.from(document.getElementById('view').getContext('2d')"
                          ".getImageData(480, 180, 1, 1).data)")
    assert pixel[0] > pixel[1] + 40 and pixel[0] > pixel[2] + 40
    # the timeline marks the given mask and the 30 computed frames; play moves on, pause stops
    assert page.get_attribute("#timeline", "data-given") == "0"
    assert page.get_attribute("#timeline", "data-computed") == "30"
    page.click("#play")
    page.wait_for_function("!document.getElementById('frame-label').textContent.startsWith('frame 1 /')")
    page.click("#play")
    assert page.inner_text("#play").endswith("Play") and page.evaluate("app.playing") is False

    # go to frame 16, take its result as the mask, correct it with the brush, propagate again
    page.fill("#slider", "15")
    page.dispatch_event("#slider", "input")
    page.wait_for_function("document.getElementById('frame-label').textContent.startsWith('frame 16 / 30')"
                           " && document.getElementById('view').dataset.frame === '15'")
    before = saved(page)
    page.click("#from-result")
    wait_saved(page, before)  # the result taken as the mask is saved before the brush stroke
    page.check('input[name="tool"][value="brush"]')
    before = saved(page)
    page.mouse.move(*canvas_point(page, 100, 400))
    page.mouse.down()
    page.mouse.move(*canvas_point(page, 200, 420), steps=8)
    page.mouse.up()
    wait_saved(page, before)
    with urllib.request.urlopen(f"{server[0]}/api/sessions/{sid}/frames/15/annotation") as r:
        mask15 = np.frombuffer(r.read(), np.uint8).reshape(480, 854)
    propagate(page, "#forward")
    second = results(server, sid, 30)
    assert second[:15] == first[:15]  # frames before the correction are untouched
    assert second[15] != first[15]  # the corrected frame and what follows are recomputed
    info = server[1].state.sessions.get(sid).info()
    job = info["job"]
    assert job["state"] == "done" and job["total"] == 30
    assert job["computed"] == 14  # the network ran on frames 17..30 only (16 is the given mask); the rest were read back

    # export the masks: a zip of 30 palette PNGs named like the frames
    with page.expect_download() as download:
        page.click("#export-zip")
    path = tmp_path / "masks.zip"
    download.value.save_as(path)
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
        assert names == [f"{k:05d}.png" for k in range(30)]
        from PIL import Image

        image = Image.open(io.BytesIO(zf.read("00015.png")))
        assert image.mode == "P" and image.size == (854, 480)
        assert np.asarray(image).max() == 1

    # the session file: `ssmvos segment` takes its masks (frames 0 and 15) and segments the clip
    with page.expect_download() as download:
        page.click("#export-session")
    session = tmp_path / "session.json"
    download.value.save_as(session)
    proc = run_cli("segment", "--frames", demo_clip()[0], "--session", session, "--out", tmp_path / "cli",
                   "--weights", reference_checkpoint, "--input-size", 224, "--device", "cpu", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "1 object(s) in 30 frames" in proc.stdout
    assert (read_mask(tmp_path / "cli" / "00015.png") > 0).sum() == (mask15 > 0).sum()  # its given mask
    session.write_text("{}")
    assert_clean_error(run_cli("segment", "--frames", demo_clip()[0], "--session", session, "--out", tmp_path / "x",
                               "--weights", reference_checkpoint), "not an ssmvos session file")


def annotation(server, sid: str, frame: int) -> np.ndarray | None:
    with urllib.request.urlopen(f"{server[0]}/api/sessions/{sid}/frames/{frame}/annotation") as r:
        return np.frombuffer(r.read(), np.uint8).reshape(480, 854) if r.status == 200 else None


def pixel(page, x: int, y: int) -> list[int]:
    return page.evaluate(f"Array.from(document.getElementById('view').getContext('2d').getImageData({x}, {y}, 1, 1).data)")


def edit(page, action) -> None:
    """Run ``action`` (a mouse or key action that edits the mask) and wait until the server has it."""
    before = saved(page)
    action()
    page.wait_for_function(f"Number(document.getElementById('canvas-wrap').dataset.saved || 0) > {before}"
                           " || document.getElementById('status').classList.contains('error')")
    assert "error" not in (page.get_attribute("#status", "class") or ""), page.inner_text("#status")


def test_undo_objects_points_zoom_fill(server, page):
    pg = page.context.new_page()
    pg.set_default_timeout(60_000)  # no propagation here: GrabCut takes seconds at most
    pg.on("dialog", lambda dialog: dialog.accept())  # deleting an object asks first
    pg.goto(server[0])
    pg.wait_for_function("document.getElementById('frame-label').textContent.startsWith('frame 1 / 30')")
    sid = pg.evaluate("location.hash").split("s=")[1]
    session = server[1].state.sessions.get(sid)

    def stroke(points, size=16):
        pg.fill("#size", str(size))
        pg.mouse.move(*canvas_point(pg, *points[0]))
        pg.mouse.down()
        for p in points[1:]:
            pg.mouse.move(*canvas_point(pg, *p), steps=4)
        pg.mouse.up()

    # undo / redo of a brush stroke (Ctrl+Z, Ctrl+Shift+Z): the server follows
    pg.check('input[name="tool"][value="brush"]')
    edit(pg, lambda: stroke([(100, 100), (200, 100)]))
    drawn = annotation(server, sid, 0)
    assert drawn is not None and set(np.unique(drawn)) == {0, 1} and drawn[100, 150] == 1
    edit(pg, lambda: pg.keyboard.press("Control+z"))
    assert annotation(server, sid, 0) is None
    edit(pg, lambda: pg.keyboard.press("Control+Shift+z"))
    assert np.array_equal(annotation(server, sid, 0), drawn)

    # objects panel: add (selected at once), rename, keys 1-9 select
    pg.click("#add-object")
    pg.wait_for_selector('.object.current[data-object="2"]')
    pg.fill('.object[data-object="2"] input.name', "wheel")
    pg.press('.object[data-object="2"] input.name', "Enter")
    deadline = time.monotonic() + 30
    while session.names.get(2) != "wheel":
        assert time.monotonic() < deadline, session.names
        time.sleep(0.05)
    pg.keyboard.press("1")
    pg.wait_for_selector('.object.current[data-object="1"]')
    pg.keyboard.press("2")
    pg.wait_for_selector('.object.current[data-object="2"]')

    # point clicks for object 2 on the car: a positive click, then a negative one (Shift) inside
    # the first mask: that spot becomes background; Ctrl+Z takes the second click back
    pg.check('input[name="tool"][value="points"]')
    edit(pg, lambda: pg.mouse.click(*canvas_point(pg, 480.5, 180.5)))
    first = annotation(server, sid, 0)
    assert first[180, 480] == 2 and (first == 1).sum() == (drawn == 1).sum()  # object 1 kept
    ys, xs = np.nonzero(first == 2)
    far = np.hypot(xs - 480, ys - 180) > 25
    nx, ny = int(xs[far][0]), int(ys[far][0])
    pg.keyboard.down("Shift")
    edit(pg, lambda: pg.mouse.click(*canvas_point(pg, nx + 0.5, ny + 0.5)))
    pg.keyboard.up("Shift")
    second = annotation(server, sid, 0)
    assert second[ny, nx] == 0 and second[180, 480] == 2
    edit(pg, lambda: pg.keyboard.press("Control+z"))
    assert np.array_equal(annotation(server, sid, 0), first)

    # hide / show object 2: its colour leaves the canvas and comes back
    away = far & (np.hypot(xs - nx, ys - ny) > 25)
    hx, hy = int(xs[away][0]), int(ys[away][0])  # away from the click markers
    shown = pixel(pg, hx, hy)
    pg.click('.object[data-object="2"] button.toggle')
    hidden = pixel(pg, hx, hy)
    pg.click('.object[data-object="2"] button.toggle')
    assert shown != hidden and pixel(pg, hx, hy) == shown

    # zoom with the wheel around the cursor: the pixel under it stays under it, and a 2-pixel
    # brush dab 10 frame pixels to its right (in zoomed screen units) edits exactly that pixel
    pg.keyboard.press("1")
    pg.check('input[name="tool"][value="brush"]')
    pg.fill("#size", "2")
    cx, cy = canvas_point(pg, 700.5, 420.5)
    pg.mouse.move(cx, cy)
    for _ in range(4):
        pg.mouse.wheel(0, -400)
    pg.wait_for_function("parseFloat(document.getElementById('zoom-label').textContent) > 400")
    box = pg.locator("#view").bounding_box()
    k = box["width"] / 854  # screen pixels per frame pixel, zoomed
    assert abs((cx - box["x"]) * 854 / box["width"] - 700.5) < 0.5  # the pixel under the cursor did not move
    edit(pg, lambda: pg.mouse.click(cx + 10 * k, cy))
    dabbed = annotation(server, sid, 0)
    changed = np.argwhere(dabbed != first)
    assert dabbed[420, 710] == 1 and changed[:, 0].min() >= 419 and changed[:, 0].max() <= 421
    assert changed[:, 1].min() >= 709 and changed[:, 1].max() <= 711
    # a middle-button drag pans (and edits nothing); Reset zoom goes back
    count = saved(pg)
    pg.mouse.move(cx, cy)
    pg.mouse.down(button="middle")
    pg.mouse.move(cx + 60, cy + 20, steps=3)
    pg.mouse.up(button="middle")
    moved = pg.locator("#view").bounding_box()
    assert abs(moved["x"] - box["x"] - 60) < 2 and abs(moved["y"] - box["y"] - 20) < 2 and saved(pg) == count
    pg.click("#zoom-reset")
    assert pg.eval_on_selector("#view", "e => e.style.transform") == ""

    # fill: inside a closed outline fills the inside only; outside it, never the inside
    ring = [(150 + 40 * np.cos(t), 300 + 40 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 25)]
    edit(pg, lambda: stroke(ring, size=4))
    outlined = annotation(server, sid, 0)
    pg.check('input[name="tool"][value="fill"]')
    edit(pg, lambda: pg.mouse.click(*canvas_point(pg, 150.5, 300.5)))
    inside = annotation(server, sid, 0)
    assert inside[300, 150] == 1 and inside[300, 220] == 0 and inside[10, 10] == 0
    edit(pg, lambda: pg.keyboard.press("Control+z"))
    assert np.array_equal(annotation(server, sid, 0), outlined)
    edit(pg, lambda: pg.mouse.click(*canvas_point(pg, 300.5, 420.5)))
    outside = annotation(server, sid, 0)
    assert outside[300, 150] == 0 and outside[300, 220] == 1 and outside[10, 10] == 1
    assert (outside == 2).sum() == (first == 2).sum()  # object 2 is not filled over

    # delete object 2 (after the confirmation): gone from the frame and from the panel
    pg.click('.object[data-object="2"] button.delete')
    pg.wait_for_selector('.object[data-object="2"]', state="detached")
    assert 2 not in np.unique(annotation(server, sid, 0)) and session.object_ids() == [1]
    pg.close()


def test_a_stroke_is_never_saved_onto_the_next_video(server, page):
    """A brush stroke still waiting to be saved (the page saves 300 ms after the last change)
    when another video is opened goes to the video it was drawn on, never to the new one's
    frame 0. The open's answer is held back 1.5 s so that the wait would fall inside it."""
    pg = page.context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(server[0])
    pg.wait_for_function("document.getElementById('frame-label').textContent.startsWith('frame 1 / 30')")
    sid = pg.evaluate("location.hash").split("s=")[1]
    session = server[1].state.sessions.get(sid)
    first = session.video_key

    def held_back(route):
        response = route.fetch()
        time.sleep(1.5)
        route.fulfill(response=response)

    pg.route("**/demo", held_back)
    pg.check('input[name="tool"][value="brush"]')
    pg.fill("#size", "16")
    pg.mouse.move(*canvas_point(pg, 100, 100))
    pg.mouse.down()
    pg.mouse.move(*canvas_point(pg, 200, 100), steps=4)
    pg.mouse.up()
    pg.click("#demo")  # at once: the stroke's save is still pending
    deadline = time.monotonic() + 30
    while session.video_key == first:  # (Playwright's waits, not sleep: they run the route's handler)
        assert time.monotonic() < deadline, "the demo was not opened again"
        pg.wait_for_timeout(50)
    pg.wait_for_timeout(2500)  # the held-back answer arrives; any save timer would have fired by now
    assert session.annotations == {} and annotation(server, sid, 0) is None
    assert "error" not in (pg.get_attribute("#status", "class") or ""), pg.inner_text("#status")
    pg.unroute_all(behavior="wait")
    pg.close()
