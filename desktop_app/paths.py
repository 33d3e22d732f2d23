"""Where ImageDesk keeps its files: the per-user folders platformdirs knows for
this OS, or one folder for everything when ``IMAGEDESK_HOME`` is set (portable
installs, tests, a second profile).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "ImageDesk"
HOME_VARIABLE = "IMAGEDESK_HOME"


@dataclass(frozen=True)
class AppPaths:
    """The folders and files of one ImageDesk profile.

    ``gallery_dir`` is only the default home of finished images; the
    ``output.folder`` setting replaces it (see ``config.gallery_folder``).
    """

    data_dir: Path
    config_dir: Path
    cache_dir: Path
    log_dir: Path
    gallery_dir: Path

    @property
    def db_path(self) -> Path:
        return self.data_dir / "imagedesk.sqlite3"

    @property
    def settings_path(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def thumbs_dir(self) -> Path:
        return self.cache_dir / "thumbnails"

    @property
    def inputs_dir(self) -> Path:
        """Source images and masks of image-to-image jobs (``store/input_images.py``)."""
        return self.data_dir / "inputs"

    @property
    def styles_path(self) -> Path:
        """Named prompt styles, as an Automatic1111 ``styles.csv``."""
        return self.config_dir / "styles.csv"

    @property
    def wildcards_dir(self) -> Path:
        """``__name__`` in a prompt draws a line from ``name.txt`` here."""
        return self.data_dir / "wildcards"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @classmethod
    def under(cls, home: Path) -> AppPaths:
        """Every folder inside ``home``: data, config, cache, logs and gallery."""
        home = home.expanduser().absolute()
        return cls(
            data_dir=home / "data",
            config_dir=home / "config",
            cache_dir=home / "cache",
            log_dir=home / "logs",
            gallery_dir=home / "gallery",
        )

    @classmethod
    def discover(cls, env: Mapping[str, str] = os.environ) -> AppPaths:
        """``IMAGEDESK_HOME`` when set (and not empty), else the OS's usual places."""
        home = env.get(HOME_VARIABLE, "").strip()
        if home:
            return cls.under(Path(home))
        return cls(
            data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            cache_dir=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
            log_dir=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
            gallery_dir=Path(platformdirs.user_pictures_dir()) / APP_NAME,
        )

    def ensure(self) -> AppPaths:
        """Create every folder that does not exist yet; returns ``self`` for chaining."""
        for folder in (self.data_dir, self.config_dir, self.cache_dir, self.log_dir,
                       self.gallery_dir, self.thumbs_dir, self.models_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self
