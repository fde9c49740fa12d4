FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md alembic.ini ./
COPY shared shared
COPY command_api command_api
COPY query_api query_api
COPY projections projections
COPY worker worker
COPY migrations migrations
COPY evotrack evotrack
RUN pip install --no-cache-dir .
USER nobody
