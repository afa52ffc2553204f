"""An attest health check plug-in: is there enough free disk space for builds?

Installed beside attest (``pip install ./examples/health-plugin``), it appears in
``attest health`` and in ``/health/ready`` of ``attest serve`` and the live endpoint.

Thresholds come from the environment, so one package serves every runner:
``ATTEST_DISK_MIN_FREE_MB`` (unhealthy below, default 100) and
``ATTEST_DISK_WARN_FREE_MB`` (degraded below, default 1024).
"""

from __future__ import annotations

import asyncio
import os
import shutil

from attest_cli.health.checks import HealthContext, HealthStatus


class DiskSpaceCheck:
    name = "disk_space"

    def __init__(self, hctx: HealthContext) -> None:
        # attest passes its context when the constructor takes an argument: the project
        # directory and the merged settings are there.
        self.path = hctx.app.workdir
        self.minimum = int(os.environ.get("ATTEST_DISK_MIN_FREE_MB", "100"))
        self.warning = int(os.environ.get("ATTEST_DISK_WARN_FREE_MB", "1024"))

    async def check(self) -> HealthStatus:
        # statvfs is quick, but blocking calls belong off the event loop all the same:
        # the checks of one probe run concurrently.
        usage = await asyncio.to_thread(shutil.disk_usage, self.path)
        free_mb = usage.free // 2**20
        if free_mb < self.minimum:
            return HealthStatus.unhealthy(f"{free_mb} MB free on {self.path}, "
                                          f"below {self.minimum} MB")
        if free_mb < self.warning:
            return HealthStatus.degraded(f"{free_mb} MB free on {self.path}, "
                                         f"below {self.warning} MB")
        return HealthStatus.healthy(f"{free_mb} MB free on {self.path}")
