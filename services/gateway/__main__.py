"""`python -m services.gateway`: serve the gateway on the port the runner chose."""

import uvicorn

from services.common.settings import ServiceSettings

if __name__ == "__main__":
    settings = ServiceSettings.from_env()
    uvicorn.run(
        "services.gateway.app:app",
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
