# The production image: the app and its worker run from the same image (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PSY_ANNOTATOR_ENV=production \
    PSY_ANNOTATOR_DATA_DIR=/var/lib/psy-annotator

WORKDIR /srv/psy-annotator
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
# Editable install: templates, static files and migrations are read from this folder.
RUN pip install -e . \
    && useradd --system --home-dir /var/lib/psy-annotator --create-home psy

USER psy
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["psy-annotator", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
