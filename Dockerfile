# One image for web, worker, beat and flower; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY sync ./sync
COPY webhooks ./webhooks
COPY tasks ./tasks
COPY sandbox ./sandbox
RUN pip install --no-cache-dir . && useradd --system --uid 10001 sync
USER sync
