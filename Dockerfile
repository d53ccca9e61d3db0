# One image for every bankrun process in docker-compose.yml — the faust services, the gateway,
# `bankrun topics`, Locust (master and workers) and the runner — so all of them run the same code.
# Build: `docker compose build` (or `docker build -t bankrun:local .`).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# The project in place (an editable install of /app): the code finds its scenarios
# (loadtests/scenarios), locustfile and ops/ beside it, as in a checkout. Runtime dependencies
# only, no dev extras; every one of them ships a wheel.
COPY pyproject.toml README.md ./
COPY bankrun ./bankrun
COPY services ./services
COPY loadtests ./loadtests
COPY ops ./ops
RUN pip install -e .
# Not root. /data (BANKRUN_DATA_DIR), /asks (the asks volume) and /runs (run folders) belong to
# the user, so a volume mounted there starts out writable by it; the code stays root's.
RUN useradd --create-home --uid 10001 bankrun \
    && mkdir -p /data /asks /runs \
    && chown bankrun:bankrun /data /asks /runs
USER bankrun
# Every compose service names its own command; alone, the image only explains itself.
CMD ["bankrun", "--help"]
