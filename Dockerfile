# loki-relay: slim, non-root, with a health check on /ready.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY relay ./relay
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
# The WAL directory exists in the image, owned by the relay's user, so a volume mounted there
# (one per instance) starts out writable.
RUN groupadd --system --gid 10001 relay \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/loki-relay --create-home relay \
 && install -d -o 10001 -g 10001 /var/lib/loki-relay/wal
COPY --from=build /install /usr/local
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /var/lib/loki-relay
# The default ports: 3500 Loki push API, 3600 AWS Lambda events, 3700 Amazon Data Firehose,
# 9080 /metrics and /ready.
EXPOSE 3500 3600 3700 9080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9080/ready', timeout=2).status == 200 else 1)"]
# With no flags the relay runs on its embedded defaults and sends to $LOKI_URL.
ENV LOKI_URL=http://loki:3100/loki/api/v1/push
ENTRYPOINT ["loki-relay"]
