-- One database per service (docker-compose); the test harness does the same with createdb.
CREATE DATABASE gateway;
CREATE DATABASE customs;
CREATE DATABASE tax;
CREATE DATABASE fx;
CREATE DATABASE logistics;
CREATE DATABASE credit;
