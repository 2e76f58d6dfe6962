# The ngshare service image, the one the Helm chart (helmchart/ngshare)
# runs. No registry publishes it: build it from the repository root, push it
# to a registry your cluster pulls from, and give the chart its name
# (docs/kubernetes.md, "Building and pushing the image"):
#
#   TAG=$(python3 -c 'from ngshare.version import __version__; print(__version__)')
#   docker build -t REGISTRY/ngshare:$TAG .
#   docker push REGISTRY/ngshare:$TAG
#   helm install ... --set image.repository=REGISTRY/ngshare --set image.tag=$TAG
#
# ngshare is installed from this checkout (with psycopg 3 for PostgreSQL
# and boto3 for S3-compatible object storage), never from the package
# index, whose "ngshare" is the old 0.6.0.
# It runs "python -m ngshare" as user 1000 (group 1000), listens on port
# 8080, and keeps the SQLite database and uploaded files under /srv/ngshare
# (ngshare's defaults: sqlite:////srv/ngshare/ngshare.db and
# /srv/ngshare/files/), where the chart mounts its volume; with a bucket
# (--storage s3://BUCKET/PREFIX) and PostgreSQL it writes nothing locally.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    JUPYTERHUB_SERVICE_URL=http://0.0.0.0:8080

RUN groupadd --system --gid 1000 ngshare \
    && useradd --system --uid 1000 --gid 1000 --home-dir /srv/ngshare \
        --no-create-home --shell /usr/sbin/nologin ngshare \
    && install -d -o 1000 -g 1000 -m 0750 /srv/ngshare

# Only what building the package needs (see also .dockerignore).
COPY pyproject.toml README.md /usr/src/ngshare/
COPY ngshare /usr/src/ngshare/ngshare
RUN python -m pip install "/usr/src/ngshare[postgres,s3]" \
    && rm -rf /usr/src/ngshare

WORKDIR /srv/ngshare
USER 1000:1000
EXPOSE 8080
ENTRYPOINT ["python", "-m", "ngshare"]
