"""The platform's code location: `platform_assets.definitions` holds the Definitions."""

from platform_assets.lib.known_warnings import silence_known_warnings

silence_known_warnings()
