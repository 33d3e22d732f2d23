"""Remote GPU workers as the registry knows them (see ``providers.descriptor``)."""

from __future__ import annotations

from desktop_app.config import ProviderSettings, RemoteSettings, Settings
from desktop_app.domain.checks import Check
from desktop_app.providers.base import ImageProvider, ProviderKind
from desktop_app.providers.descriptor import (
    BuildContext,
    CheckContext,
    KeySpec,
    OptionalExtra,
    ProviderDescriptor,
    RoutePlace,
    ServeRequest,
)
from desktop_app.providers.remote_bullmq.config import Placement, RemoteConfig
from desktop_app.providers.remote_bullmq.protocol import Transport

PASSWORD_LENGTH = (8, 1024)


def check_password(password: str) -> None:
    low, high = PASSWORD_LENGTH
    if not low <= len(password) <= high:
        raise ValueError(f"The remote password must be {low} to {high} characters long.")


def config_of(section: RemoteSettings) -> RemoteConfig:
    return RemoteConfig(redis_url=section.redis_url, queue=section.queue,
                        transport=Transport(section.transport),
                        shared_folder=section.shared_folder,
                        no_worker_grace_s=section.no_worker_grace_s)


def _create(section: ProviderSettings, ctx: BuildContext) -> ImageProvider:
    from desktop_app.providers.remote_bullmq.provider import RemoteProvider  # bullmq: on use
    from desktop_app.store.input_images import InputImages

    assert isinstance(section, RemoteSettings)
    return RemoteProvider(config_of(section), ctx.key,
                          inputs=InputImages.in_profile(ctx.data_dir))


def _place(section: ProviderSettings, settings: Settings) -> RoutePlace:
    """Placement is relative to this machine's GPU: before it, after it, or
    standing by while it is busy."""
    assert isinstance(section, RemoteSettings)
    local = settings.local.priority
    placement = Placement(section.placement)
    if placement is Placement.BEFORE_LOCAL:
        return RoutePlace(min(section.priority, local - 1))
    standby = ProviderKind.LOCAL if placement is Placement.WHEN_LOCAL_BUSY else None
    return RoutePlace(max(section.priority, local + 1), standby)


def _checks(ctx: CheckContext) -> list[Check]:
    if not ctx.section.enabled:
        return []
    if ctx.key_present is None:
        return []
    # informational: a Redis without a password is a valid setup
    return [Check("remote password", True,
                  "present" if ctx.key_present else "none: run `imagedesk keys set remote` "
                  "(or set IMAGEDESK_REMOTE_PASSWORD) if your Redis needs one")]


def _serve(request: ServeRequest) -> int:
    """``imagedesk worker``: this machine's local pipeline serving the queue. A
    worker keeps its model loaded for good and sends no previews."""
    import dataclasses

    from desktop_app.providers.local_diffusion.descriptor import config_of as local_config_of
    from desktop_app.providers.remote_bullmq.config import WorkerConfig
    from desktop_app.providers.remote_bullmq.worker import run_worker  # bullmq: on use

    local = dataclasses.replace(local_config_of(request.settings.local, request.data_dir),
                                idle_shutdown_s=10**9, preview_every=0)
    return run_worker(request.url, request.queue, local_config=local, password=request.password,
                      config=WorkerConfig(name=request.name,
                                          results_folder=request.results_folder))


DESCRIPTOR = ProviderDescriptor(
    name="remote", label="Remote GPU workers (BullMQ)", kind=ProviderKind.REMOTE,
    settings_model=RemoteSettings, create=_create,
    settings_page="desktop_app.ui.settings_pages:RemotePage",
    key=KeySpec("password", "IMAGEDESK_REMOTE_PASSWORD", check_password,
                where="your Redis server's requirepass"),
    build_when_disabled=False, place=_place, checks=_checks, serve=_serve,
    optional_extra=OptionalExtra("desktop_app.providers.remote_bullmq", "remote",
                                 ("bullmq", "redis")),
)
