"""Make docs/app.jpg, the README's picture of ``ssmvos app``, by driving the real page.

It serves the app on the bundled demo clip, then in headless Chromium (Playwright; Debian's
``chromium``) draws a box around the car (GrabCut), adds and names a second object with a
box and a point click, starts a forward propagation and takes the picture while it runs
(timeline marks, the frame being computed, the time estimate), as a JPEG under 200 KB.

    python docs/make_screenshot.py --weights davis17 [--device cuda] [--out docs/app.jpg]
"""
from __future__ import annotations

import argparse
import io
import shutil
import socket
import sys
import threading
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="davis17", help="published model name or checkpoint path")
    parser.add_argument("--input-size", type=int, default=480)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "app.jpg"))
    parser.add_argument("--after", type=int, default=12, help="frames computed when the picture is taken")
    args = parser.parse_args()

    import uvicorn
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from ssmvos.app.server import AppConfig, create_app
    from ssmvos.build import build_predictor
    from ssmvos.runtime import RuntimeSpec

    predictor = build_predictor(args.weights, args.input_size, RuntimeSpec(device=args.device))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(predictor, AppConfig(demo=True)), host="127.0.0.1", port=port,
                                           log_level="warning"))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    while not server.started:
        time.sleep(0.05)

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 820}, device_scale_factor=1)
        page.set_default_timeout(300_000)
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("document.getElementById('frame-label').textContent.startsWith('frame 1 /')")

        def at(x: float, y: float) -> tuple[float, float]:
            box = page.locator("#view").bounding_box()
            return box["x"] + x * box["width"] / 854, box["y"] + y * box["height"] / 480

        def saved_after(action) -> None:
            before = page.eval_on_selector("#canvas-wrap", "e => Number(e.dataset.saved || 0)")
            action()
            page.wait_for_function(f"Number(document.getElementById('canvas-wrap').dataset.saved || 0) > {before}")

        def drag(x0: float, y0: float, x1: float, y1: float) -> None:
            page.mouse.move(*at(x0, y0))
            page.mouse.down()
            page.mouse.move(*at(x1, y1), steps=6)
            page.mouse.up()

        def rename(obj: int, name: str) -> None:
            page.fill(f'.object[data-object="{obj}"] input.name', name)
            page.press(f'.object[data-object="{obj}"] input.name', "Enter")

        saved_after(lambda: drag(293, 68, 674, 301))  # the car: box -> GrabCut
        rename(1, "car")
        page.click("#add-object")
        page.wait_for_selector('.object.current[data-object="2"]')
        rename(2, "manhole cover")
        saved_after(lambda: drag(612, 290, 712, 328))
        page.check('input[name="tool"][value="points"]')
        saved_after(lambda: page.mouse.click(*at(660, 309)))
        page.click("#forward")
        page.wait_for_function(f"app.live.computed.size >= {args.after} && document.getElementById('eta').textContent")
        shot = page.screenshot(type="png")
        browser.close()
    server.should_exit = True
    serving.join(timeout=60)  # the app's shutdown stops the propagation at a frame

    image = Image.open(io.BytesIO(shot)).convert("RGB")
    for quality in (85, 75, 65, 55):
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=quality, optimize=True, progressive=True)
        if buf.tell() < 200_000:
            break
    Path(args.out).write_bytes(buf.getvalue())
    print(f"{args.out}: {image.width}x{image.height}, {buf.tell() // 1024} KB (JPEG quality {quality})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
