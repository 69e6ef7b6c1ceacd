"""graphc.hub and pretrained weights, against a local HTTP server serving
checkpoints written by torch."""

import functools
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import graphc  # noqa: E402
from graphc import hub  # noqa: E402
from graphc.vision import models  # noqa: E402


class _Server:
    """http.server on 127.0.0.1 in a thread, serving one folder and
    counting the requests."""

    def __init__(self, folder):
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    s = _Server(folder)
    s.folder = folder
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _private_hub(tmp_path, monkeypatch):
    """Never touch the user's cache: the hub lives in this test's folder."""
    monkeypatch.setenv("GRAPHC_HOME", str(tmp_path / "graphc-home"))
    monkeypatch.setattr(hub, "_hub_dir", None)


def _hashed(folder, stem, obj):
    """torch.save `obj` into `folder` under torch.hub's `stem-<sha256[:8]>.pth` name."""
    path = folder / "tmp.pth"
    torch.save(obj, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    final = folder / f"{stem}-{digest[:8]}.pth"
    path.rename(final)
    return final.name, digest


def test_hub_dir_follows_graphc_home_and_xdg(tmp_path, monkeypatch):
    assert hub.get_dir() == str(tmp_path / "graphc-home" / "hub")
    monkeypatch.delenv("GRAPHC_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.get_dir() == str(tmp_path / "xdg" / "graphc" / "hub")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub.get_dir() == str(tmp_path / "home" / ".cache" / "graphc" / "hub")
    hub.set_dir(tmp_path / "mine")
    assert hub.get_dir() == str(tmp_path / "mine")


def test_load_state_dict_from_url_downloads_once_and_checks_the_hash(server, tmp_path, capsys):
    state = {"w": torch.randn(3, 4), "n": torch.tensor(7)}
    name, _ = _hashed(server.folder, "tiny", state)
    loaded = hub.load_state_dict_from_url(server.url + name, check_hash=True)
    np.testing.assert_array_equal(loaded["w"].numpy(), state["w"].numpy())
    assert loaded["n"].item() == 7
    cached = tmp_path / "graphc-home" / "hub" / "checkpoints" / name
    assert cached.read_bytes() == (server.folder / name).read_bytes()
    assert server.requests == ["/" + name]
    assert "tiny-" in capsys.readouterr().err  # the progress bar names the file
    # The second call reads the cache.
    again = hub.load_state_dict_from_url(server.url + name, check_hash=True, progress=False)
    np.testing.assert_array_equal(again["w"].numpy(), state["w"].numpy())
    assert len(server.requests) == 1
    # model_dir, file_name and map_location as in torch.hub.
    other = hub.load_state_dict_from_url(
        server.url + name, model_dir=tmp_path / "models", file_name="renamed.pt", map_location="cpu", progress=False
    )
    assert (tmp_path / "models" / "renamed.pt").exists() and other["n"].item() == 7


def test_wrong_hash_is_refused_and_nothing_is_written(server, tmp_path):
    torch.save({"w": torch.ones(2)}, server.folder / "tiny-00000000.pth")
    with pytest.raises(hub.DownloadError, match='invalid hash value .*expected "00000000"'):
        hub.load_state_dict_from_url(server.url + "tiny-00000000.pth", check_hash=True, progress=False)
    checkpoints = tmp_path / "graphc-home" / "hub" / "checkpoints"
    assert not checkpoints.exists() or list(checkpoints.iterdir()) == []
    # Without check_hash the same file loads.
    assert hub.load_state_dict_from_url(server.url + "tiny-00000000.pth", progress=False)["w"].tolist() == [1.0, 1.0]


def test_offline_error_names_the_url_and_where_to_put_the_file(server, tmp_path):
    with pytest.raises(hub.DownloadError, match=r"could not download .*missing\.pth .*place it at .*missing\.pth"):
        hub.load_state_dict_from_url(server.url + "missing.pth", progress=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port any more
    url = f"http://127.0.0.1:{port}/models/x.pth"
    with pytest.raises(hub.DownloadError) as info:
        hub.load_state_dict_from_url(url, progress=False)
    message = str(info.value)
    assert url in message and str(tmp_path / "graphc-home" / "hub" / "checkpoints" / "x.pth") in message


def test_resnet18_pretrained_weights_the_torchvision_way(server, monkeypatch):
    from torch_resnet import trained_looking_resnet18

    reference = trained_looking_resnet18(seed=3)
    name, _ = _hashed(server.folder, "resnet18", reference.state_dict())
    monkeypatch.setattr(models, "WEIGHTS_BASE_URL", server.url)
    weights = models.ResNet18_Weights.IMAGENET1K_V1
    assert weights.url == server.url + "resnet18-f37072fd.pth"
    # The published name's hash does not match this file: refused.
    (server.folder / "resnet18-f37072fd.pth").write_bytes((server.folder / name).read_bytes())
    with pytest.raises(hub.DownloadError, match="invalid hash"):
        models.resnet18(weights="IMAGENET1K_V1", progress=False)
    # Under its own hashed name it loads and gives torch's logits.
    monkeypatch.setattr(weights.value, "file_name", name)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    model = models.resnet18(weights="IMAGENET1K_V1", progress=False).eval()
    with graphc.no_grad():
        np.testing.assert_allclose(model(graphc.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert server.requests.count("/" + name) == 1
    with pytest.raises(ValueError, match="num_classes' expected value 1000 but got 10"):
        models.resnet18(num_classes=10, weights="DEFAULT")
    with pytest.raises(ValueError, match="IMAGENET1K_V1, DEFAULT"):
        models.resnet18(weights="IMAGENET22K")


def test_resnet18_weights_spellings(server, monkeypatch):
    from torch_resnet import TorchResNet18

    torch.manual_seed(0)
    reference = TorchResNet18()
    name, _ = _hashed(server.folder, "resnet18", reference.state_dict())
    monkeypatch.setattr(models, "WEIGHTS_BASE_URL", server.url)
    monkeypatch.setattr(models.ResNet18_Weights.IMAGENET1K_V1.value, "file_name", name)
    assert models.ResNet18_Weights.DEFAULT is models.ResNet18_Weights.IMAGENET1K_V1
    fc = reference.fc.weight.detach().numpy()
    for kwargs in (
        {"weights": models.ResNet18_Weights.DEFAULT},
        {"weights": "ResNet18_Weights.IMAGENET1K_V1"},
        {"pretrained": True},
    ):
        np.testing.assert_array_equal(models.resnet18(progress=False, **kwargs).fc.weight.detach().numpy(), fc)
    assert server.requests.count("/" + name) == 1  # downloaded once, then cached
    with pytest.raises(ValueError, match="either pretrained=True or weights="):
        models.resnet18(weights="DEFAULT", pretrained=True)
