"""Products on object storage and HTTP: URLs, credentials and endpoints, as plain data.

One place turns what users keep in their environment (or pass as ``storage_options``)
into the two things the readers need:

- **GDAL settings** for ``/vsis3/`` and ``/vsicurl/`` (pixels): the endpoint, HTTPS and
  path-style addressing, and the HTTP behaviour of :data:`REMOTE_GDAL`. These travel in
  the dask graph. The *secrets* (keys, session token) never do: a read task takes them
  from its own process (:func:`task_credentials`: what the client registered in this
  process, else the worker's environment).
- **fsspec storage options** for :mod:`s3fs` (metadata XML, zip directories, listings).

Where settings come from, first found wins:

1. ``storage_options`` given to ``read_product``/``open_cube``/``LocalCatalog``
   (s3fs names: ``key``, ``secret``, ``token``, ``profile``, ``endpoint_url``,
   ``region_name``, ``anon``);
2. AWS variables: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``,
   ``AWS_PROFILE``, ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``;
3. GDAL's own: ``AWS_S3_ENDPOINT``, ``AWS_HTTPS``, ``AWS_VIRTUAL_HOSTING``;
4. the Copernicus Data Space Ecosystem: ``CDSE_S3_ACCESS_KEY``/``CDSE_S3_SECRET_KEY``
   (used when no AWS key is set), endpoint ``CDSE_S3_ENDPOINT`` or
   ``eodata.dataspace.copernicus.eu``, path-style.

This module is pure (no GDAL, no fsspec import): it only computes dictionaries and
messages.

Examples
--------
>>> remote = settings({"endpoint_url": "http://127.0.0.1:9000", "key": "K", "secret": "S"},
...                   environ={})
>>> remote
Remote(endpoint='127.0.0.1:9000', https=False, virtual_hosting=False, credentials=True)
>>> remote.gdal_env()["AWS_S3_ENDPOINT"], remote.gdal_env()["AWS_VIRTUAL_HOSTING"]
('127.0.0.1:9000', 'FALSE')
>>> "S" in remote.gdal_env().values()
False
>>> gdal_path("s3://bucket/a/NAME.zip")
'/vsis3/bucket/a/NAME.zip'
>>> redact("https://user:pw@host/x.zip?X-Amz-Signature=abc")
'https://host/x.zip'
>>> object_url("/vsizip//vsis3/bucket/a/NAME.zip/NAME.SAFE/B04.jp2")
('s3://bucket/a/NAME.zip', 'NAME.SAFE/B04.jp2')
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "CDSE_ENDPOINT",
    "REMOTE_GDAL",
    "SECRET_SETTINGS",
    "RETRY_STATUSES",
    "Remote",
    "causes",
    "gdal_path",
    "http_status",
    "is_remote",
    "object_url",
    "redact",
    "register_credentials",
    "scrub",
    "settings",
    "split_gdal_path",
    "task_credentials",
    "unavailable",
]

#: CDSE's S3 endpoint (the ``eodata`` bucket), path-style addressing.
CDSE_ENDPOINT = "eodata.dataspace.copernicus.eu"

#: GDAL settings for remote reads, each deliberate. They are added to the settings a read
#: task restores when it reads a ``/vsis3/`` or ``/vsicurl/`` path.
REMOTE_GDAL: dict[str, str | int | bool] = {
    # never list a "folder" on object storage to look for sidecar files (.aux.xml, .ovr):
    # a LIST per opened band file costs a round trip and finds nothing in a .SAFE.
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # a JP2 tile's codestream is one contiguous byte run: fetch adjacent ranges in one GET.
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    # HTTP/2 multiplexing where the server offers it (one connection, parallel ranges).
    "GDAL_HTTP_MULTIPLEX": "YES",
    # object stores answer 5xx and 503 SlowDown under load: retry with back-off rather
    # than failing a whole compute. GDAL retries 429, 500, 502, 503 and 504 (its
    # GDAL_HTTP_RETRY_CODES default; S3's 503 SlowDown included, nothing to add), doubling
    # the delay with some jitter: a request throttled for good fails after 5 attempts in
    # ~10 s (measured: 0.5, 1.2, 2.6 and 5.6 s apart).
    "GDAL_HTTP_MAX_RETRY": 4,
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    # an endpoint that does not answer must fail the task in seconds, not hang a cluster.
    "GDAL_HTTP_CONNECTTIMEOUT": 10,
    "GDAL_HTTP_TIMEOUT": 60,
    # a per-handle cache of fetched bytes: a task reading several windows of a band, or a
    # zip member's header and then its tiles, does not fetch the same bytes twice.
    "VSI_CACHE": True,
    "VSI_CACHE_SIZE": 16 * 2**20,
    # range requests of 256 kB: a 1024 x 1024 tile of a real product is ~1 MB of
    # codestream, and GDAL's default 16 kB costs more round trips (measured on a tiled
    # synthetic JP2: one chunk in 13 GETs / 864 kB at 16 kB, 3 GETs / 1 MB at 256 kB).
    # GDAL reads this once per process, at its first network read.
    "CPL_VSIL_CURL_CHUNK_SIZE": 256 * 1024,
}

#: HTTP statuses of a service that throttles (429, 503 ``SlowDown``) or fails for a while
#: (5xx, 408): worth retrying with back-off, and worth trying again later.
RETRY_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})

_SCHEMES = ("s3://", "http://", "https://")
_URL_RE = re.compile(r"(?:s3|https?)://[^\s'\"<>]+", re.IGNORECASE)
#: GDAL settings that are secrets: never captured into a dask graph.
SECRET_SETTINGS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def is_remote(path: object) -> bool:
    """Whether ``path`` is an ``s3://``, ``http://`` or ``https://`` URL.

    Examples
    --------
    >>> is_remote("s3://b/k.zip"), is_remote("/data/k.zip")
    (True, False)
    """
    return isinstance(path, str) and path.lower().startswith(_SCHEMES)


def redact(url: str) -> str:
    """``url`` without user information, query string or fragment (where secrets hide)."""
    if not is_remote(url):
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every URL redacted (see :func:`redact`) and each of ``secrets`` hidden.

    Examples
    --------
    >>> scrub("GET https://h/x?X-Amz-Signature=abc failed; key K", ("K",))
    'GET https://h/x failed; key ***'
    """
    text = _URL_RE.sub(lambda found: redact(found.group(0)), text)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def gdal_path(url: str) -> str:
    """The GDAL path of an object URL: ``/vsis3/bucket/key`` or ``/vsicurl/https://...``."""
    if url.lower().startswith("s3://"):
        return "/vsis3/" + url[len("s3://") :]
    if is_remote(url):
        return "/vsicurl/" + url
    return url


def split_gdal_path(path: str) -> tuple[str, str]:
    """The GDAL path of the object ``path`` reads and the member inside it (a zip's).

    Examples
    --------
    >>> split_gdal_path("/vsizip//vsis3/bucket/a/NAME.zip/NAME.SAFE/B04.jp2")
    ('/vsis3/bucket/a/NAME.zip', 'NAME.SAFE/B04.jp2')
    >>> split_gdal_path("/vsizip/{/vsicurl/https://host/get?id=1}/NAME.SAFE/B04.jp2")
    ('/vsicurl/https://host/get?id=1', 'NAME.SAFE/B04.jp2')
    """
    if not path.startswith("/vsizip/"):
        return path, ""
    archive = path[len("/vsizip/") :]
    if archive.startswith("{"):
        archive, _, member = archive[1:].partition("}")
        return archive, member.lstrip("/")
    end = archive.lower().find(".zip/") + len(".zip")
    if end < len(".zip"):
        return archive, ""
    return archive[:end], archive[end + 1 :]


def object_url(path: str) -> tuple[str, str]:
    """The object a GDAL ``path`` reads, as a URL without secrets, and the member in it.

    The inverse of :func:`gdal_path`, also for a file inside a zip (``/vsizip/``); a
    local path comes back as it is.

    Examples
    --------
    >>> object_url("/vsis3/bucket/a/B04.jp2")
    ('s3://bucket/a/B04.jp2', '')
    >>> object_url("/vsizip/{/vsicurl/https://u:pw@host/get?id=1}/NAME.SAFE/B04.jp2")
    ('https://host/get', 'NAME.SAFE/B04.jp2')
    """
    path, member = split_gdal_path(path)
    if path.startswith("/vsis3/"):
        return redact("s3://" + path[len("/vsis3/") :]), member
    if path.startswith("/vsicurl/"):
        return redact(path[len("/vsicurl/") :]), member
    return path, member


def causes(error: BaseException) -> list[BaseException]:
    """``error`` and the errors it was raised from (``__cause__``, else ``__context__``)."""
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def http_status(error: BaseException) -> int | None:
    """The HTTP status of the answer behind ``error`` or its causes, if one is known.

    botocore errors (which s3fs chains as the cause of its ``OSError``) carry it in
    ``response``, aiohttp's (fsspec's HTTP file system) in ``status``.
    """
    for cause in causes(error):
        response = getattr(cause, "response", None)
        if isinstance(response, Mapping):
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(status, int):
                return status
        status = getattr(cause, "status", None)
        if isinstance(status, int) and status >= 400:
            return status
    return None


def unavailable(status: int | None, detail: str = "") -> str:
    """What to tell when the service throttles, fails or does not answer, and what to do.

    ``status`` is the HTTP status of its last answer (None: no answer); ``detail``
    says more (an error message without secrets).

    Examples
    --------
    >>> unavailable(503).split(",")[0]
    'the service is throttling requests or is unavailable (HTTP 503)'
    """
    endpoint = "(AWS_ENDPOINT_URL, AWS_S3_ENDPOINT, CDSE_S3_ENDPOINT or storage_options)"
    if not status:
        return (
            "the service did not answer" + (f" ({detail})" if detail else "") + ", still "
            f"after retries; check that the endpoint {endpoint} and the network answer, or "
            "retry later"
        )
    if status in (429, 503):
        what = f"the service is throttling requests or is unavailable (HTTP {status})"
    else:
        what = f"the service failed (HTTP {status})"
    return (
        f"{what}, still after retries with back-off; retry later, or read with fewer "
        "requests at once (fewer dask workers or threads, e.g. "
        "dask.config.set(num_workers=4)); if it persists, check that the endpoint answers "
        f"{endpoint}"
    )


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.strip().upper() in ("YES", "TRUE", "ON", "1")


def _endpoint(url: str) -> tuple[str, bool]:
    """``host[:port]`` and whether HTTPS, from an endpoint URL or bare host."""
    if "://" not in url:
        return url.rstrip("/"), True
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] + parts.path.rstrip("/"), parts.scheme == "https"


@dataclass(frozen=True, repr=False)
class Remote:
    """Where and how to reach object storage; holds secrets, so it never shows them.

    Attributes
    ----------
    endpoint : str or None
        ``host[:port]`` of an S3-compatible endpoint; None: AWS.
    https : bool
        Whether the endpoint speaks HTTPS.
    virtual_hosting : bool or None
        ``False``: path-style addressing (``host/bucket/key``), as MinIO, moto and
        CDSE need; None: GDAL's and botocore's default.
    """

    endpoint: str | None = None
    https: bool = True
    virtual_hosting: bool | None = None
    region: str | None = None
    anon: bool = False
    profile: str | None = None
    _secrets: tuple[str | None, str | None, str | None] = field(default=(None, None, None))

    def __repr__(self) -> str:
        return (
            f"Remote(endpoint={self.endpoint!r}, https={self.https}, "
            f"virtual_hosting={self.virtual_hosting}, credentials={self.has_credentials})"
        )

    @property
    def has_credentials(self) -> bool:
        """Whether keys were found (a profile counts too)."""
        return bool(self._secrets[0] or self.profile)

    def secrets(self) -> tuple[str, ...]:
        """The secret strings, to check that no message holds them."""
        return tuple(s for s in self._secrets if s)

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint as a URL (for botocore), or None for AWS."""
        if self.endpoint is None:
            return None
        return f"{'https' if self.https else 'http'}://{self.endpoint}"

    def gdal_env(self) -> dict[str, str | int | bool]:
        """GDAL settings without secrets: :data:`REMOTE_GDAL`, endpoint, HTTPS, addressing."""
        env: dict[str, str | int | bool] = dict(REMOTE_GDAL)
        if self.endpoint is not None:
            env["AWS_S3_ENDPOINT"] = self.endpoint
            env["AWS_HTTPS"] = "YES" if self.https else "NO"
        if self.virtual_hosting is not None:
            env["AWS_VIRTUAL_HOSTING"] = "TRUE" if self.virtual_hosting else "FALSE"
        if self.region:
            env["AWS_REGION"] = self.region
        if self.anon:
            env["AWS_NO_SIGN_REQUEST"] = "YES"
        return env

    def gdal_credentials(self) -> dict[str, str]:
        """The secret GDAL settings (keys, token, profile): never put into a dask graph."""
        key, secret, token = self._secrets
        out: dict[str, str] = {}
        if key and secret:
            out["AWS_ACCESS_KEY_ID"], out["AWS_SECRET_ACCESS_KEY"] = key, secret
            if token:
                out["AWS_SESSION_TOKEN"] = token
        elif self.profile:
            out["AWS_PROFILE"] = self.profile
        return out

    def without_secrets(self) -> Remote:
        """The same endpoint and settings with no keys: what may travel to other processes."""
        return replace(self, _secrets=(None, None, None))

    def with_task_credentials(self) -> Remote:
        """This endpoint with the keys this process has for it (see :func:`task_credentials`).

        Objects that travel to dask workers drop their keys (:meth:`without_secrets`)
        and take them back here, in the process that uses them.
        """
        if self.anon or self._secrets[0]:
            return self
        found = task_credentials(self.gdal_env())
        if "AWS_ACCESS_KEY_ID" in found:
            keys = (
                found["AWS_ACCESS_KEY_ID"],
                found["AWS_SECRET_ACCESS_KEY"],
                found.get("AWS_SESSION_TOKEN"),
            )
            return replace(self, _secrets=keys, profile=None)
        return replace(self, profile=self.profile or found.get("AWS_PROFILE"))

    def storage_options(self) -> dict[str, Any]:
        """Options for :class:`s3fs.S3FileSystem` (secrets included: keep them local)."""
        key, secret, token = self._secrets
        options: dict[str, Any] = {}
        if self.anon:
            options["anon"] = True
        elif key and secret:
            options.update(key=key, secret=secret)
            if token:
                options["token"] = token
        elif self.profile:
            options["profile"] = self.profile
        client: dict[str, Any] = {}
        if self.endpoint_url:
            client["endpoint_url"] = self.endpoint_url
        if self.region:
            client["region_name"] = self.region
        if client:
            options["client_kwargs"] = client
        config: dict[str, Any] = {
            # an endpoint that does not answer: fail in seconds with a clear message
            "connect_timeout": 10,
            # botocore's standard mode retries 5xx, 429 and S3's 503 SlowDown with jittered
            # exponential back-off (longer after throttling): 3 retries, 4 attempts in all,
            # a throttled request fails within ~7 s (s3fs adds one more round, see
            # sentinel_cube.safe._remote)
            "retries": {"max_attempts": 3, "mode": "standard"},
        }
        if self.virtual_hosting is False:
            config["s3"] = {"addressing_style": "path"}
        options["config_kwargs"] = config
        return options


def settings(
    storage_options: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    url: str | None = None,
) -> Remote:
    """Resolve endpoint and credentials from ``storage_options``, then ``environ``.

    Parameters
    ----------
    storage_options
        s3fs-style options that override the environment: ``key``, ``secret``,
        ``token``, ``profile``, ``endpoint_url``, ``region_name``, ``anon``.
    environ
        The environment to read (default ``os.environ``).
    url
        The object to reach. An ``s3://eodata/...`` URL (CDSE's bucket) is read with the
        ``CDSE_S3_*`` settings whenever ``CDSE_S3_ACCESS_KEY`` is set and
        ``storage_options`` names no endpoint or key, whatever the ``AWS_*`` variables say:
        so one environment reads CDSE products and writes a store to another service.

    Returns
    -------
    Remote

    Examples
    --------
    >>> env = {"AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "B",
    ...        "AWS_ENDPOINT_URL": "https://s3.example.org", "CDSE_S3_ACCESS_KEY": "C",
    ...        "CDSE_S3_SECRET_KEY": "D"}
    >>> settings(environ=env, url="s3://eodata/Sentinel-2/x.SAFE").endpoint
    'eodata.dataspace.copernicus.eu'
    >>> settings(environ=env, url="s3://my-bucket/cube.zarr").endpoint
    's3.example.org'
    """
    env = os.environ if environ is None else environ
    opts = dict(storage_options or {})
    client = dict(opts.get("client_kwargs") or {})
    if _cdse_object(url, opts, client, env):
        host, secure = _endpoint(env.get("CDSE_S3_ENDPOINT") or CDSE_ENDPOINT)
        keys = (env.get("CDSE_S3_ACCESS_KEY"), env.get("CDSE_S3_SECRET_KEY"), None)
        return Remote(endpoint=host, https=secure, virtual_hosting=False, _secrets=keys)
    unknown = set(opts) - {
        "key", "secret", "token", "profile", "endpoint_url", "region_name", "region",
        "anon", "client_kwargs",
    }  # fmt: skip
    if unknown:
        from .exceptions import SentinelCubeError

        raise SentinelCubeError(
            f"storage_options has unknown entries {sorted(unknown)}; use key, secret, token, "
            "profile, endpoint_url, region_name or anon"
        )
    key = opts.get("key") or env.get("AWS_ACCESS_KEY_ID")
    secret = opts.get("secret") or env.get("AWS_SECRET_ACCESS_KEY")
    token = opts.get("token") or env.get("AWS_SESSION_TOKEN")
    if opts.get("key"):  # explicit keys: no session token of another identity
        token = opts.get("token")
    profile = opts.get("profile") or env.get("AWS_PROFILE")
    cdse = False
    if not key and not profile and env.get("CDSE_S3_ACCESS_KEY"):
        key, secret, token = env.get("CDSE_S3_ACCESS_KEY"), env.get("CDSE_S3_SECRET_KEY"), None
        cdse = True

    endpoint: str | None = None
    https = True
    virtual: bool | None = None
    url = (
        opts.get("endpoint_url")
        or client.get("endpoint_url")
        or env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
    )
    if url:
        endpoint, https = _endpoint(str(url))
        virtual = False  # custom endpoints (MinIO, moto, Ceph, CDSE) want path-style
    elif env.get("AWS_S3_ENDPOINT"):  # GDAL's own settings
        endpoint = env["AWS_S3_ENDPOINT"].rstrip("/")
        https = _flag(env.get("AWS_HTTPS")) is not False
    elif cdse:
        endpoint, https = _endpoint(env.get("CDSE_S3_ENDPOINT") or CDSE_ENDPOINT)
        virtual = False
    gdal_virtual = _flag(env.get("AWS_VIRTUAL_HOSTING"))
    if gdal_virtual is not None and not opts.get("endpoint_url"):
        virtual = gdal_virtual
    return Remote(
        endpoint=endpoint,
        https=https,
        virtual_hosting=virtual,
        region=opts.get("region_name")
        or opts.get("region")
        or client.get("region_name")
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION"),
        anon=bool(opts.get("anon")),
        profile=None if key else profile,
        _secrets=(key, secret, token),
    )


def _cdse_object(
    url: str | None, opts: Mapping[str, Any], client: Mapping[str, Any], env: Mapping[str, str]
) -> bool:
    """Whether ``url`` is in CDSE's ``eodata`` bucket and is to be read with CDSE's keys."""
    if not url or not (url.lower().startswith("s3://eodata/") or "/vsis3/eodata/" in url):
        return False
    explicit = opts.get("endpoint_url") or client.get("endpoint_url") or opts.get("key")
    return not explicit and bool(env.get("CDSE_S3_ACCESS_KEY"))


# ------------------------------------------------------------------ credentials of tasks

_REGISTERED: dict[str, dict[str, str]] = {}
_REGISTERED_LOCK = threading.Lock()


def register_credentials(remote: Remote) -> None:
    """Remember ``remote``'s explicit credentials in this process, for its endpoint.

    Read tasks running in this process (dask's threaded scheduler) find them with
    :func:`task_credentials`; tasks in other processes take keys from their own
    environment.
    """
    secrets = remote.gdal_credentials()
    if secrets:
        with _REGISTERED_LOCK:
            _REGISTERED[remote.endpoint or ""] = secrets


def task_credentials(env: Mapping[str, object]) -> dict[str, str]:
    """The secret GDAL settings a read task adds for the endpoint of its settings ``env``.

    Those registered in this process for the endpoint, else the ones this process's
    environment gives (``AWS_*`` are read by GDAL itself; ``CDSE_S3_*`` are
    translated here).
    """
    endpoint = str(env.get("AWS_S3_ENDPOINT") or "")
    with _REGISTERED_LOCK:
        found = _REGISTERED.get(endpoint)
    if found:
        return dict(found)
    cdse = settings(environ=os.environ, url="s3://eodata/")
    if endpoint and cdse.has_credentials and cdse.endpoint == endpoint:
        return cdse.gdal_credentials()  # CDSE's endpoint: CDSE's keys, whatever AWS_* say
    return settings(environ=os.environ).gdal_credentials()
