# A slim image for every Chorus role: api, worker and the one-shot migrate.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 chorus
COPY --from=build /install /usr/local
USER chorus
WORKDIR /home/chorus
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["chorus", "api", "--host", "0.0.0.0", "--port", "8000"]
