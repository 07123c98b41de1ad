# loki-relay: slim, non-root, with a health check on /ready.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY relay ./relay
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/loki-relay --create-home relay
COPY --from=build /install /usr/local
USER relay
WORKDIR /var/lib/loki-relay
# 3500: Loki push API (default job); 9080: /metrics and /ready
EXPOSE 3500 9080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9080/ready', timeout=2).status == 200 else 1)"]
# With no flags the relay runs on its embedded defaults and sends to $LOKI_URL.
ENV LOKI_URL=http://loki:3100/loki/api/v1/push
ENTRYPOINT ["loki-relay"]
