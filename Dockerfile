# Grid Hub image for the production-like stack in docker-compose.yml.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY protocols ./protocols
COPY adapters ./adapters
COPY streams ./streams
COPY config ./config
COPY web ./web
RUN pip install --no-cache-dir . && useradd --system --home /app hub && mkdir -p /app/var && chown hub /app/var
USER hub
EXPOSE 8000
# Migrate, then serve. Settings come from HUB_* variables (see README.md).
CMD ["sh", "-c", "hub db upgrade && exec hub serve"]
