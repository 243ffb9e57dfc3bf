-- The three databases of the compose stack (the native stack creates them with `loopml stack up`).
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
CREATE DATABASE predictions;
