"""`graphc.hub`: downloading checkpoints by URL into a local cache, like
`torch.hub`'s `load_state_dict_from_url`.

Files land in `<hub dir>/checkpoints/<file name>`; the hub dir is
`$GRAPHC_HOME/hub` when GRAPHC_HOME is set, else
`$XDG_CACHE_HOME/graphc/hub`, else `~/.cache/graphc/hub` (`set_dir`
overrides all three). A cached file is used as is; a missing one is
downloaded with a tqdm progress bar, its SHA-256 checked against the hash
prefix in its name (`resnet18-f37072fd.pth`: the digest starts with
`f37072fd`) when asked, and written atomically, so an interrupted download
never leaves a partial file under the final name. The file is then read by
`graphc.load`, which never runs code from it.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

from graphc import config
from graphc.errors import GraphcError
from graphc.runtime.cache import atomic_write

__all__ = ["DownloadError", "download_url_to_file", "get_dir", "load_state_dict_from_url", "set_dir"]

# `name-<hex>.ext`: the hex digits are a prefix of the file's SHA-256.
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
_CHUNK = 1 << 16
_TIMEOUT = 60.0
_hub_dir: str | None = None


class DownloadError(GraphcError, OSError):
    """A file could not be downloaded (no network, HTTP error) or its
    content does not match the hash in its name. The message names the URL
    and the path where the file is expected. Fix: download the file
    elsewhere and place it at that path, or retry when online."""


def get_dir() -> str:
    """The hub cache folder (checkpoints go to its `checkpoints` subfolder)."""
    if _hub_dir is not None:
        return _hub_dir
    home = config.get("GRAPHC_HOME")
    if home:
        return os.path.join(os.path.expanduser(home), "hub")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return os.path.join(os.path.expanduser(cache), "graphc", "hub")


def set_dir(d: str | os.PathLike) -> None:
    """Use `d` as the hub cache folder from now on."""
    global _hub_dir
    _hub_dir = os.path.expanduser(os.fspath(d))


def download_url_to_file(url: str, dst: str | os.PathLike, hash_prefix: str | None = None, progress: bool = True):
    """Download `url` to the path `dst` (atomically), checking that the
    SHA-256 of the content starts with `hash_prefix` when given."""
    dst = os.fspath(dst)
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
            total = response.headers.get("Content-Length")
            data = _read_with_progress(response, int(total) if total and total.isdigit() else None, progress, dst)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(
            f"could not download {url} ({reason}). To use this file offline, download it elsewhere and place "
            f"it at {dst}"
        ) from None
    if hash_prefix is not None:
        digest = hashlib.sha256(data).hexdigest()
        if not digest.startswith(hash_prefix):
            raise DownloadError(
                f'invalid hash value for {url} (expected "{hash_prefix}", got "{digest}"); the download is '
                f"corrupt or the file changed. Nothing was written to {dst}"
            )
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    atomic_write(dst, data)


def _read_with_progress(response, total: int | None, progress: bool, dst: str) -> bytes:
    from tqdm import tqdm

    chunks = []
    with tqdm(
        total=total,
        disable=not progress,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=os.path.basename(dst),
        file=sys.stderr,
    ) as bar:
        while True:
            chunk = response.read(_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            bar.update(len(chunk))
    data = b"".join(chunks)
    if total is not None and len(data) != total:
        raise OSError(f"connection closed after {len(data)} of {total} bytes")
    return data


def load_state_dict_from_url(
    url: str,
    model_dir: str | os.PathLike | None = None,
    map_location=None,
    progress: bool = True,
    check_hash: bool = False,
    file_name: str | None = None,
    weights_only: bool = True,
):
    """Load the checkpoint at `url`, downloading it into `model_dir`
    (default `<get_dir()>/checkpoints`) unless it is already there, as
    `torch.hub.load_state_dict_from_url` does. With `check_hash` the
    SHA-256 of a download must start with the hex digits after the last
    '-' of its file name. The file is read by `graphc.load` (torch.save
    zip or legacy formats, safetensors)."""
    import graphc

    model_dir = os.fspath(model_dir) if model_dir is not None else os.path.join(get_dir(), "checkpoints")
    filename = file_name or os.path.basename(urllib.parse.urlparse(url).path)
    if not filename:
        raise ValueError(f"load_state_dict_from_url: cannot take a file name from {url!r}; pass file_name=")
    cached_file = os.path.join(model_dir, filename)
    if not os.path.exists(cached_file):
        hash_prefix = None
        if check_hash:
            match = HASH_REGEX.search(filename)
            hash_prefix = match.group(1) if match else None
        print(f'Downloading: "{url}" to {cached_file}', file=sys.stderr)
        download_url_to_file(url, cached_file, hash_prefix, progress=progress)
    return graphc.load(cached_file, map_location=map_location, weights_only=weights_only)
