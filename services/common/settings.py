"""What every service process is told by the runner, through BANKRUN_* environment variables."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import BaseModel, Field

from bankrun.clock import ScenarioClock
from services.common.spill import HOT_KEYS


class ServiceSettings(BaseModel):
    bootstrap: str = Field(description="Kafka bootstrap servers, host:port[,host:port]")
    run_id: str = "dev"
    host: str = "127.0.0.1"
    port: int = Field(8000, description="HTTP port: API for the gateway, /metrics for all")
    data_dir: Path = Path("runs/dev/state")
    started_at: float = Field(default_factory=time.time)
    speed: float = Field(1.0, gt=0)
    max_body_bytes: int = Field(16_384, gt=0, description="gateway: larger bodies get 413")
    rate_per_account: float = Field(
        20.0, gt=0, description="gateway: requests a second per customer after the burst (429)"
    )
    rate_burst: int = Field(100, ge=1, description="gateway: requests a customer may make at once")
    journal_keep: int = Field(
        64, ge=1, description="stream services: whole journal records kept per partition"
    )
    hot_keys: int = Field(
        HOT_KEYS,
        ge=1,
        description="state keys kept in memory per partition (stream services) or per table "
        "(gateway); the least recently used wait in a local SQLite file",
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServiceSettings:
        env = os.environ if environ is None else environ
        prefix = "BANKRUN_"
        values = {
            name: env[prefix + name.upper()]
            for name in cls.model_fields
            if prefix + name.upper() in env
        }
        return cls.model_validate(values)

    def to_env(self) -> dict[str, str]:
        """What was set explicitly (a child takes the rest from its own environment)."""
        return {
            f"BANKRUN_{k.upper()}": str(v) for k, v in self.model_dump(exclude_unset=True).items()
        }

    @property
    def clock(self) -> ScenarioClock:
        return ScenarioClock(self.started_at, self.speed)

    def scenario_time(self) -> float:
        return self.clock.scenario_time(time.time())
