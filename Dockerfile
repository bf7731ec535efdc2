FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=experiments_api.settings.base
WORKDIR /app
COPY pyproject.toml README.md ./
COPY experiments_api ./experiments_api
COPY experiments ./experiments
COPY flags ./flags
COPY events ./events
COPY pages ./pages
COPY persons ./persons
COPY manage.py ./
# EXTRAS=clickhouse adds the ClickHouse event store's client (docker-compose.yml's clickhouse profile).
ARG EXTRAS=""
RUN pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}"
# Static files for WhiteNoise; the production settings need a strong SECRET_KEY even for this build step (a
# throwaway one: the running container gets its own from the environment).
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" python manage.py collectstatic --noinput
RUN useradd --create-home app && chown -R app /app
USER app
EXPOSE 8000
CMD ["gunicorn", "-c", "python:experiments_api.gunicorn_config", "experiments_api.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
