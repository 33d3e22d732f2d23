"""The user's settings: a pydantic model saved as ``settings.json`` in the
config folder, written atomically, versioned, and overridable per field from
the environment (``IMAGEDESK_<SECTION>__<FIELD>``).

Reading never fails: every valid value is used, each bad one falls back alone
and becomes a typed ``SettingsProblem`` (``config.problems``), and when a setting
that guards money or privacy cannot be read the cloud stays off until it is
fixed. Nothing the user wrote is lost by reading or by saving.

No secret ever lives here: API keys and passwords are kept by
``desktop_app.secrets.KeyStore`` in the OS keyring; a key found in the settings
file is reported and never used.
"""

from __future__ import annotations

from desktop_app.config.env import env_override_names
from desktop_app.config.file import (
    MIGRATIONS,
    LoadResult,
    gallery_folder,
    load_settings,
    migrate,
    save_settings,
)
from desktop_app.config.model import (
    SCHEMA_VERSION,
    BreakerSettings,
    BudgetSettings,
    ContentSettings,
    LocalSettings,
    OpenAISettings,
    OutputSettings,
    ProviderSettings,
    RateLimitSettings,
    RemoteSettings,
    RoutingSettings,
    Settings,
    SettingsError,
    UiSettings,
)
from desktop_app.config.policy import default_policy
from desktop_app.config.problems import (
    ProblemKind,
    ProblemSource,
    SettingsProblem,
    problem_lines,
)
from desktop_app.paths import AppPaths

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AppPaths",
    "BreakerSettings",
    "BudgetSettings",
    "ContentSettings",
    "LoadResult",
    "LocalSettings",
    "OpenAISettings",
    "OutputSettings",
    "ProblemKind",
    "ProblemSource",
    "ProviderSettings",
    "RateLimitSettings",
    "RemoteSettings",
    "RoutingSettings",
    "Settings",
    "SettingsError",
    "SettingsProblem",
    "UiSettings",
    "default_policy",
    "env_override_names",
    "gallery_folder",
    "load_settings",
    "migrate",
    "problem_lines",
    "save_settings",
]
