# One image for web, worker, beat and flower; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# The pinned, hashed dependencies first (`make lock` writes them), so this layer is rebuilt only
# when they change, and every build installs exactly the versions CI tested.
COPY requirements.txt ./
RUN pip install --no-cache-dir --require-hashes -r requirements.txt
COPY setup.cfg pyproject.toml README.md ./
COPY sync ./sync
COPY syncctl ./syncctl
COPY webhooks ./webhooks
COPY tasks ./tasks
COPY sandbox ./sandbox
# The project alone: its dependencies and build backend (setuptools, wheel) come from the lock above.
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && useradd --system --uid 10001 sync
USER sync
