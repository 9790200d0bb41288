# One slim image for every Chorus role: `chorus api` (the default command), `chorus worker`
# and the one-shot `chorus migrate`. compose.yaml runs all three from it.

# --- build: install Chorus and its dependencies into a virtualenv -----------------------
FROM python:3.11-slim AS build
# Compilers only here, never in the runtime image: most dependencies come as wheels, but
# some have none for every platform and build from source.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/chorus
WORKDIR /src
# Dependencies first, from pyproject alone, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); \
print('\n'.join(d['project']['dependencies']))" > requirements.txt \
    && /opt/chorus/bin/pip install -r requirements.txt
COPY shared ./shared
COPY services ./services
# A regular (non-editable) install: the package data (Alembic migrations, the email and
# unsubscribe templates) ships as declared in pyproject's [tool.setuptools.package-data].
RUN /opt/chorus/bin/pip install --no-deps . \
    && /opt/chorus/bin/python -c "from importlib.resources import files; \
assert files('services.worker').joinpath('templates/notification.txt.j2').is_file(); \
assert files('services.api').joinpath('templates/unsubscribe.html.j2').is_file(); \
assert files('shared').joinpath('migrations/script.py.mako').is_file()"

# --- runtime -----------------------------------------------------------------------------
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin chorus
COPY --from=build /opt/chorus /opt/chorus
ENV PATH=/opt/chorus/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001
WORKDIR /home/chorus
EXPOSE 8000
# No HEALTHCHECK here: the image also runs workers and migrations, which serve no HTTP.
# compose.yaml gives the api service its healthcheck (GET /readyz).
CMD ["chorus", "api", "--host", "0.0.0.0", "--port", "8000"]
