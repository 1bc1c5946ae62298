"""ssmvos app's sessions survive: masks are on disk as they change (results once computed),
a restarted server (or one that unloaded a session to make room) gives the tab its session back, idle sessions
expire, deleting one does not wait for another's propagation; and what the page is told
is right (frame URLs change with the video, 'both' counts each frame once)."""
from __future__ import annotations

import json
import os
import threading
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the app's extra is not installed: pip install -e '.[app]'")

from app_client import RAW, client_for, error_of, make_root, new_session, wait_job  # noqa: E402
from stub_network import stub_predictor  # noqa: E402
from ssmvos.app.server import AppConfig, create_app  # noqa: E402
from ssmvos.app.session import Job  # noqa: E402


@pytest.fixture(scope="module")
def predictor():
    return stub_predictor()[0]


@pytest.fixture()
def root(tmp_path):
    return make_root(tmp_path)


def app_on(predictor, root, state, **options):
    return create_app(predictor, AppConfig(root=root, state_dir=state, **options))


def some_mask(value: int = 2) -> np.ndarray:
    mask = np.zeros((480, 854), np.uint8)
    mask[100:200, 300:400] = value
    return mask


def test_a_restart_gives_the_tab_its_session_back(predictor, root, tmp_path):
    state = tmp_path / "state"
    with client_for(app_on(predictor, root, state)) as client:
        sid = new_session(client)
        opened = client.post(f"/api/sessions/{sid}/open", json={"path": "clips/frames"}).json()["video"]
        client.put(f"/api/sessions/{sid}/frames/1/annotation", content=some_mask().tobytes(), headers=RAW)
        client.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward"})
        assert wait_job(client, sid)["job"]["state"] == "done"
        computed = [client.get(f"/api/sessions/{sid}/frames/{k}/result").content for k in (1, 2)]
        upload = new_session(client)
        tiny = (root / "clips" / "tiny.avi").read_bytes()
        client.post(f"/api/sessions/{upload}/upload", params={"name": "t.avi"}, content=tiny, headers=RAW)
    assert (state / sid / "masks" / "1.png").is_file()  # on disk as soon as it was saved
    with client_for(app_on(predictor, root, state)) as client:  # a new server on the same state folder
        info = client.get(f"/api/sessions/{sid}").json()["video"]
        assert info["source"] == "clips/frames" and info["annotated"] == [1] and info["key"] == opened["key"]
        assert client.get(f"/api/sessions/{sid}/frames/1/annotation").content == some_mask().tobytes()
        assert info["results"] == [1, 2]  # the last results are shown again, and export
        assert [client.get(f"/api/sessions/{sid}/frames/{k}/result").content for k in (1, 2)] == computed
        assert client.get(f"/api/sessions/{sid}/export/masks.zip").status_code == 200
        assert client.get(f"/api/sessions/{upload}").json()["video"]["source"] == "upload:t.avi"
        # a session whose video left --root comes back without it
        (state / sid / "state.json").write_text(json.dumps({**json.loads((state / sid / "state.json").read_text()),
                                                            "video": str(tmp_path / "secret")}))
    with client_for(app_on(predictor, root, state)) as client:
        assert client.get(f"/api/sessions/{sid}").json()["video"] is None
        assert "unknown session" in error_of(client.get("/api/sessions/" + "x" * 22), 404)
        error_of(client.get("/api/sessions/..%2F..%2Fetc"), 404)


def test_idle_sessions_expire(predictor, root, tmp_path):
    state = tmp_path / "state"
    with client_for(app_on(predictor, root, state)) as client:
        old, recent = new_session(client), new_session(client)
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(state / old / "state.json", (week_ago, week_ago))
    with client_for(app_on(predictor, root, state, session_ttl_hours=24)) as client:
        assert not (state / old).exists()  # swept at start
        assert "unknown session" in error_of(client.get(f"/api/sessions/{old}"), 404)
        assert client.get(f"/api/sessions/{recent}").status_code == 200


def test_past_the_limit_the_least_recently_used_is_unloaded_not_refused(predictor, root, tmp_path):
    app = app_on(predictor, root, tmp_path / "state", max_sessions=2)
    with client_for(app) as client:
        first = new_session(client)
        client.post(f"/api/sessions/{first}/demo", json={})
        client.put(f"/api/sessions/{first}/frames/4/annotation", content=some_mask(3).tobytes(), headers=RAW)
        others = [new_session(client) for _ in range(3)]  # no 429
        assert first not in app.state.sessions.items and len(app.state.sessions.items) == 2
        info = client.get(f"/api/sessions/{first}").json()["video"]  # reloaded from disk
        assert info["annotated"] == [4] and info["objects"] == [3]
        assert client.get(f"/api/sessions/{others[0]}").status_code == 200


def test_deleting_a_session_does_not_wait_for_the_network(predictor, root, tmp_path):
    app = app_on(predictor, root, tmp_path / "state")
    with client_for(app) as client:
        sid = new_session(client)
        client.post(f"/api/sessions/{sid}/demo", json={})
        session = app.state.sessions.items[sid]
        session.job = Job("forward", 30)  # its propagation is still running ...
        done = threading.Event()
        with app.state.sessions.network_lock:  # ... and holds the network (or another session's does)
            threading.Thread(target=lambda: (client.delete(f"/api/sessions/{sid}"), done.set()), daemon=True).start()
            assert done.wait(60), "DELETE waited for the network lock"
            assert "unknown session" in error_of(client.get(f"/api/sessions/{sid}"), 404)
            session.job.state = "cancelled"
    assert not (tmp_path / "state" / sid).exists()  # removed once the lock was free


def test_frame_urls_change_with_the_video(predictor, root, tmp_path):
    with client_for(app_on(predictor, root, tmp_path / "state")) as client:
        sid = new_session(client)
        first = client.post(f"/api/sessions/{sid}/open", json={"path": "clips/frames"}).json()["video"]["key"]
        response = client.get(f"/api/sessions/{sid}/frames/0.jpg", params={"v": first})
        assert response.status_code == 200 and "immutable" in response.headers["cache-control"]
        second = client.post(f"/api/sessions/{sid}/open", json={"path": "clips/tiny.avi"}).json()["video"]["key"]
        assert second != first
        import cv2

        for key, cache in ((second, "immutable"), (first, "no-cache"), (None, "no-cache")):
            response = client.get(f"/api/sessions/{sid}/frames/0.jpg", params={"v": key} if key else {})
            assert cache in response.headers["cache-control"]  # an old key is never cached
            frame = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
            assert frame.shape == (48, 64, 3)  # always the frame of the video open now


def test_both_directions_count_each_frame_once(predictor, tmp_path):
    root = make_root(tmp_path, frames=6)
    with client_for(app_on(predictor, root, tmp_path / "state")) as client:
        sid = new_session(client)
        client.post(f"/api/sessions/{sid}/open", json={"path": "clips/frames"})
        two = some_mask(2)
        two[300:350, 100:150] = 3  # a second object ...
        client.put(f"/api/sessions/{sid}/frames/2/annotation", content=some_mask(2).tobytes(), headers=RAW)
        client.put(f"/api/sessions/{sid}/frames/3/annotation", content=two.tobytes(), headers=RAW)  # ... from frame 3
        for correction in (None, 4):
            if correction is not None:
                client.put(f"/api/sessions/{sid}/frames/{correction}/annotation", content=two.tobytes(), headers=RAW)
            client.post(f"/api/sessions/{sid}/propagate", json={"direction": "both"})
            job = wait_job(client, sid)["job"]
            assert job["state"] == "done" and job["done"] == job["total"] <= 6 and job["computed"] <= 6, job
        events = client.get(f"/api/sessions/{sid}/events").text
        frames = [json.loads(line[6:]) for line in events.splitlines() if line.startswith("data: ")]
        assert max(e.get("done", 0) for e in frames) <= 6


def test_the_port_of_a_server_just_stopped_is_free_again(tmp_path):
    """Ctrl-C leaves the port's last connection in TIME_WAIT: the CLI's own port check binds
    as uvicorn does (SO_REUSEADDR), so a restart goes on to load the weights at once."""
    import socket

    from conftest import assert_clean_error, run_cli

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's listener
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server's side closes first: its end (port `port`) waits in TIME_WAIT
        client.close()
    args = ("app", "--port", port, "--state-dir", tmp_path / "state", "--weights", tmp_path / "missing.pt")
    assert_clean_error(run_cli(*args), "missing.pt")  # past the port check, refused for the weights
    with socket.socket() as busy:  # a port really in use is still refused, in one line
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert_clean_error(run_cli(*args[:1], "--port", busy.getsockname()[1], *args[3:]), "cannot listen")


def test_object_names_and_a_loaded_session_survive_a_restart(predictor, root, tmp_path):
    state = tmp_path / "state"
    with client_for(app_on(predictor, root, state)) as client:
        sid = new_session(client)
        client.post(f"/api/sessions/{sid}/open", json={"path": "clips/frames"})
        client.put(f"/api/sessions/{sid}/frames/0/annotation", content=some_mask(1).tobytes(), headers=RAW)
        client.put(f"/api/sessions/{sid}/objects/1", json={"name": "car"})
        saved = client.get(f"/api/sessions/{sid}/export/session.json").json()
        assert saved["objects"] == {"1": {"name": "car"}}
        # loading a session replaces the masks on disk too: frame 0's mask goes, frame 2's comes
        saved["masks"] = {"2": saved["masks"]["0"]}
        saved["objects"] = {"1": {"name": "truck"}}
        client.post(f"/api/sessions/{sid}/session", json=saved)
    with client_for(app_on(predictor, root, state)) as client:
        info = client.get(f"/api/sessions/{sid}").json()
        assert info["video"]["annotated"] == [2]
        assert info["video"]["object_names"] == {"1": "truck"}
        assert client.get(f"/api/sessions/{sid}/frames/2/annotation").content == some_mask(1).tobytes()


def test_a_mask_drawn_on_the_video_opened_before_is_refused(predictor, root, tmp_path):
    """Every mask the page sends names its video (?v=): once another video is open, a save
    still on its way for the last one is refused (409), never put onto the new one."""
    with client_for(app_on(predictor, root, tmp_path / "state")) as client:
        sid = new_session(client)
        base = f"/api/sessions/{sid}"
        first = client.post(f"{base}/open", json={"path": "clips/frames"}).json()["video"]["key"]
        assert client.put(f"{base}/frames/1/annotation", params={"v": first}, content=some_mask().tobytes(),
                          headers=RAW).json()["video"]["annotated"] == [1]
        second = client.post(f"{base}/open", json={"path": "clips/tiny.avi"}).json()["video"]["key"]
        tiny = np.zeros((48, 64), np.uint8)
        tiny[10:20, 10:20] = 1
        for response in (client.put(f"{base}/frames/0/annotation", params={"v": first}, content=tiny.tobytes(),
                                    headers=RAW),
                         client.post(f"{base}/frames/0/annotation/import", params={"v": first},
                                     content=labels_png(tiny), headers=RAW),
                         client.post(f"{base}/points", params={"v": first},
                                     json={"frame": 0, "object": 1, "points": [[20, 20]], "labels": [1]})):
            assert "another video was opened" in error_of(response, 409)
        assert client.get(base).json()["video"]["annotated"] == []
        assert client.put(f"{base}/frames/0/annotation", params={"v": second}, content=tiny.tobytes(),
                          headers=RAW).json()["video"]["annotated"] == [0]


def labels_png(labels: np.ndarray) -> bytes:
    from ssmvos.io.labels import encode_label_png

    return encode_label_png(labels)


def test_a_frame_decoded_while_another_video_opens_is_not_served_for_it(predictor, root, tmp_path):
    """The frame cache: a frame of the last video, decoded while the next one was being
    opened, is neither kept nor served (nor cached by the browser) as the new video's."""
    app = app_on(predictor, root, tmp_path / "state")
    with client_for(app) as client:
        sid = new_session(client)
        base = f"/api/sessions/{sid}"
        first = client.post(f"{base}/open", json={"path": "clips/frames"}).json()["video"]["key"]
        session = app.state.sessions.items[sid]
        frames = session.state.frames
        read = frames.get
        second = {}

        def read_then_open(index):  # another request opens a video while this frame is decoded
            rgb = read(index)
            if not second:
                second.update(session.open(root / "clips" / "tiny.avi", "clips/tiny.avi")["video"])
            return rgb

        frames.get = read_then_open
        data, key = session.frame_jpeg(0)
        assert key == first and second["key"] != first
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (480, 854, 3)
        response = client.get(f"{base}/frames/0.jpg", params={"v": second["key"]})
        assert "immutable" in response.headers["cache-control"]
        assert cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR).shape == (48, 64, 3)


def test_no_propagation_starts_while_a_video_opens(predictor, root, tmp_path, monkeypatch):
    """Opening takes the session for its whole length: a propagation asked for meanwhile (or
    a second open) is refused in one line, and the new video starts without the old job."""
    app = app_on(predictor, root, tmp_path / "state")
    with client_for(app) as client:
        sid = new_session(client)
        base = f"/api/sessions/{sid}"
        client.post(f"{base}/open", json={"path": "clips/frames"})
        client.put(f"{base}/frames/0/annotation", content=some_mask().tobytes(), headers=RAW)
        client.post(f"{base}/propagate", json={"direction": "forward"})
        assert wait_job(client, sid)["job"]["state"] == "done"
        session = app.state.sessions.items[sid]
        init_state, refused = predictor.init_state, []

        def slow_open(*args, **kwargs):  # requests that arrive while the video is being opened
            refused.append(error_of(client.post(f"{base}/propagate", json={"direction": "forward"}), 400))
            refused.append(error_of(client.post(f"{base}/open", json={"path": "clips/frames"}), 400))
            return init_state(*args, **kwargs)

        monkeypatch.setattr(predictor, "init_state", slow_open)
        info = session.open(root / "clips" / "tiny.avi", "clips/tiny.avi")
        assert all("a video is being opened" in message for message in refused) and len(refused) == 2
        assert info["job"] is None and session.job is None  # the last video's finished job is not this one's
        monkeypatch.undo()
        assert client.get(base).json()["video"]["source"] == "clips/tiny.avi"
