-- The two databases of the compose stack (the native stack creates them with `loopml stack up`).
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
