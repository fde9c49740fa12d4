# The image of every EvoTrack service in compose.yaml: both APIs, the workers, migrations.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# The runtime dependencies of pyproject.toml at the versions of requirements.lock, first:
# this layer is built again when the lock or pyproject.toml change, not with the code.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/runtime.txt \
    && pip install -r /tmp/runtime.txt -c requirements.lock \
    && rm /tmp/runtime.txt

COPY README.md alembic.ini ./
COPY shared shared
COPY command_api command_api
COPY query_api query_api
COPY projections projections
COPY notifications notifications
COPY webhooks webhooks
COPY importers importers
COPY worker worker
COPY migrations migrations
COPY evotrack evotrack
# The project itself (its dependencies are in place); PIP_CONSTRAINT also pins what its
# build needs (setuptools) to the lock.
RUN PIP_CONSTRAINT=requirements.lock pip install --no-deps . && pip check
# uvicorn's --log-config (compose.yaml): its lines in the apps' format, as `evotrack run` has.
RUN python -c "import json; from shared.logging import uvicorn_log_config; print(json.dumps(uvicorn_log_config()))" > uvicorn-logging.json
USER nobody
