"""One typed settings object, read from the environment (``CALLWRIGHT_*``) and an
optional TOML file.

Precedence, highest first: keyword arguments, environment, the TOML file named by
``CALLWRIGHT_CONFIG`` (or ``./callwright.toml`` when it exists), the defaults below.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = "callwright.toml"
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]"})  # noqa: S104 - names, not binds


def _config_file() -> Path | None:
    named = os.environ.get("CALLWRIGHT_CONFIG")
    if named:
        return Path(named)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


class SipRegistration(BaseModel):
    """One account to register to a PBX or carrier (``sip_register``); read from
    ``sip:USER:PASSWORD@HOST[:PORT][;transport=udp|tcp][;expires=S][;auth_user=U]
    [;contact_user=N]`` (user and password %-escaped)."""

    model_config = ConfigDict(hide_input_in_errors=True, frozen=True)

    user: str = Field(min_length=1)
    password: SecretStr | None = None
    host: str = Field(min_length=1)
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Literal["udp", "tcp"] = "udp"
    expires: int = Field(default=300, ge=1, le=86400)
    auth_user: str | None = None  # the digest username, when it is not the AOR's user
    contact_user: str | None = None  # the user of our Contact (the number INVITEs name)

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.host}"

    def __str__(self) -> str:  # never the password
        return f"{self.aor} via {self.transport}:{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> SipRegistration:
        from urllib.parse import unquote

        head, *raw_params = text.strip().split(";")
        scheme, colon, rest = head.partition(":")
        userinfo, at, hostport = rest.rpartition("@")
        if scheme.lower() != "sip" or not colon or not at:
            raise ValueError("a registration is sip:USER:PASSWORD@HOST[:PORT][;params]")
        user, _, password = userinfo.partition(":")
        host, _, port = hostport.partition(":")
        fields: dict[str, Any] = {"user": unquote(user), "host": host}
        if password:
            fields["password"] = unquote(password)
        if port:
            fields["port"] = port
        for item in raw_params:
            name, _, value = item.partition("=")
            if name not in ("transport", "expires", "auth_user", "contact_user") or not value:
                raise ValueError(f"unknown registration parameter {name!r}")
            fields[name] = unquote(value)
        return cls.model_validate(fields)


class Settings(BaseSettings):
    # Inputs stay out of validation errors: several fields carry secrets (sip_register).
    model_config = SettingsConfigDict(
        env_prefix="CALLWRIGHT_", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Field(
        default=Path("./var"), description="Where the store, keys and recordings live."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: a SQLite file in data_dir. "
        "PostgreSQL: postgresql+asyncpg://user@host/db",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # Dispatch: concurrency and the queue lease.
    max_concurrent_calls: int = Field(
        default=50, ge=1, description="Calls one process runs at once."
    )
    max_calls_per_org: int = Field(
        default=20, ge=1, description="Live calls one org may have across all processes."
    )
    dispatch_poll_seconds: float = Field(default=0.5, gt=0)
    lease_seconds: float = Field(
        default=15.0, gt=0, description="How long a claimed call stays ours without renewal."
    )
    worker_id: str | None = Field(
        default=None, description="Name of this process in leases; default host:pid."
    )
    sandbox_numbers: bool = Field(
        default=False,
        description="Route the fictional numbers +1 NXX-555-01XX to a sandbox that completes "
        "calls without dialing (for trying integrations without a phone line).",
    )
    sandbox_call_seconds: float = Field(default=2.0, ge=0)

    # Telephony over SIP (off by default: nothing listens unless asked).
    sip_enabled: bool = Field(
        default=False, description="Answer and place phone calls over SIP/RTP."
    )
    sip_listen: str = Field(
        default="udp:0.0.0.0:5060",
        description="Where the SIP user agent listens, comma-separated TRANSPORT:HOST:PORT "
        "(udp or tcp): udp:0.0.0.0:5060,tcp:0.0.0.0:5060",
    )
    sip_advertise: str | None = Field(
        default=None,
        description="The address peers reach us at, put in Via, Contact and SDP; required "
        "when listening on a wildcard address (default: the listen host).",
    )
    rtp_ports: str = Field(
        default="10000-20000", description="UDP port range for call media: LOW-HIGH."
    )
    sip_max_calls: int | None = Field(
        default=None,
        ge=1,
        description="Live SIP calls (both directions) beyond which an INVITE gets 503; "
        "default: max_concurrent_calls.",
    )
    sip_retry_after: int = Field(
        default=5, ge=0, le=3600, description="Retry-After seconds sent with a 503."
    )
    sip_ring_seconds: float = Field(
        default=0.0, ge=0, le=60, description="Ring (180) this long before answering."
    )
    answering_machine_greeting_ms: int = Field(
        default=3000,
        ge=500,
        le=10_000,
        description="Answering-machine detection: a greeting this long (no 800 ms pause) "
        "is a voicemail's.",
    )
    answering_max_ms: int = Field(
        default=5000,
        ge=1000,
        le=30_000,
        description="Answering-machine detection: undecided this long after the answer, "
        "answered_by is unknown.",
    )
    # Secret as a whole: each entry holds a password, and a validation error must not
    # echo it (see ``sip_registrations`` for the parsed form).
    sip_register: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Accounts to register to (a PBX, a carrier), kept registered while "
        "serving: sip:USER:PASSWORD@HOST[:PORT][;transport=udp|tcp][;expires=300]"
        "[;auth_user=U][;contact_user=N], several separated by spaces, or a JSON list.",
    )
    sip_trunk_sync_seconds: float = Field(
        default=15.0,
        ge=0.2,
        description="How often the SIP side reads the trunks with auth_mode register "
        "(any org) and starts, changes or stops their registrations to match.",
    )

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    call_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long GET /v1/calls/{id} may serve a finished call from memory; "
        "other processes' changes show after at most this (0 = always read the store).",
    )
    call_cache_live_seconds: float = Field(
        default=0.25,
        ge=0,
        description="The same for a call still queued or running.",
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach this server at, for links such as "
        "recording_url (default: http://HOST:PORT).",
    )
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry (traces, metrics, logs to the "
        "globally configured providers); off: /metrics is the Prometheus endpoint.",
    )

    # Generative LLM: any OpenAI-compatible server. Unset = the embedded (offline) mode.
    llm_base_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:11434/v1")
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None

    # Speech. The embedded back-ends (Whisper tiny.en, Piper "joe", Silero VAD) always
    # load; network back-ends join when their keys are set.
    speech_stt: Literal["embedded", "openai", "deepgram"] = "embedded"
    speech_voice: str = Field(default="joe", description="Voice of calls that name none.")
    speech_threads: int = Field(default=0, ge=0, description="Inference threads; 0 = all cores.")
    whisper_model_dir: Path | None = None
    whisper_beam_size: int = Field(default=1, ge=1, le=10)
    openai_speech_base_url: str | None = Field(
        default=None, description="e.g. https://api.openai.com/v1"
    )
    openai_speech_api_key: SecretStr | None = None
    openai_stt_model: str = "whisper-1"
    openai_tts_model: str = "tts-1"
    deepgram_api_key: SecretStr | None = None
    deepgram_base_url: str = "wss://api.deepgram.com"
    deepgram_model: str = "nova-2"
    elevenlabs_api_key: SecretStr | None = None
    elevenlabs_base_url: str = "https://api.elevenlabs.io"
    elevenlabs_model: str = "eleven_flash_v2_5"
    elevenlabs_voices: dict[str, str] = Field(
        default_factory=dict, description="Voice name -> ElevenLabs voice id."
    )

    # Outbound requests to user-given URLs (webhooks), and webhook delivery.
    outbound_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs and host names that outbound requests may reach although they are "
        "not public (on-prem receivers, tests), comma-separated: 10.1.0.0/16,hooks.internal",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key(s) that encrypt secrets at rest, comma-separated (first "
        "encrypts); default: generated into data_dir/secret-key. Set it when several hosts "
        "share one database.",
    )
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    webhook_retry_base_seconds: float = Field(
        default=80.0,
        gt=0,
        description="First retry delay; each next one is 3x longer (±20% jitter): with 8 "
        "attempts the last comes about 24 h after the first.",
    )
    webhook_retry_max_seconds: float = Field(default=86400.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_response_max_bytes: int = Field(default=64 * 1024, ge=1024)
    webhook_poll_seconds: float = Field(default=0.5, gt=0)
    webhook_concurrency: int = Field(default=32, ge=1)
    webhook_lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a claimed delivery stays ours."
    )

    # Client side of the CLI.
    api_url: str = "http://127.0.0.1:8000"
    api_key: SecretStr | None = None

    @field_validator("outbound_allow", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return (
            [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        )

    @field_validator("sip_listen")
    @classmethod
    def _sip_listen(cls, value: str) -> str:
        items = [part.strip() for part in value.split(",") if part.strip()]
        if not items:
            raise ValueError("name at least one address, e.g. udp:0.0.0.0:5060")
        for item in items:
            transport, _, rest = item.partition(":")
            host, _, port = rest.rpartition(":")
            if transport not in ("udp", "tcp") or not host or not port.isdigit():
                raise ValueError(f"{item!r} is not TRANSPORT:HOST:PORT (udp or tcp)")
            if not 0 <= int(port) <= 65535:
                raise ValueError(f"{item!r}: the port must be 0-65535")
        return ",".join(items)

    @field_validator("sip_register", mode="before")
    @classmethod
    def _sip_register_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except ValueError:
                    raise ValueError("sip_register is not a JSON list") from None
            return text.split()
        return value

    @field_validator("sip_register")
    @classmethod
    def _sip_register(cls, value: list[SecretStr]) -> list[SecretStr]:
        for index, entry in enumerate(value, 1):
            try:
                SipRegistration.parse(entry.get_secret_value())
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                    for e in exc.errors(include_input=False, include_url=False)
                )
                raise ValueError(f"sip_register entry {index}: {problems}") from None
            except ValueError as exc:
                raise ValueError(f"sip_register entry {index}: {exc}") from None
        return value

    @property
    def sip_registrations(self) -> list[SipRegistration]:
        return [SipRegistration.parse(entry.get_secret_value()) for entry in self.sip_register]

    @field_validator("rtp_ports")
    @classmethod
    def _rtp_ports(cls, value: str) -> str:
        low, dash, high = value.strip().partition("-")
        if not dash or not low.strip().isdigit() or not high.strip().isdigit():
            raise ValueError(f"{value!r} is not a port range LOW-HIGH, e.g. 10000-20000")
        first, last = int(low), int(high)
        if not 1024 <= first <= last <= 65535:
            raise ValueError(f"{value!r}: want 1024 <= LOW <= HIGH <= 65535")
        return f"{first}-{last}"

    @field_validator("sip_advertise")
    @classmethod
    def _sip_advertise(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if not value:
            return None
        if any(c.isspace() for c in value) or value in WILDCARD_HOSTS:
            raise ValueError(f"{value!r} is not an address peers can reach")
        return value

    @model_validator(mode="after")
    def _sip_reachable(self) -> Settings:
        if self.sip_enabled and self.sip_advertise is None:
            wildcard = [h for _, h, _ in self.sip_listen_addresses if h in WILDCARD_HOSTS]
            if wildcard:
                raise ValueError(
                    "sip_advertise (CALLWRIGHT_SIP_ADVERTISE) is required when SIP listens "
                    f"on {wildcard[0]}: peers need a routable address for Via, Contact "
                    "and SDP"
                )
        return self

    @property
    def sip_listen_addresses(self) -> list[tuple[str, str, int]]:
        """``sip_listen`` as (transport, host, port) triples."""
        found = []
        for item in self.sip_listen.split(","):
            transport, _, rest = item.partition(":")
            host, _, port = rest.rpartition(":")
            found.append((transport, host.strip("[]"), int(port)))
        return found

    @property
    def effective_sip_advertise(self) -> str:
        return self.sip_advertise or self.sip_listen_addresses[0][1]

    @property
    def rtp_port_range(self) -> tuple[int, int]:
        low, _, high = self.rtp_ports.partition("-")
        return int(low), int(high)

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _blank_is_default(cls, value: str | None) -> str | None:
        return value or None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'callwright.db').resolve()}"

    @property
    def effective_worker_id(self) -> str:
        if self.worker_id:
            return self.worker_id
        import socket

        return f"{socket.gethostname()}:{os.getpid()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


SECRET_MARKERS = ("key", "secret", "password", "token")


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, with secrets and URL passwords masked."""
    out: dict[str, Any] = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr) or (
            value is not None and any(m in name for m in SECRET_MARKERS)
        ):
            out[name] = "****" if value else None
        elif isinstance(value, Path):
            out[name] = str(value)
        else:
            out[name] = value
    out["database_url"] = mask_url(settings.effective_database_url)
    return out


def mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as given, it has no password to hide
        return url
