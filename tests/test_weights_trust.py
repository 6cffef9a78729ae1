"""Weights a user can trust (issue 23, item 4): SHA-256 checks on every route, Google Drive through gdown,
and the unconfirmed-weights policy.

No network: downloads go to an HTTP server on 127.0.0.1 that the test starts. For Google Drive, gdown's own
requests session is pointed at that server (a transport adapter rewrites drive.google.com /
drive.usercontent.google.com to it), so gdown's real confirmation-page handling runs: the server answers
like Drive does for a large file (uc -> redirect -> "can't scan this file for viruses" form -> the file).
"""
from __future__ import annotations

import hashlib
import http.server
import re
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
import timm
import torch
from golden import load_golden

import zoo
import zoo.pretrained as pretrained
from zoo.pretrained import OfficialFile


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- a local HTTP server


class Server:
    """Serves `routes[path] = handler(query) -> (status, headers, body)`; records each request's path?query."""

    def __init__(self):
        self.routes: dict = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                parsed = urllib.parse.urlsplit(self.path)
                server.requests.append(self.path)
                route = server.routes.get(parsed.path)
                status, headers, body = route(urllib.parse.parse_qs(parsed.query)) if route else (404, {}, b"")
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve_file(self, path: str, data: bytes) -> str:
        self.routes[path] = lambda query: (200, {"Content-Type": "application/octet-stream"}, data)
        return self.url + path

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # 127.0.0.1 directly, whatever the machine's proxy
    s = Server()
    yield s
    s.close()


@pytest.fixture
def weights_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "weights"
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(directory))
    return directory


def register(monkeypatch, name: str, official: OfficialFile) -> None:
    monkeypatch.setitem(pretrained._OFFICIAL_FILES, name, official)


# --------------------------------------------------------------------------- SHA-256


def test_verify_sha256_names_the_file_and_both_hashes(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(b"the weights")
    recorded = sha256(b"other weights")
    pretrained.verify_sha256(path, sha256(b"the weights"))  # matches: nothing raised
    pretrained.verify_sha256(path, None)  # nothing recorded: nothing to check
    with pytest.raises(pretrained.ChecksumMismatchError) as err:
        pretrained.verify_sha256(path, recorded, "https://example.org/w.pth")
    message = str(err.value)
    assert str(path) in message and sha256(b"the weights") in message and recorded in message
    assert "https://example.org/w.pth" in message
    assert isinstance(err.value, pretrained.CheckpointFileError) and err.value.path == path


@pytest.mark.parametrize("bad", ["abc", "A" * 64, "g" * 64, "0" * 63])
def test_a_malformed_sha256_is_refused_when_registered(bad):
    with pytest.raises(ValueError, match="64 lowercase hex digits"):
        OfficialFile("w.pth", "https://example.org/w.pth", sha256=bad)


def test_every_registered_sha256_is_well_formed():
    """None (not known yet: no official file could be downloaded where the zoo was written) or 64 hex digits."""
    assert pretrained._OFFICIAL_FILES, "no official files registered"
    for name, official in pretrained._OFFICIAL_FILES.items():
        assert official.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", official.sha256), name


def test_url_download_is_checked_and_kept_under_its_name(server, weights_dir, monkeypatch):
    data = b"\x80\x02 stand-in weights " * 100
    url = server.serve_file("/files/w.pth", data)
    register(monkeypatch, "trust_probe.url", OfficialFile("probe.pth", url, sha256=sha256(data)))
    cfg = {"tag": "url", "url": url}
    path, _ = pretrained.locate_official_file("trust_probe", cfg)
    assert path == weights_dir / "probe.pth" and path.read_bytes() == data
    assert pretrained.locate_official_file("trust_probe", cfg)[0] == path  # found, checked, not fetched again
    assert server.requests == ["/files/w.pth"]


def test_url_download_with_another_hash_is_deleted_and_names_both(server, weights_dir, monkeypatch):
    data = b"\x80\x02 a different file " * 100
    url = server.serve_file("/files/w.pth", data)
    recorded = sha256(b"the official bytes")
    register(monkeypatch, "trust_probe.url", OfficialFile("probe.pth", url, sha256=recorded))
    with pytest.raises(pretrained.ChecksumMismatchError) as err:
        pretrained.locate_official_file("trust_probe", {"tag": "url", "url": url})
    message = str(err.value)
    assert sha256(data) in message and recorded in message and "deleted" in message
    assert not any(weights_dir.iterdir())  # nothing kept under the official name


def test_a_file_in_the_weights_dir_is_checked_and_left_in_place(weights_dir, monkeypatch):
    weights_dir.mkdir()
    (weights_dir / "probe.pth").write_bytes(b"someone else's file")
    recorded = sha256(b"the official bytes")
    register(monkeypatch, "trust_probe.local", OfficialFile("probe.pth", "https://example.org/probe.pth",
                                                            sha256=recorded))
    monkeypatch.setattr(pretrained, "_download", lambda *a: pytest.fail("a file in the weights dir was fetched"))
    with pytest.raises(pretrained.ChecksumMismatchError) as err:
        pretrained.locate_official_file("trust_probe", {"tag": "local", "url": "https://example.org/probe.pth"})
    assert sha256(b"someone else's file") in str(err.value) and recorded in str(err.value)
    assert (weights_dir / "probe.pth").read_bytes() == b"someone else's file"


def test_a_hugging_face_file_is_checked_too(tmp_path, weights_dir, monkeypatch):
    import huggingface_hub
    cached = tmp_path / "hub-cache" / "w.pth"
    cached.parent.mkdir()
    cached.write_bytes(b"what the hub sent")
    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download",
                        lambda repo, name: calls.append((repo, name)) or str(cached))
    cfg = {"tag": "hub", "hf_hub_id": "someone/repo", "hf_hub_filename": "w.pth"}
    register(monkeypatch, "trust_probe.hub", OfficialFile("w.pth", "https://huggingface.co/someone/repo",
                                                          sha256=sha256(b"what the hub sent")))
    assert pretrained.locate_official_file("trust_probe", cfg)[0] == cached
    register(monkeypatch, "trust_probe.hub", OfficialFile("w.pth", "https://huggingface.co/someone/repo",
                                                          sha256=sha256(b"the official bytes")))
    with pytest.raises(pretrained.ChecksumMismatchError, match=sha256(b"what the hub sent")):
        pretrained.locate_official_file("trust_probe", cfg)
    assert calls == [("someone/repo", "w.pth")] * 2
    assert cached.is_file()  # huggingface_hub's cache is not the zoo's to delete


def poolformer_release(golden) -> bytes:
    """The official release layout (a bare state dict), as bytes."""
    import io
    buffer = io.BytesIO()
    torch.save(dict(golden.state_dict), buffer)
    return buffer.getvalue()


def test_pretrained_true_downloads_checks_and_loads(server, weights_dir, monkeypatch):
    """End to end through timm.create_model: the download is checked against the recorded hash, then loaded."""
    from test_poolformerv1 import zoo_kwargs
    golden = load_golden("poolformer__tiny_cfg")
    data = poolformer_release(golden)
    url = server.serve_file("/release/poolformer_s12.pth.tar", data)
    kwargs = {**zoo_kwargs(golden), "num_classes": golden.constructor["num_classes"]}
    overlay = dict(num_classes=kwargs["num_classes"])
    register(monkeypatch, "poolformerv1_s12.sail_in1k", OfficialFile("poolformer_s12.pth.tar", url,
                                                                     sha256=sha256(b"not these bytes")))
    with pytest.raises(pretrained.ChecksumMismatchError):
        timm.create_model("poolformerv1_s12", pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    register(monkeypatch, "poolformerv1_s12.sail_in1k", OfficialFile("poolformer_s12.pth.tar", url,
                                                                     sha256=sha256(data)))
    model = timm.create_model("poolformerv1_s12", pretrained=True, pretrained_cfg_overlay=overlay, **kwargs).eval()
    assert model.pretrained_cfg["file"] == str(weights_dir / "poolformer_s12.pth.tar")
    with torch.no_grad():
        golden.assert_close(model(golden.input))
    assert pretrained.weights_status("poolformerv1_s12.sail_in1k").status == "verified"


# --------------------------------------------------------------------------- Google Drive through gdown

DRIVE_HOSTS = ("drive.google.com", "drive.usercontent.google.com", "docs.google.com")


def to_local_server(base: str):
    """A requests transport adapter that sends Google Drive requests to the local server (same path and
    query) and refuses any other host."""
    import requests
    local = urllib.parse.urlsplit(base)

    class ToLocalServer(requests.adapters.HTTPAdapter):
        def send(self, request, **kwargs):
            parts = urllib.parse.urlsplit(request.url)
            if parts.hostname not in DRIVE_HOSTS:
                raise requests.ConnectionError(f"no network in tests ({request.url})")
            request.url = urllib.parse.urlunsplit(("http", local.netloc, parts.path, parts.query, ""))
            return super().send(request, **kwargs)

    return ToLocalServer()


def fake_drive(server: Server, file_id: str, data: bytes, name: str) -> None:
    """Drive's answers for a file too large to scan: uc -> usercontent -> a form to confirm -> the file."""
    uuid = "8c1d5b1e-test"

    def uc(query):
        location = f"https://drive.usercontent.google.com/download?id={query['id'][0]}&export=download"
        return 303, {"Location": location}, b""

    def download(query):
        if query.get("id") != [file_id]:
            return 404, {"Content-Type": "text/html"}, b"<html><body>Not found</body></html>"
        if query.get("confirm") == ["t"] and query.get("uuid") == [uuid]:
            return 200, {"Content-Type": "application/octet-stream",
                         "Content-Disposition": f'attachment; filename="{name}"'}, data
        page = (
            '<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>\n'
            f'<p class="uc-warning-caption">Google Drive can\'t scan this file for viruses.</p>\n'
            '<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
            '<input type="submit" id="uc-download-link" value="Download anyway"/>'
            f'<input type="hidden" name="id" value="{file_id}">'
            '<input type="hidden" name="export" value="download">'
            '<input type="hidden" name="confirm" value="t">'
            f'<input type="hidden" name="uuid" value="{uuid}"></form>\n'
            '</body></html>\n')
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()

    server.routes["/uc"] = uc
    server.routes["/download"] = download


@pytest.fixture
def drive(server, monkeypatch):
    """gdown's requests sessions talk to the local server."""
    pytest.importorskip("gdown")  # the `gdown` extra (in `dev`)
    import requests
    real_session = requests.session

    def session():
        s = real_session()
        s.trust_env = False
        adapter = to_local_server(server.url)
        s.mount("https://", adapter)
        s.mount("http://", adapter)
        return s

    monkeypatch.setattr(requests, "session", session)
    return server


SOFT_TINY_DRIVE_ID = "1S04DCotIOkP0DaBb8WStQ513z82qT9de"  # soft_tiny.in1k's file (SOFT's README)


def soft_checkpoint(golden) -> bytes:
    import io

    from test_soft import official_training_checkpoint
    buffer = io.BytesIO()
    torch.save(official_training_checkpoint(golden.state_dict), buffer)
    return buffer.getvalue()


def test_soft_weights_come_through_gdown_past_the_confirmation_page(drive, weights_dir, monkeypatch):
    """soft_tiny's registered Drive file: gdown follows Drive's redirect and virus-scan form, the file lands in
    the weights directory under its README name, and loads."""
    from test_soft import zoo_kwargs
    golden = load_golden("soft__tiny_cfg")
    data = soft_checkpoint(golden)
    fake_drive(drive, SOFT_TINY_DRIVE_ID, data, "SOFT_Tiny.pth")
    kwargs = zoo_kwargs(golden)
    overlay = dict(num_classes=kwargs["num_classes"])
    model = timm.create_model("soft_tiny", pretrained=True, pretrained_cfg_overlay=overlay, **kwargs).eval()
    assert model.pretrained_cfg["file"] == str(weights_dir / "SOFT_Tiny.pth")
    assert (weights_dir / "SOFT_Tiny.pth").read_bytes() == data
    assert sorted(p.name for p in weights_dir.iterdir()) == ["SOFT_Tiny.pth"]  # no temporary files left
    with torch.no_grad():
        golden.assert_close(model(golden.input))
    served = [urllib.parse.urlsplit(r) for r in drive.requests]
    assert [p.path for p in served] == ["/uc", "/download", "/download"]  # redirect, confirm page, file
    assert "confirm=t" not in served[1].query and "confirm=t" in served[2].query


def test_gdown_download_with_another_hash_is_deleted(drive, weights_dir, monkeypatch):
    data = b"\x80\x02 not the official file " * 50
    fake_drive(drive, "probe-id", data, "probe.pth")
    recorded = sha256(b"the official bytes")
    url = "https://drive.usercontent.google.com/download?id=probe-id&export=download&confirm=t"
    register(monkeypatch, "trust_probe.drive", OfficialFile("probe.pth", url, sha256=recorded))
    with pytest.raises(pretrained.ChecksumMismatchError) as err:
        pretrained.locate_official_file("trust_probe", {"tag": "drive", "url": url})
    assert sha256(data) in str(err.value) and recorded in str(err.value)
    assert not any(weights_dir.iterdir())


def test_without_gdown_the_error_says_how_to_get_it(weights_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)  # import gdown -> ImportError
    with pytest.raises(pretrained.WeightsNotFoundError) as err:
        timm.create_model("soft_norm_medium", pretrained=True)
    message = str(err.value)
    assert "pip install gdown" in message and "zoo-backbones[gdown]" in message
    assert "https://drive.google.com/file/d/1K2C6daaJn3jwurWh38uvV7rexirWjuzh/view" in message  # by hand
    assert not weights_dir.exists() or not any(weights_dir.iterdir())


def test_google_drive_ids_are_read_from_every_link_form():
    file_id = SOFT_TINY_DRIVE_ID
    for url in (f"https://drive.google.com/file/d/{file_id}/view?usp=sharing",
                f"https://drive.google.com/uc?id={file_id}&export=download",
                f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"):
        assert pretrained.google_drive_id(url) == file_id, url
    assert pretrained.google_drive_id("https://example.org/download?id=x") is None
    assert pretrained.google_drive_id(None) is None


# --------------------------------------------------------------------------- unconfirmed weights

# The policy as it stands (docs/weights.md): file names that are guesses, and one file claimed by two models.
UNCONFIRMED = {
    "mavit_t.in1k", "mavit_s.in1k", "mavit_b.in1k",
    "vig_t.in1k", "vig_s.in1k", "vig_b.in1k", "vig_h_t.in1k", "vig_h_s.in1k", "vig_h_b.in1k",
    "soft_norm_small.in1k", "soft_norm_small_24m.in1k",
}


def zoo_tags() -> dict[str, dict]:
    return {name: cfg.to_dict() for arch in zoo.list_models()
            for name, cfg in timm.models.get_arch_pretrained_cfgs(arch).items()}


def test_the_unconfirmed_tags_are_marked_in_pretrained_cfg():
    marked = {name for name, cfg in zoo_tags().items() if pretrained.unconfirmed_reason(cfg)}
    assert marked == UNCONFIRMED
    for name in UNCONFIRMED:
        assert pretrained.weights_status(name).status == "unconfirmed"
    assert pretrained.weights_status("mavit_l.in1k").status == "listed"


def test_unconfirmed_tags_stay_out_of_list_models_pretrained_until_the_user_opts_in(monkeypatch):
    monkeypatch.delenv(pretrained.ALLOW_UNCONFIRMED_ENV, raising=False)
    listed = set(timm.list_models(pretrained=True))
    assert not UNCONFIRMED & listed
    assert "mavit_l.in1k" in listed and "soft_norm_medium.in1k" in listed
    assert not timm.is_model_pretrained("mavit_t") and not timm.is_model_pretrained("vig_h_b")
    assert timm.is_model_pretrained("mavit_l")
    with zoo.allow_unconfirmed_weights():
        assert UNCONFIRMED <= set(timm.list_models(pretrained=True))
        assert timm.is_model_pretrained("mavit_t")
    assert not UNCONFIRMED & set(timm.list_models(pretrained=True))  # the block's end restores the policy
    # The environment variable, read when the policy is applied (at `import zoo`) and at each load.
    monkeypatch.setenv(pretrained.ALLOW_UNCONFIRMED_ENV, "1")
    try:
        pretrained.apply_weights_policy()
        assert UNCONFIRMED <= set(timm.list_models(pretrained=True))
    finally:  # the registry is process-wide: leave it as the other tests expect
        monkeypatch.delenv(pretrained.ALLOW_UNCONFIRMED_ENV)
        pretrained.apply_weights_policy()
    assert not UNCONFIRMED & set(timm.list_models(pretrained=True))


def test_pretrained_true_on_an_unconfirmed_tag_says_how_to_opt_in(weights_dir, monkeypatch):
    monkeypatch.delenv(pretrained.ALLOW_UNCONFIRMED_ENV, raising=False)
    monkeypatch.setattr(pretrained, "_download", lambda *a: pytest.fail("nothing may be fetched before opting in"))
    with pytest.raises(pretrained.UnconfirmedWeightsError) as err:
        timm.create_model("mavit_t", pretrained=True)
    message = str(err.value)
    assert "mavit_t.in1k" in message and "MAViT_T.pth" in message and "file name unconfirmed" in message
    assert "zoo.allow_unconfirmed_weights()" in message and pretrained.ALLOW_UNCONFIRMED_ENV in message
    assert "pretrained_cfg_overlay=dict(file=" in message


def mavit_file(tmp_path) -> tuple:
    from test_ravlt import official_training_checkpoint, zoo_kwargs
    golden = load_golden("mala__tiny_cfg")
    path = tmp_path / "MAViT_T.pth"
    torch.save(official_training_checkpoint(golden.state_dict), path)
    classes = golden.constructor["num_classes"]
    kwargs = dict(num_classes=classes, **zoo_kwargs(golden))
    return golden, path, kwargs


def test_opting_in_or_naming_the_file_loads_an_unconfirmed_tag(weights_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(pretrained.ALLOW_UNCONFIRMED_ENV, raising=False)
    golden, path, kwargs = mavit_file(tmp_path)
    overlay = dict(num_classes=kwargs["num_classes"])
    # A file the user names is their choice: no opt-in needed.
    model = timm.create_model("mavit_t", pretrained=True, pretrained_cfg_overlay=dict(file=str(path), **overlay),
                              **kwargs).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))
    # The file the zoo would choose (the weights directory, under the guessed name): only after opting in.
    weights_dir.mkdir()
    path.rename(weights_dir / "MAViT_T.pth")
    with pytest.raises(pretrained.UnconfirmedWeightsError):
        timm.create_model("mavit_t", pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    with zoo.allow_unconfirmed_weights():
        model = timm.create_model("mavit_t", pretrained=True, pretrained_cfg_overlay=overlay, **kwargs).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))
    assert pretrained.unconfirmed_reason(model.pretrained_cfg).startswith("file name unconfirmed")
