"""Download locked .deb files into a content-addressed cache, verifying sha256 and size.

Cache layout: `CACHE/<sha256>.deb`. A file only ever lands there after its digest has
been checked (download to a temp name in the same dir, verify, rename), and cache hits
are re-hashed (about 15 ms for the whole base) so a corrupted cache is repaired, not used.

Downloads use urllib with the system CA bundle (mirrors may be https behind a proxy whose
CA only the system bundle has). If urllib fails and apt-get is present, `apt-get download
NAME=VERSION` is tried as a fallback (it uses the host's apt sources and proxy settings).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Mapping

from mlbuild.debian.errors import ChecksumMismatch, FetchError
from mlbuild.debian.lock import LockedPackage, PackageLock

_SYSTEM_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlbuild" / "debs"


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def verify_file(path: Path, pkg: LockedPackage) -> None:
    """Raise ChecksumMismatch naming the package and both hashes if `path` is not `pkg`."""
    digest, size = sha256_file(path)
    if digest != pkg.sha256 or size != pkg.size:
        raise ChecksumMismatch(
            f"{pkg.name} {pkg.version} ({pkg.deb_name}): sha256 mismatch: the lock says "
            f"{pkg.sha256} ({pkg.size} bytes), the download is {digest} ({size} bytes). "
            "If the mirror now serves a different build, refresh the lock "
            "(`./pants mlbuild lock-debian`); otherwise the download was corrupted or tampered with"
        )


def _ssl_context() -> ssl.SSLContext:
    cafile = os.environ.get("SSL_CERT_FILE")
    if not cafile:
        cafile = next((p for p in _SYSTEM_CA_BUNDLES if os.path.exists(p)), None)
    return ssl.create_default_context(cafile=cafile)


def _download_urllib(url: str, dest, timeout: float = 60.0) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "mlbuild-debian-fetch/1"})
    ctx = _ssl_context() if url.startswith("https:") else None
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
        shutil.copyfileobj(resp, dest, _CHUNK)


def _download_apt(pkg: LockedPackage, dest_dir: Path) -> Path:
    spec = f"{pkg.name}:{pkg.architecture}={pkg.version}" if pkg.architecture != "all" else f"{pkg.name}={pkg.version}"
    proc = subprocess.run(
        ["apt-get", "download", "-q", spec],
        cwd=dest_dir,
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    if proc.returncode != 0:
        raise FetchError(f"apt-get download {spec} failed: {proc.stderr.strip()[-500:]}")
    debs = list(dest_dir.glob("*.deb"))
    if len(debs) != 1:
        raise FetchError(f"apt-get download {spec} produced {[d.name for d in debs]}")
    return debs[0]


Downloader = Callable[[str, "object"], None]


def fetch_package(
    pkg: LockedPackage,
    mirrors: Mapping[str, str],
    cache_dir: Path,
    *,
    download: Downloader = _download_urllib,
    apt_fallback: bool = True,
) -> Path:
    """Return the path of `pkg`'s verified .deb in `cache_dir`, downloading it if needed."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / f"{pkg.sha256}.deb"
    if final.exists():
        try:
            verify_file(final, pkg)
            return final
        except ChecksumMismatch:
            final.unlink()  # corrupted cache entry: fetch it again

    url = pkg.url(mirrors)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{pkg.name}.", suffix=".part", dir=cache_dir)
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                download(url, f)
        except (urllib.error.URLError, OSError) as e:
            if not (apt_fallback and shutil.which("apt-get")):
                raise FetchError(f"{pkg.name} {pkg.version}: download of {url} failed: {e}") from None
            with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".apt-") as d:
                try:
                    got = _download_apt(pkg, Path(d))
                except FetchError as apt_err:
                    raise FetchError(
                        f"{pkg.name} {pkg.version}: download of {url} failed ({e}), and so did the "
                        f"fallback ({apt_err}). If the mirror dropped this version, refresh the lock: "
                        "./pants mlbuild lock-debian --output LOCKFILE"
                    ) from None
                os.replace(got, tmp)
        verify_file(tmp, pkg)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
        return final
    finally:
        tmp.unlink(missing_ok=True)


def fetch_all(
    lock: PackageLock,
    cache_dir: Path | None = None,
    *,
    mirrors: Mapping[str, str] | None = None,
    jobs: int = 8,
    download: Downloader = _download_urllib,
    apt_fallback: bool = True,
) -> dict[str, Path]:
    """Fetch every package of `lock`; returns {package name: cached .deb path}."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    mirror_map = {**lock.mirrors, **(mirrors or {})}

    def one(pkg: LockedPackage) -> Path:
        return fetch_package(pkg, mirror_map, cache_dir, download=download, apt_fallback=apt_fallback)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        paths = list(pool.map(one, lock.packages))
    return {pkg.name: path for pkg, path in zip(lock.packages, paths)}
