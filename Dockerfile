# The loopml project image of docker-compose.yml: the MLflow and Prefect servers, the workers
# and the model server all run it, with the commands of loopml_cli/topology.py.
# Python as on the machines loopml is tested on; packages pinned by stack/constraints.txt
# (written with docker-compose.yml by `loopml stack compose --write`).
FROM python:3.11.7-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    GIT_PYTHON_REFRESH=quiet

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY stack/constraints.txt stack/constraints.txt
COPY loopml loopml
COPY loopml_cli loopml_cli
# torch from its CPU index (PyPI's default build carries CUDA)
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu \
        -c stack/constraints.txt -e '.[stack]'

COPY . .
# A git work tree and DVC, whose default remote is the stack's bucket (credentials from the
# AWS variables of the environment; the endpoint is the compose service `s3`).
RUN git init -q \
    && git config user.email loopml@stack.local && git config user.name loopml \
    && python -m dvc remote add --local --force --default stack s3://loopml-dvc/loopml \
    && python -m dvc remote modify --local stack endpointurl http://s3:9000

RUN useradd --create-home loopml \
    && mkdir -p /var/lib/mlflow-auth \
    && chown -R loopml /app /var/lib/mlflow-auth
USER loopml
