"""Every application setting the app reads, in one place.

Activities and routes call ``load_settings()``; nothing else reads the
environment. ``SETTINGS`` is the catalogue that the docs, the sample settings
file and the infrastructure checks are compared against.
"""
from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlsplit

from .house_rules import parse_rule_lines
from .models import ValidationError
from .review_policy import ReviewPolicy


@dataclass(frozen=True)
class SettingSpec:
    name: str
    description: str
    default: Optional[str] = None
    secret: bool = False


# The Microsoft 365 Agents SDK reads its connection from settings of this shape
# (load_configuration_from_env); the app reads them here and hands them over.
TEAMS_APP_ID = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID"
TEAMS_AUTH_TYPE = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHTYPE"
TEAMS_TENANT_ID = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID"
# The SDK checks a token's issuer only when asked to; the app always asks, with the SDK's
# own list for the connection: the Bot Framework, the tenant's Entra issuers (v1 and v2)
# and Microsoft's first-party tenants. Not a setting: nobody should turn it off.
TEAMS_VALIDATE_ISSUER = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__VALIDATE_ISSUER"

SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("AZURE_OPENAI_ENDPOINT", "Azure OpenAI endpoint, e.g. https://NAME.openai.azure.com/"),
    SettingSpec("AZURE_OPENAI_DEPLOYMENT", "Chat model deployment name (alias: AZURE_OPENAI_CHAT_DEPLOYMENT_NAME)"),
    SettingSpec("AZURE_OPENAI_API_KEY", "API key; leave unset to use Entra ID (managed identity or az login)", secret=True),
    SettingSpec("AZURE_OPENAI_API_VERSION", "Azure OpenAI data-plane API version", default="2024-10-21"),
    SettingSpec("AZURE_CLIENT_ID", "Client id of the user-assigned managed identity (Azure only)"),
    SettingSpec("OPENAI_BASE_URL", "Any OpenAI-compatible server instead of Azure (Ollama, vLLM, llama.cpp)"),
    SettingSpec("OPENAI_API_KEY", "Key for OPENAI_BASE_URL", secret=True),
    SettingSpec("OPENAI_MODEL", "Model name for OPENAI_BASE_URL"),
    SettingSpec("HITL_WRITER", "'openai': the configured model (an error when none is); 'offline': the deterministic "
                "demo writer; unset: the model when one is configured, else on a local host the offline writer, "
                "with a note saying so"),
    SettingSpec("HITL_WRITER_TIMEOUT_SECONDS", "Wall-clock limit of one writer request as a whole, from connecting to the "
                "last byte of the reply; a request cut off is retried like any timeout", default="60"),
    SettingSpec("HITL_WRITER_MAX_RETRIES", "Client-side retries of one writer request (429, 5xx, timeouts)", default="2"),
    SettingSpec("HITL_PUBLIC_BASE_URL", "Base URL used in links sent to reviewers (default: https://$WEBSITE_HOSTNAME in Azure, http://$WEBSITE_HOSTNAME on a local host, else http://localhost:7071)"),
    SettingSpec("HITL_PUBLISH_DIR", "Folder that receives published content", default=".published"),
    SettingSpec("HITL_REVIEW_SIGNING_KEY", "Secret that signs review links (at least 32 characters)", secret=True),
    SettingSpec("HITL_DEV_INSECURE_LINKS", "1: sign review links with a fixed development key (never in Azure); 0: never; "
                "unset: on a local host when HITL_REVIEW_SIGNING_KEY is not set, with a warning"),
    SettingSpec("HITL_NOTIFY_WEBHOOK_URL", "Teams Workflows or Slack incoming-webhook URL for reviewer notifications", secret=True),
    SettingSpec("HITL_ESCALATION_WEBHOOK_URL", "Webhook for escalations (on_timeout \"escalate\"); unset: the reviewer webhook, marked as an escalation", secret=True),
    SettingSpec("HITL_REVIEWERS", "App role names or group object ids allowed to use the inbox, comma-separated; needs App Service Authentication", default=""),
    SettingSpec("HITL_REVIEW_POLICY", "The default review policy for reviews that name none: JSON {\"stages\": [...]} (see README, Team review); unset: one stage any reviewer decides", default=""),
    SettingSpec("HITL_OWNERS", "With App Service Authentication: app role names, group object ids or user names (user:…) whose sign-in makes them owners (all reviews in the inbox, reassigning seats); unset: whoever holds the function key", default=""),
    SettingSpec("HITL_CLAIM_HOURS", "How long a claim on a role or group seat holds before it lapses", default="8"),
    SettingSpec("HITL_HOUSE_RULES", "House rules every draft is checked against, separated by ';' (e.g. no claims "
                "without a source; ends with a call to action; under 600 words); unset: no check"),
    SettingSpec("HITL_HOUSE_RULES_FILE", "A file of house rules, one per line ('#' starts a comment); with "
                "HITL_HOUSE_RULES too, the file's come first", default=""),
    SettingSpec("HITL_CHECKER_TIMEOUT_SECONDS", "Wall-clock limit of the model's check of one draft as a whole, "
                "retries included; past it the draft shows \"not checked\"", default="30"),
    SettingSpec("HITL_REMIND_BEFORE_HOURS", "Default reminders, hours before a round's deadline, comma-separated (e.g. 24,2); a review's remind_before_hours wins", default=""),
    SettingSpec(TEAMS_APP_ID, "Microsoft 365 Agents SDK: the bot's app id; in Azure the app's user-assigned managed identity (its client id); unset: Teams is off"),
    SettingSpec(TEAMS_AUTH_TYPE, "Microsoft 365 Agents SDK: how the bot gets its tokens", default="UserManagedIdentity"),
    SettingSpec(TEAMS_TENANT_ID, "Microsoft 365 Agents SDK: the bot's Entra tenant, whose token issuers (v1, v2) /api/messages accepts"),
    SettingSpec("HITL_TEAMS_ALLOW_ANONYMOUS", "true: /api/messages takes activities without a token (Agents Playground); only on a local host reached on loopback, refused in Azure", default="false"),
    SettingSpec("HITL_SLACK_BOT_TOKEN", "Slack app's bot token (xoxb-...); unset: Slack is off", secret=True),
    SettingSpec("HITL_SLACK_SIGNING_SECRET", "Slack app's signing secret: verifies POST /api/hitl/slack/interactions", secret=True),
    SettingSpec("HITL_SLACK_API_URL", "Slack Web API base URL", default="https://slack.com/api"),
    SettingSpec("HITL_SLACK_CHANNEL", "Slack channel id where role, group and anyone seats are notified", default=""),
    SettingSpec("HITL_EMAIL_FROM", "Sender address of review e-mails; unset: e-mail is off", default=""),
    SettingSpec("HITL_ACS_ENDPOINT", "Azure Communication Services endpoint (https://NAME.communication.azure.com); sends e-mail with the managed identity", default=""),
    SettingSpec("HITL_SMTP_HOST", "SMTP server for review e-mails where Communication Services is not used", default=""),
    SettingSpec("HITL_SMTP_PORT", "SMTP port (STARTTLS is used when the server offers it)", default="587"),
    SettingSpec("HITL_SMTP_USERNAME", "SMTP user name; unset: no login; set: the server must offer STARTTLS, the login is never sent in clear", default=""),
    SettingSpec("HITL_SMTP_PASSWORD", "SMTP password", secret=True),
    SettingSpec("TASKHUB_NAME", "Durable task hub name, required: host.json reads %TASKHUB_NAME%, and the Durable "
                "extension does not start without it (local.settings.sample.json and infra set HitlReviewHub)"),
)

_ALIASES = {"AZURE_OPENAI_DEPLOYMENT": ("AZURE_OPENAI_CHAT_DEPLOYMENT_NAME",)}
_DEFAULTS = {spec.name: spec.default for spec in SETTINGS}


# Anyone can forge links signed with this key: it exists only so a local demo needs no setup.
DEV_INSECURE_KEY = b"devhost-insecure-review-links"
MIN_SIGNING_KEY_CHARS = 32


class ConfigurationError(Exception):
    """A setting is missing or malformed. The message never contains a secret value."""


@dataclass(frozen=True)
class Settings:
    azure_openai_endpoint: str
    azure_openai_deployment: str
    azure_openai_api_key: str
    azure_openai_api_version: str
    azure_client_id: str
    openai_base_url: str
    openai_api_key: str
    openai_model: str
    writer_mode: str                  # "openai", "offline", or "" when HITL_WRITER is unset
    writer_timeout_seconds: float
    writer_max_retries: int
    public_base_url: str
    public_base_url_set: bool
    publish_dir: str
    website_hostname: str
    review_signing_key: str
    dev_insecure_links: Optional[bool]  # None when HITL_DEV_INSECURE_LINKS is unset
    notify_webhook_url: str
    escalation_webhook_url: str
    default_reminders: tuple
    reviewers: tuple
    app_service_auth: bool
    default_review: Optional[dict]
    owners: tuple
    claim_hours: float
    house_rules: tuple
    checker_timeout_seconds: float
    teams_app_id: str = ""
    teams_auth_type: str = "UserManagedIdentity"
    teams_tenant_id: str = ""
    teams_allow_anonymous: bool = False
    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_api_url: str = "https://slack.com/api"
    slack_channel: str = ""
    email_from: str = ""
    acs_endpoint: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""

    @property
    def teams_enabled(self) -> bool:
        """Teams cards go out and /api/messages takes activities (with a token, or
        without one where a local host allows it)."""
        return bool(self.teams_app_id) or self.teams_allow_anonymous

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token)

    @property
    def email_backend(self) -> Optional[str]:
        """'acs', 'smtp' or None (e-mail off)."""
        if not self.email_from:
            return None
        return "acs" if self.acs_endpoint else "smtp"

    @property
    def seat_channels_enabled(self) -> bool:
        """A notice tells the seats themselves: by Teams, Slack or e-mail."""
        return self.teams_enabled or self.slack_enabled or self.email_backend is not None

    def teams_sdk_configuration(self) -> dict:
        """The settings the Agents SDK reads, by its own names, for its loader."""
        return {TEAMS_APP_ID: self.teams_app_id, TEAMS_AUTH_TYPE: self.teams_auth_type, TEAMS_VALIDATE_ISSUER: "true",
                **({TEAMS_TENANT_ID: self.teams_tenant_id} if self.teams_tenant_id else {})}

    @property
    def writer_backend(self) -> str:
        """Which writer will run: 'offline', 'azure', 'openai' or 'unconfigured'."""
        if self.writer_mode == "offline":
            return "offline"
        if self.azure_openai_endpoint:
            return "azure"
        if self.openai_base_url:
            return "openai"
        if self.writer_by_default_offline:
            return "offline"
        return "unconfigured"

    @property
    def writer_by_default_offline(self) -> bool:
        """No model is configured and HITL_WRITER is unset: on a local host the demo works
        as it is, with the offline writer."""
        return (not self.writer_mode and self.on_local_host
                and not self.azure_openai_endpoint and not self.openai_base_url)

    @property
    def link_signing_key(self) -> Optional[bytes]:
        """The key for review links; None when links must not be produced."""
        if self.review_signing_key:
            return self.review_signing_key.encode()
        if self.dev_links_allowed and not self.in_azure:
            return DEV_INSECURE_KEY
        return None

    @property
    def dev_links_allowed(self) -> bool:
        """HITL_DEV_INSECURE_LINKS, or when it is unset, whether this is a local host."""
        return self.on_local_host if self.dev_insecure_links is None else self.dev_insecure_links

    @property
    def in_azure(self) -> bool:
        """App Service sets WEBSITE_HOSTNAME to the site's name; a local host (Core Tools,
        the devhost) sets it to localhost:PORT."""
        return bool(self.website_hostname) and not _is_local(self.website_hostname)

    @property
    def on_local_host(self) -> bool:
        """Served by func start or the devhost, which set WEBSITE_HOSTNAME to localhost:PORT
        (not merely "not in Azure": a host that sets nothing gets no local defaults)."""
        return _is_local(self.website_hostname)

    def secret_values(self) -> list[str]:
        return [v for v in (self.azure_openai_api_key, self.openai_api_key, self.review_signing_key,
                            self.notify_webhook_url, self.escalation_webhook_url, self.slack_bot_token,
                            self.slack_signing_secret, self.smtp_password) if v]


def _read(env: Mapping[str, str], name: str) -> str:
    for key in (name, *_ALIASES.get(name, ())):
        value = env.get(key, "").strip()
        if value:
            return value
    return _DEFAULTS.get(name) or ""


def _number(env: Mapping[str, str], name: str, kind, low: float, high: float):
    raw = _read(env, name)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}, got {raw!r}")
    return value


def _reminder_hours(env: Mapping[str, str]) -> tuple:
    raw = _read(env, "HITL_REMIND_BEFORE_HOURS")
    hours = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        try:
            value = float(part)
        except ValueError:
            value = float("nan")
        if not 0 < value <= 720:
            raise ConfigurationError(f"HITL_REMIND_BEFORE_HOURS must list hours between 0 and 720, "
                                     f"got {part!r}")
        hours.append(value)
    return tuple(sorted(set(hours), reverse=True))


def _flag(env: Mapping[str, str], name: str) -> Optional[bool]:
    raw = _read(env, name).lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes"):
        return True
    if raw in ("0", "false", "no"):
        return False
    raise ConfigurationError(f"{name} must be 1 or 0 (or unset), got {raw!r}")


def _is_local(hostname: str) -> bool:
    return hostname.startswith(("localhost", "127.0.0.1", "[::1]"))


def _public_base_url(env: Mapping[str, str]) -> str:
    explicit = _read(env, "HITL_PUBLIC_BASE_URL")
    if explicit:
        return explicit.rstrip("/")
    hostname = env.get("WEBSITE_HOSTNAME", "").strip()
    if hostname:
        return f"http://{hostname}" if _is_local(hostname) else f"https://{hostname}"
    return "http://localhost:7071"


# What load_settings reads from the environment besides SETTINGS (and their aliases): the
# platform's own settings.
PLATFORM_SETTINGS_READ = ("WEBSITE_HOSTNAME", "WEBSITE_AUTH_ENABLED")
SETTINGS_READ = tuple(dict.fromkeys([*(spec.name for spec in SETTINGS), *(a for names in _ALIASES.values() for a in names),
                                     *PLATFORM_SETTINGS_READ]))


def load_settings(env: Optional[Mapping[str, str]] = None) -> Settings:
    """The settings, from ``env`` or the process environment. Routes and activities call
    this on every request; from the process environment the result is kept for as long as
    none of the values it reads changes (App Service restarts the app when one does)."""
    if env is None:
        if os.environ is _PROCESS_ENVIRON and _STORED is not None and _PROCESS_ENVIRON._data is _STORED:
            return _settings_of_stored(tuple(map(_STORED.get, _STORED_NAMES)))
        return _settings_of(tuple(os.environ.get(name) for name in SETTINGS_READ))
    return _build_settings(env)


# ``os.environ.get`` encodes each name, and raises and catches a KeyError for a name that
# is not set or decodes the value of one that is: about 40 µs for the names above on every
# request and activity. The values as the process's os.environ stores them (its dict of
# encoded names to encoded values, which every change through os.environ updates) are
# looked up in about 1 µs, and decoded only when they are not among the last sets seen.
# Anything else in os.environ's place (a test's stand-in, a subclass that answers for
# missing names, a replaced store) is read name by name.
_PROCESS_ENVIRON = os.environ
_STORED: Optional[dict] = getattr(_PROCESS_ENVIRON, "_data", None) if type(_PROCESS_ENVIRON) is os._Environ else None
if not isinstance(_STORED, dict):
    _STORED = None
_STORED_NAMES = tuple(map(_PROCESS_ENVIRON.encodekey, SETTINGS_READ)) if _STORED is not None else ()


@functools.lru_cache(maxsize=8)
def _settings_of_stored(stored: tuple) -> Settings:
    decode = _PROCESS_ENVIRON.decodevalue
    return _settings_of(tuple(None if value is None else decode(value) for value in stored))


@functools.lru_cache(maxsize=8)
def _settings_of(values: tuple) -> Settings:
    return _build_settings({name: value for name, value in zip(SETTINGS_READ, values) if value is not None})


def _build_settings(env: Mapping[str, str]) -> Settings:
    signing_key = _read(env, "HITL_REVIEW_SIGNING_KEY")
    if signing_key and len(signing_key) < MIN_SIGNING_KEY_CHARS:
        raise ConfigurationError(
            f"HITL_REVIEW_SIGNING_KEY must be at least {MIN_SIGNING_KEY_CHARS} characters long")
    writer_mode = _read(env, "HITL_WRITER").lower()
    if writer_mode not in ("", "openai", "offline"):
        raise ConfigurationError(f"HITL_WRITER must be 'openai' or 'offline' (or unset), got {writer_mode!r}")
    return Settings(
        azure_openai_endpoint=_read(env, "AZURE_OPENAI_ENDPOINT"),
        azure_openai_deployment=_read(env, "AZURE_OPENAI_DEPLOYMENT"),
        azure_openai_api_key=_read(env, "AZURE_OPENAI_API_KEY"),
        azure_openai_api_version=_read(env, "AZURE_OPENAI_API_VERSION"),
        azure_client_id=_read(env, "AZURE_CLIENT_ID"),
        openai_base_url=_read(env, "OPENAI_BASE_URL"),
        openai_api_key=_read(env, "OPENAI_API_KEY"),
        openai_model=_read(env, "OPENAI_MODEL"),
        writer_mode=writer_mode,
        writer_timeout_seconds=_number(env, "HITL_WRITER_TIMEOUT_SECONDS", float, 1, 600),
        writer_max_retries=_number(env, "HITL_WRITER_MAX_RETRIES", int, 0, 10),
        public_base_url=_public_base_url(env),
        public_base_url_set=bool(_read(env, "HITL_PUBLIC_BASE_URL")),
        publish_dir=_read(env, "HITL_PUBLISH_DIR"),
        website_hostname=env.get("WEBSITE_HOSTNAME", ""),
        review_signing_key=signing_key,
        dev_insecure_links=_flag(env, "HITL_DEV_INSECURE_LINKS"),
        notify_webhook_url=_read(env, "HITL_NOTIFY_WEBHOOK_URL"),
        escalation_webhook_url=_read(env, "HITL_ESCALATION_WEBHOOK_URL"),
        default_reminders=_reminder_hours(env),
        reviewers=tuple(part.strip() for part in _read(env, "HITL_REVIEWERS").split(",") if part.strip()),
        # Set by App Service when Authentication (EasyAuth) is on: only then are the
        # X-MS-CLIENT-PRINCIPAL-* headers the platform's, not the caller's.
        app_service_auth=env.get("WEBSITE_AUTH_ENABLED", "").lower() == "true",
        default_review=_review_policy(env),
        owners=tuple(part.strip() for part in _read(env, "HITL_OWNERS").split(",") if part.strip()),
        claim_hours=_number(env, "HITL_CLAIM_HOURS", float, 0.05, 720),
        house_rules=_house_rules(env),
        checker_timeout_seconds=_number(env, "HITL_CHECKER_TIMEOUT_SECONDS", float, 1, 600),
        **_channel_settings(env),
    )


TEAMS_AUTH_TYPES = ("UserManagedIdentity", "SystemManagedIdentity")


def _channel_settings(env: Mapping[str, str]) -> dict:
    """Teams, Slack and e-mail, checked together: a channel that is half set up is
    refused at start-up, naming the setting (never its value)."""
    hostname = env.get("WEBSITE_HOSTNAME", "").strip()
    anonymous = _read(env, "HITL_TEAMS_ALLOW_ANONYMOUS").lower() in ("1", "true", "yes")
    if anonymous and hostname and not _is_local(hostname):
        raise ConfigurationError("HITL_TEAMS_ALLOW_ANONYMOUS is for a local host only; unset it in Azure")
    auth_type = _read(env, TEAMS_AUTH_TYPE)
    if auth_type not in TEAMS_AUTH_TYPES:
        raise ConfigurationError(f"{TEAMS_AUTH_TYPE} must be one of {', '.join(TEAMS_AUTH_TYPES)}, "
                                 f"got {auth_type[:40]!r}")
    token, secret = _read(env, "HITL_SLACK_BOT_TOKEN"), _read(env, "HITL_SLACK_SIGNING_SECRET")
    if token and not token.startswith("xoxb-"):
        raise ConfigurationError("HITL_SLACK_BOT_TOKEN must be a bot token (it starts with xoxb-)")
    if token and not secret:
        raise ConfigurationError("HITL_SLACK_BOT_TOKEN is set but HITL_SLACK_SIGNING_SECRET is not: Slack's "
                                 "button clicks could not be verified")
    api_url = _read(env, "HITL_SLACK_API_URL").rstrip("/")
    if not _http_url(api_url):
        raise ConfigurationError("HITL_SLACK_API_URL must be an http(s) URL with a host")
    sender, acs, smtp = _read(env, "HITL_EMAIL_FROM"), _read(env, "HITL_ACS_ENDPOINT"), _read(env, "HITL_SMTP_HOST")
    if sender and "@" not in sender:
        raise ConfigurationError("HITL_EMAIL_FROM must be an e-mail address")
    if sender and not (acs or smtp):
        raise ConfigurationError("HITL_EMAIL_FROM is set but neither HITL_ACS_ENDPOINT nor HITL_SMTP_HOST says "
                                 "how to send")
    if acs and not (_http_url(acs) and acs.startswith("https://")):
        raise ConfigurationError("HITL_ACS_ENDPOINT must be an https URL, https://NAME.communication.azure.com")
    return dict(
        teams_app_id=_read(env, TEAMS_APP_ID), teams_auth_type=auth_type, teams_tenant_id=_read(env, TEAMS_TENANT_ID),
        teams_allow_anonymous=anonymous, slack_bot_token=token, slack_signing_secret=secret, slack_api_url=api_url,
        slack_channel=_read(env, "HITL_SLACK_CHANNEL"), email_from=sender, acs_endpoint=acs.rstrip("/"),
        smtp_host=smtp, smtp_port=_number(env, "HITL_SMTP_PORT", int, 1, 65535),
        smtp_username=_read(env, "HITL_SMTP_USERNAME"), smtp_password=_read(env, "HITL_SMTP_PASSWORD"))


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _house_rules(env: Mapping[str, str]) -> tuple:
    """HITL_HOUSE_RULES_FILE's rules, then HITL_HOUSE_RULES's, checked at start-up."""
    path, rules = _read(env, "HITL_HOUSE_RULES_FILE"), []
    try:
        if path:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(f"HITL_HOUSE_RULES_FILE: cannot read {path}: "
                                         f"{exc.strerror if isinstance(exc, OSError) else 'not UTF-8 text'}") from None
            rules += parse_rule_lines(text, "HITL_HOUSE_RULES_FILE")
        rules += parse_rule_lines(_read(env, "HITL_HOUSE_RULES"), "HITL_HOUSE_RULES")
        return tuple(parse_rule_lines("\n".join(rules), "HITL_HOUSE_RULES_FILE and HITL_HOUSE_RULES together"))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _review_policy(env: Mapping[str, str]) -> Optional[dict]:
    """HITL_REVIEW_POLICY, checked as a run request's policy is; None for the default."""
    raw = _read(env, "HITL_REVIEW_POLICY")
    if not raw:
        return None
    try:
        policy = ReviewPolicy.from_json(json.loads(raw), where="the policy")
    except ValueError as exc:  # bad JSON, or a ValidationError naming what is wrong
        # A seat's or a stage's reason names that seat or stage only: the operator is told
        # which setting it is in.
        what = "not a valid review policy" if isinstance(exc, ValidationError) else "not JSON"
        raise ConfigurationError(f"HITL_REVIEW_POLICY is {what}: {exc}") from None
    return None if policy.is_default else policy.to_json()


def configuration_report(settings: Settings) -> list[tuple[int, str]]:
    """Start-up lines (log level, message) about how the app will behave; no secret values."""
    offline = ("the offline demo writer, as no model is configured on this local host: drafts are canned. "
               "For real drafts set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT (or OPENAI_BASE_URL "
               "and OPENAI_MODEL)" if settings.writer_by_default_offline else
               "the offline demo writer (HITL_WRITER=offline): drafts are canned, not AI-written")
    writer = {"offline": offline,
              "azure": f"Azure OpenAI deployment '{settings.azure_openai_deployment}'",
              "openai": f"the OpenAI-compatible server at {settings.openai_base_url}",
              "unconfigured": "NOTHING: set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT "
                              "(or HITL_WRITER=offline); drafting will fail"}[settings.writer_backend]
    lines = [(logging.INFO if settings.writer_backend != "unconfigured" else logging.ERROR,
              f"HITL writer: {writer}")]
    if settings.review_signing_key:
        lines.append((logging.INFO, "Review links: signed with HITL_REVIEW_SIGNING_KEY"))
    elif settings.link_signing_key:
        why = ("HITL_DEV_INSECURE_LINKS=1" if settings.dev_insecure_links else
               "no HITL_REVIEW_SIGNING_KEY on this local host; HITL_DEV_INSECURE_LINKS=0 turns them off")
        lines.append((logging.WARNING, f"Review links: INSECURE development key ({why}); "
                                       "anyone can forge them. Never use this outside a local host."))
    else:
        lines.append((logging.ERROR, "Review links: DISABLED, HITL_REVIEW_SIGNING_KEY is not set; "
                                     "reviewers can still be reached by the approve route"))
    if settings.default_review:
        stages = ", ".join(stage["name"] for stage in settings.default_review["stages"])
        lines.append((logging.INFO, f"Default review policy (HITL_REVIEW_POLICY): stages {stages}"))
    if settings.house_rules:
        checker = "the offline checker" if settings.writer_backend == "offline" else "the writer's model"
        lines.append((logging.INFO, f"House rules: {len(settings.house_rules)}, each draft checked by {checker} "
                                    "(rules about length and forbidden words in code)"))
    channel = "webhook (HITL_NOTIFY_WEBHOOK_URL)" if settings.notify_webhook_url else "function log only"
    lines.append((logging.INFO, f"Reviewer notifications: {channel}"))
    lines.extend(_channel_report(settings))
    lines.append((logging.INFO, f"Reviewer inbox: {settings.public_base_url}/api/hitl/inbox"))
    return lines


def _channel_report(settings: Settings) -> list[tuple[int, str]]:
    lines = []
    if settings.teams_allow_anonymous:
        lines.append((logging.WARNING, "Teams: ANONYMOUS activities are accepted on /api/messages "
                                       "(HITL_TEAMS_ALLOW_ANONYMOUS=true), from loopback only. Never in Azure."))
    elif settings.teams_app_id:
        lines.append((logging.INFO, f"Teams: cards and /api/messages as the bot {settings.teams_app_id} "
                                    f"({settings.teams_auth_type})"))
    else:
        lines.append((logging.INFO, f"Teams: off ({TEAMS_APP_ID} is not set); /api/messages answers 401"))
    lines.append((logging.INFO, "Slack: buttons and /api/hitl/slack/interactions" if settings.slack_enabled
                  else "Slack: off (HITL_SLACK_BOT_TOKEN is not set)"))
    email = {"acs": "E-mail: Azure Communication Services, with the managed identity",
             "smtp": f"E-mail: SMTP {settings.smtp_host}:{settings.smtp_port}",
             None: "E-mail: off (HITL_EMAIL_FROM is not set)"}[settings.email_backend]
    lines.append((logging.INFO, email))
    return lines
