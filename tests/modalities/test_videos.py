"""Video jobs: submit, 202s then 200, settled by the worker whether or not anyone polls, failed
jobs free, a restart mid-job still settles, and the 4xx cases."""

from __future__ import annotations

import base64
import dataclasses
import io
import time
from pathlib import Path

import av
import httpx
import pytest
from PIL import Image

from farebox.errors import InvalidRequest
from farebox.sim.server import SimServer
from farebox.video.request import read_video_call

from media_support import media_catalog, media_env, query_rows, sdk, spent
from support import NANOS, Gateway, running_gateway, wait_until


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def submit(gw: Gateway, key: str, body: dict[str, object]) -> httpx.Response:
    with gw.client() as c:
        return c.post("/v1/videos", json=body, headers=auth(key))


def status(gw: Gateway, key: str, job_id: str) -> httpx.Response:
    with gw.client() as c:
        return c.get(f"/v1/videos/{job_id}", headers=auth(key))


def poll_until_done(gw: Gateway, key: str, job_id: str, timeout: float = 30) -> list[int]:
    codes = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = status(gw, key, job_id)
        codes.append(r.status_code)
        if r.status_code == 200:
            return codes
        assert r.status_code == 202, r.text
        assert r.json()["status"] in ("pending", "processing")
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {codes[-5:]}")


def stored_status(gw: Gateway, job_id: str) -> str | None:
    """The job's status in the database (without asking the API, which nobody calls)."""
    row = gw.loop.run(gw.services.media.videos.jobs.get(job_id))
    return None if row is None else str(row.status)


def frames(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as box:
        return sum(1 for _ in box.decode(video=0))


def test_submit_poll_202_then_200(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    r = submit(
        media_gw,
        key,
        {"model": "kling-2.1-pro", "prompt": "A golden retriever", "aspect_ratio": "16:9"},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "pending" and job["model"] == "kling-2.1-pro"
    assert job["estimated_cost"] == 0.25  # 5 s at $0.05 (720p)
    assert r.headers["x-farebox-estimated-cost"] == "0.25"
    row = media_gw.loop.run(media_gw.services.media.videos.jobs.get(job["id"]))
    assert row is not None and sum(amount for _, amount in row.holds) == 250_000_000  # held
    codes = poll_until_done(media_gw, key, job["id"])
    assert 202 in codes and codes[-1] == 200
    done = status(media_gw, key, job["id"])
    body = done.json()
    assert body["status"] == "completed" and body["cost"] == 0.25
    assert done.headers["x-farebox-cost"] == "0.25"
    assert body["data"]["content_type"] == "video/mp4"
    video = httpx.get(body["data"]["url"], timeout=30)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert frames(video.content) == 40  # 5 s at 8 fps
    assert spent(media_gw, credit_id, NANOS) == 250_000_000
    assert query_rows(media_gw, credit_id) == [("video", "kling-2.1-pro", 250_000_000)]


def test_job_nobody_polls_is_still_settled(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    r = submit(
        media_gw,
        key,
        {"model": "kling-2.1-pro", "prompt": "waves", "quality": "1080p", "duration": "10"},
    )
    assert r.status_code == 202 and r.json()["estimated_cost"] == 1.0
    job_id = r.json()["id"]
    assert wait_until(lambda: stored_status(media_gw, job_id) == "completed", timeout=30)
    assert spent(media_gw, credit_id, NANOS) == NANOS  # 10 s at $0.10
    assert status(media_gw, key, job_id).json()["cost"] == 1.0


def test_failed_job_charges_nothing(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    r = submit(media_gw, key, {"model": "failing-video", "prompt": "x"})
    assert r.status_code == 202
    job_id = r.json()["id"]
    assert wait_until(lambda: status(media_gw, key, job_id).json()["status"] == "failed", 30)
    body = status(media_gw, key, job_id).json()
    assert body["cost"] == 0 and "failed" in body["error"]["message"]
    assert spent(media_gw, credit_id, NANOS) == 0
    assert query_rows(media_gw, credit_id) == []


def test_image_to_video_takes_an_image(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 200)).save(out, format="PNG")
    image_url = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
    r = submit(media_gw, key, {"model": "kling-i2v", "prompt": "pan", "image_url": image_url})
    assert r.status_code == 202, r.text
    poll_until_done(media_gw, key, r.json()["id"])
    assert spent(media_gw, credit_id, NANOS) == 250_000_000


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "kling-2.1-pro", "prompt": "x", "duration": "7"}, "duration"),
        ({"model": "kling-2.1-pro", "prompt": "x", "quality": "4k"}, "quality"),
        ({"model": "kling-2.1-pro", "prompt": "x", "resolution": "1080p"}, "resolution"),
        ({"model": "kling-2.1-pro", "prompt": "x", "image_url": "data:,"}, "image_url"),
        ({"model": "kling-2.1-pro"}, "prompt"),
        ({"model": "kling-i2v", "prompt": "x"}, "image_url"),
        ({"model": "kling-i2v", "prompt": "x", "image_url": "http://10.0.0.1/a.png"}, "image_url"),
        ({"model": "sim-image", "prompt": "x"}, "model"),
    ],
)
def test_bad_submissions_are_400_and_free(
    media_gw: Gateway, body: dict[str, object], param: str
) -> None:
    credit_id, key = media_gw.create_account(1)
    r = submit(media_gw, key, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert spent(media_gw, credit_id, NANOS) == 0


def test_unknown_and_foreign_ids_are_404(media_gw: Gateway) -> None:
    _owner, key = media_gw.create_account(1)
    _other, other_key = media_gw.create_account(1)
    job_id = submit(media_gw, key, {"model": "kling-2.1-pro", "prompt": "x"}).json()["id"]
    assert status(media_gw, key, "gen_doesnotexist").status_code == 404
    assert status(media_gw, key, "%00").status_code == 404  # PostgreSQL refuses NUL: was a 500
    long_id = status(media_gw, key, "x" * 10_000)
    assert long_id.status_code == 404 and len(long_id.content) <= 1024
    assert status(media_gw, other_key, job_id).status_code == 404
    assert status(media_gw, key, job_id).status_code in (200, 202)


@pytest.mark.parametrize("duration", ["\u00b2", "9" * 5000, "0", "61", "5.5"])
def test_free_form_duration_is_a_whole_number_of_seconds(duration: str) -> None:
    """For a model that lists no durations; "²" passed isdigit() and then broke int()."""
    catalog = media_catalog("http://127.0.0.1:9")
    listed = catalog.resolve("kling-2.1-pro")
    model = dataclasses.replace(listed, parameters={**listed.parameters, "duration": ()})
    assert read_video_call({"prompt": "x", "duration": "7"}, model).job.seconds == 7
    with pytest.raises(InvalidRequest) as caught:
        read_video_call({"prompt": "x", "duration": duration}, model)
    assert caught.value.param == "duration"


def test_insufficient_balance_is_402(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account("0.2")
    r = submit(media_gw, key, {"model": "kling-2.1-pro", "prompt": "x"})
    assert r.status_code == 402
    assert spent(media_gw, credit_id, NANOS // 5) == 0


@pytest.mark.slow  # restarts a gateway mid-job: seconds
def test_restart_mid_job_still_settles(db_url: str, sim: SimServer, tmp_path: Path) -> None:
    """Submit on one gateway, stop it while the upstream job runs, start another on the same
    database: its worker finds the job and settles it, with nobody polling."""
    catalog = media_catalog(sim.url)
    env = media_env(tmp_path)
    with running_gateway(db_url, catalog, extra_env=env) as first:
        credit_id, key = first.create_account(1)
        r = submit(first, key, {"model": "slow-video", "prompt": "restart"})
        assert r.status_code == 202
        job_id = r.json()["id"]
        assert first.nanos(credit_id) == (NANOS, 250_000_000)
    with running_gateway(db_url, catalog, extra_env=env) as second:
        assert second.nanos(credit_id)[1] == 250_000_000  # still held across the restart
        assert wait_until(lambda: stored_status(second, job_id) == "completed", timeout=30)
        assert spent(second, credit_id, NANOS) == 250_000_000
        body = status(second, key, job_id).json()
        assert body["status"] == "completed" and body["cost"] == 0.25
        assert httpx.get(body["data"]["url"], timeout=30).status_code == 200


def test_sdk_generic_calls_as_in_the_readme(media_gw: Gateway) -> None:
    credit_id, key = media_gw.create_account(1)
    client = sdk(media_gw, key)
    job = client.post(
        "/videos",
        body={"model": "kling-2.1-pro", "prompt": "a dog", "duration": "5", "quality": "720p"},
        cast_to=dict,
    )
    assert job["status"] == "pending"
    assert wait_until(
        lambda: client.get(f"/videos/{job['id']}", cast_to=dict)["status"] == "completed", 30
    )
    assert spent(media_gw, credit_id, NANOS) == 250_000_000
