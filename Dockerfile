# syntax=docker/dockerfile:1
# Build: the locked runtime dependencies and the project into /app/.venv (uv, from uv.lock
# only; --no-default-groups leaves out the dev and bench groups that `make install` adds).
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-default-groups --no-install-project
COPY libs ./libs
COPY services ./services
COPY migrations ./migrations
RUN uv sync --frozen --no-default-groups

# Run: no compilers, no uv, a non-root user.
FROM python:3.11-slim AS run
RUN useradd --system --uid 10001 --home-dir /app escrow
WORKDIR /app
COPY --from=build --chown=escrow:escrow /app /app
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/escrow-entrypoint
ENV PATH="/app/.venv/bin:$PATH" \
    ESCROW_DATABASE_URL="sqlite+aiosqlite:////app/var/escrow.db" \
    PYTHONUNBUFFERED=1
RUN mkdir -p /app/var && chown escrow:escrow /app/var
# The SQLite default's directory: the database outlives the container.
VOLUME ["/app/var"]
USER escrow
EXPOSE 8000
# Ready, not merely alive: the database answers and its schema is current.
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"]
# Every command runs on a migrated database (docker/entrypoint.sh migrates, then runs it).
ENTRYPOINT ["/usr/local/bin/escrow-entrypoint"]
# The same start-up command the end-to-end tests run (tests/support/processes.py reads it).
CMD ["escrow", "serve", "--host", "0.0.0.0", "--port", "8000"]
