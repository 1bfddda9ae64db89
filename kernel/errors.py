"""Exceptions with messages meant for people: what was wrong, where, what to do."""

from __future__ import annotations


class NoslateError(Exception):
    """Base class of the kernel's own errors."""


class ValidationError(NoslateError):
    """Input (config, profile, request body) failed validation.

    ``errors`` holds one line per problem, each ``message @ $.path``.
    """

    def __init__(self, errors: list[str], what: str = "input") -> None:
        self.errors = errors
        self.what = what
        super().__init__(f"invalid {what}:\n" + "\n".join(f"  {e}" for e in errors))


class ConfigError(ValidationError):
    """The TOML configuration is invalid."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(errors, "configuration")


class ProfileError(ValidationError):
    """A function profile is invalid."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(errors, "function profile")


class PluginError(NoslateError):
    """A plugin failed to load, is duplicated, or is unknown."""


class StartupError(NoslateError):
    """The daemon cannot start (a required capability is missing)."""

    exit_code = 1


class BadSettingError(StartupError):
    """The daemon cannot start because of a setting (a DSN, a store it points at):
    ``noslate serve`` exits 2, like for an invalid configuration."""

    exit_code = 2


class DeployError(NoslateError):
    """A function could not be deployed (syntax error, init threw, code too large).

    ``location`` is ``file:line:column`` when known.
    """

    def __init__(self, message: str, location: str = "") -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class StartError(NoslateError):
    """An instance failed to start. ``fatal`` means retrying will not help."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        self.fatal = fatal
        super().__init__(message)
