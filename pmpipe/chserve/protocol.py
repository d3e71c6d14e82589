"""Pure pieces of ClickHouse's HTTP interface: error codes and bodies, request parameters,
credentials, response headers. Nothing here touches chdb or the network.

References are ClickHouse's own behaviour: `Code: N. DB::Exception: ... (NAME) (version X)`
error bodies with an `X-ClickHouse-Exception-Code` header and the HTTP status ClickHouse maps
each code to; URL parameters split into transport parameters, `param_<name>` query parameters
and settings; credentials from X-ClickHouse-User/Key headers, Basic auth or user/password
parameters.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pmpipe.errors import PipelineError

# --- errors ------------------------------------------------------------------------------------

ERROR_NAMES: dict[int, str] = {
    1: "UNSUPPORTED_METHOD",
    6: "CANNOT_PARSE_TEXT",
    8: "THERE_IS_NO_COLUMN",
    15: "DUPLICATE_COLUMN",
    25: "CANNOT_PARSE_ESCAPE_SEQUENCE",
    26: "CANNOT_PARSE_QUOTED_STRING",
    27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
    33: "CANNOT_READ_ALL_DATA",
    36: "BAD_ARGUMENTS",
    37: "UNKNOWN_ELEMENT_IN_AST",
    38: "CANNOT_PARSE_DATE",
    40: "CHECKSUM_DOESNT_MATCH",
    41: "CANNOT_PARSE_DATETIME",
    44: "ILLEGAL_COLUMN",
    46: "UNKNOWN_FUNCTION",
    47: "UNKNOWN_IDENTIFIER",
    48: "NOT_IMPLEMENTED",
    49: "LOGICAL_ERROR",
    50: "UNKNOWN_TYPE",
    53: "TYPE_MISMATCH",
    56: "UNKNOWN_STORAGE",
    60: "UNKNOWN_TABLE",
    62: "SYNTAX_ERROR",
    63: "UNKNOWN_AGGREGATE_FUNCTION",
    72: "CANNOT_PARSE_NUMBER",
    73: "UNKNOWN_FORMAT",
    76: "CANNOT_OPEN_FILE",
    78: "UNKNOWN_TYPE_OF_QUERY",
    81: "UNKNOWN_DATABASE",
    89: "UNKNOWN_COMPRESSION_METHOD",
    115: "UNKNOWN_SETTING",
    117: "INCORRECT_DATA",
    123: "UNKNOWN_TYPE_OF_AST_NODE",
    152: "UNKNOWN_DIRECTION_OF_SORTING",
    159: "TIMEOUT_EXCEEDED",
    164: "READONLY",
    167: "TOO_DEEP_AST",
    168: "TOO_BIG_AST",
    192: "UNKNOWN_USER",
    193: "WRONG_PASSWORD",
    194: "REQUIRED_PASSWORD",
    202: "TOO_MANY_SIMULTANEOUS_QUERIES",
    209: "SOCKET_TIMEOUT",
    223: "UNEXPECTED_AST_STRUCTURE",
    229: "QUERY_IS_TOO_LARGE",
    236: "ABORTED",
    271: "CANNOT_DECOMPRESS",
    321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    336: "UNKNOWN_DATABASE_ENGINE",
    344: "SUPPORT_IS_DISABLED",
    372: "SESSION_NOT_FOUND",
    373: "SESSION_IS_LOCKED",
    374: "INVALID_SESSION_TIMEOUT",
    376: "CANNOT_PARSE_UUID",
    381: "HTTP_LENGTH_REQUIRED",
    394: "QUERY_WAS_CANCELLED",
    427: "CANNOT_COMPILE_REGEXP",
    439: "CANNOT_SCHEDULE_TASK",
    441: "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
    456: "UNKNOWN_QUERY_PARAMETER",
    457: "BAD_QUERY_PARAMETER",
    497: "ACCESS_DENIED",
    511: "UNKNOWN_ROLE",
    512: "SET_NON_GRANTED_ROLE",
    516: "AUTHENTICATION_FAILED",
    675: "CANNOT_PARSE_IPV4",
    676: "CANNOT_PARSE_IPV6",
    779: "UNSUPPORTED_MEDIA_TYPE",
    1002: "UNKNOWN_EXCEPTION",
}

# ClickHouse's exceptionCodeToHTTPStatus; every other code is a 500.
_STATUS_GROUPS: tuple[tuple[int, frozenset[int]], ...] = (
    (401, frozenset({194})),
    (403, frozenset({192, 193, 516, 512, 497})),
    (
        400,
        frozenset(
            {36, 427, 6, 25, 26, 38, 41, 72, 441, 675, 676, 27, 376, 15, 44, 37, 123, 8}
            | {167, 168, 223, 62, 117, 53, 321}
        ),
    ),
    (404, frozenset({60, 46, 47, 50, 56, 81, 115, 152, 63, 73, 336, 78, 511})),
    (413, frozenset({229})),
    (501, frozenset({48})),
    (503, frozenset({209, 76, 439})),
    (411, frozenset({381})),
    (408, frozenset({159})),
    (415, frozenset({779})),
)


def http_status_for(code: int) -> int:
    for status, codes in _STATUS_GROUPS:
        if code in codes:
            return status
    return 500


class ClickHouseError(PipelineError):
    """An error answered to the client in ClickHouse's shape.

    `message` is the text after `DB::Exception: ` (without the trailing `(NAME)`); `status`
    defaults to the HTTP status ClickHouse uses for `code`.
    """

    def __init__(
        self, code: int, message: str, *, status: int | None = None, name: str | None = None
    ) -> None:
        self.code = code
        self.name = name or ERROR_NAMES.get(code, "UNKNOWN_EXCEPTION")
        self.status = status if status is not None else http_status_for(code)
        super().__init__(message, component="chserve")

    def body(self, version: str) -> str:
        message = self.message.rstrip()
        if not message.endswith("."):
            message += "."
        return f"Code: {self.code}. DB::Exception: {message} ({self.name}) (version {version})\n"


_CODE = re.compile(r"Code: (\d+)\.")
_VERSION_SUFFIX = re.compile(r"\s*\(version [^)]*\)\s*$")
_NAME_SUFFIX = re.compile(r"\s*\(([A-Z0-9_]+)\)\s*$")
_PREFIX = re.compile(r"^.*?Code: \d+\.\s*(?:DB::Exception:\s*)?", re.DOTALL)


def error_from_chdb(error: BaseException) -> ClickHouseError:
    """Turn a chdb exception (text containing `Code: N. DB::Exception: ...`) into a
    ClickHouseError carrying N and the message without its `(NAME) (version)` suffixes."""
    text = str(error).strip()
    match = _CODE.search(text)
    if match is None:
        return ClickHouseError(1002, text or type(error).__name__)
    text = _VERSION_SUFFIX.sub("", text)
    name_match = _NAME_SUFFIX.search(text)
    text = _NAME_SUFFIX.sub("", text)
    text = _PREFIX.sub("", text, count=1)
    name = name_match.group(1) if name_match else None
    return ClickHouseError(int(match.group(1)), text.rstrip(), name=name)


# --- request parameters ------------------------------------------------------------------------

# URL parameters that are part of the HTTP transport, not settings chdb should see. Some are
# unknown to chdb (wait_end_of_query, session_timeout, client_protocol_version...), the others
# only make sense for an HTTP server and are handled here.
TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "user",
        "password",
        "quota_key",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "role",
        "client_protocol_version",
        "stacktrace",
        "enable_http_compression",
        "http_zlib_compression_level",
        "http_native_compression_disable_checksumming_on_decompress",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "http_wait_end_of_query",
        "http_response_buffer_size",
        "cancel_http_readonly_queries_on_client_close",
        "add_http_cors_header",
        "http_write_exception_in_output_format",
        "http_response_headers",
        "session_timezone_from_client",
    }
)
QUERY_PARAM_PREFIX = "param_"
DEFAULT_FORMAT = "TabSeparated"
DEFAULT_SESSION_TIMEOUT_SECS = 60.0
MAX_SESSION_TIMEOUT_SECS = 3600.0
_TRUE = {"1", "true", "yes", "on"}


def _flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUE


@dataclass(frozen=True)
class RequestSpec:
    """Everything the URL (and form fields) of one query request say."""

    readonly: bool  # GET: ClickHouse runs it with readonly=2
    query_text: str = ""  # the `query` parameter (the body, if any, follows it)
    settings: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    default_format: str = DEFAULT_FORMAT
    query_id: str = ""
    session_id: str | None = None
    session_timeout_secs: float = DEFAULT_SESSION_TIMEOUT_SECS
    session_check: bool = False
    http_compression: bool = False
    native_decompress: bool = False
    native_compress: bool = False
    cors: bool = False


def parse_request(
    params: Iterable[tuple[str, str]], *, readonly: bool, query_id: str
) -> RequestSpec:
    """Split URL/form parameters into transport parameters, query parameters and settings.
    The last occurrence of a repeated name wins, as in ClickHouse."""
    values: dict[str, str] = {}
    for name, value in params:
        values[name] = value
    settings = {
        name: value
        for name, value in values.items()
        if name not in TRANSPORT_PARAMS and not name.startswith(QUERY_PARAM_PREFIX)
    }
    query_params = {
        name[len(QUERY_PARAM_PREFIX) :]: value
        for name, value in values.items()
        if name.startswith(QUERY_PARAM_PREFIX)
    }
    return RequestSpec(
        readonly=readonly,
        query_text=values.get("query", ""),
        settings=settings,
        query_params=query_params,
        database=values.get("database") or None,
        default_format=values.get("default_format") or DEFAULT_FORMAT,
        query_id=values.get("query_id") or query_id,
        session_id=values.get("session_id") or None,
        session_timeout_secs=_session_timeout(values.get("session_timeout")),
        session_check=_flag(values.get("session_check")),
        http_compression=_flag(values.get("enable_http_compression")),
        native_decompress=_flag(values.get("decompress")),
        native_compress=_flag(values.get("compress")),
        cors=_flag(values.get("add_http_cors_header")),
    )


def _session_timeout(raw: str | None) -> float:
    if raw is None or raw == "":
        return DEFAULT_SESSION_TIMEOUT_SECS
    try:
        value = float(raw)
    except ValueError:
        raise ClickHouseError(374, f"Invalid session timeout: '{raw}'") from None
    if not 0 < value <= MAX_SESSION_TIMEOUT_SECS:
        raise ClickHouseError(
            374,
            f"Session timeout '{raw}' is larger than max_session_timeout: "
            f"{MAX_SESSION_TIMEOUT_SECS:g}. Maximum session timeout could be modified in "
            "configuration file",
        )
    return value


# --- credentials -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)


def extract_credentials(headers: Mapping[str, str], params: Mapping[str, str]) -> Credentials:
    """Credentials as ClickHouse reads them: X-ClickHouse-User/X-ClickHouse-Key headers, else
    HTTP Basic auth, else `user`/`password` URL parameters; the user defaults to `default`."""
    user = headers.get("X-ClickHouse-User")
    key = headers.get("X-ClickHouse-Key")
    if user is not None or key is not None:
        return Credentials(user or "default", key or "")
    authorization = headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "basic" and token:
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise auth_failed("default") from None
        name, _, password = decoded.partition(":")
        return Credentials(name or "default", password)
    if authorization:
        raise ClickHouseError(
            516, f"Unsupported HTTP authorization scheme {scheme!r} (use Basic or X-ClickHouse-*)"
        )
    return Credentials(params.get("user") or "default", params.get("password", ""))


def auth_failed(user: str) -> ClickHouseError:
    return ClickHouseError(
        516,
        f"{user}: Authentication failed: password is incorrect, or there is no user with such name",
    )


def check_credentials(given: Credentials, user: str, password: str) -> None:
    """Raise AUTHENTICATION_FAILED unless `given` matches (no-op when no password is set)."""
    if not password:
        return
    user_ok = hmac.compare_digest(given.user.encode(), user.encode())
    password_ok = hmac.compare_digest(given.password.encode(), password.encode())
    if not (user_ok and password_ok):
        raise auth_failed(given.user)


# --- response headers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    result_rows: int = 0
    result_bytes: int = 0


def summary_header(stats: Stats, elapsed_ns: int) -> str:
    """X-ClickHouse-Summary: ClickHouse sends every number as a JSON string."""
    summary = {
        "read_rows": stats.read_rows,
        "read_bytes": stats.read_bytes,
        "written_rows": stats.written_rows,
        "written_bytes": stats.written_bytes,
        "total_rows_to_read": stats.read_rows,
        "result_rows": stats.result_rows,
        "result_bytes": stats.result_bytes,
        "elapsed_ns": elapsed_ns,
    }
    return json.dumps({k: str(v) for k, v in summary.items()}, separators=(",", ":"))


_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
    "JSON": "application/json; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
    "JSONCompactEachRow": "application/x-ndjson; charset=UTF-8",
    "XML": "application/xml; charset=UTF-8",
    "Pretty": "text/plain; charset=UTF-8",
    "Markdown": "text/markdown; charset=UTF-8",
}
_BINARY = ("Native", "RowBinary", "Arrow", "Parquet", "ORC", "Avro", "Protobuf", "MsgPack", "Npy")


def content_type_for(fmt: str | None) -> str:
    if fmt is None:
        return "text/plain; charset=UTF-8"
    if fmt in _CONTENT_TYPES:
        return _CONTENT_TYPES[fmt]
    if fmt.startswith(_BINARY):
        return "application/octet-stream"
    if fmt.startswith(("TabSeparated", "TSV")):
        return _CONTENT_TYPES["TSV"]
    if fmt.startswith("JSON"):
        return "application/json; charset=UTF-8"
    return "text/plain; charset=UTF-8"
